"""Video memes: MP4 and WebM bodies judged on a bounded sample of the frames a viewer sees.

The "GIFs" of X, Reddit, Imgur, 9GAG, Tumblr, Discord and Mastodon are MP4 or WebM videos. A
video is judged like an animation (`simclip.images.decode_frames`): on up to
MAX_ANIMATION_FRAMES frames spread evenly over its length, blank (near-uniform) frames skipped
and a frame that repeats the one before dropped. Every body comes from an arbitrary web page and
FFmpeg's parsers are a large surface, so (THREATS.md T9 to T11, docs/api.md "Videos"):

- the container is recognised by its magic bytes (an ISO BMFF `ftyp` box whose brand is not an
  image one, or the EBML header of WebM/Matroska) and its demuxer is forced: FFmpeg never probes
  other formats (an HLS playlist or a concat list opens other files and URLs), and every nested
  open (MP4 data references) is refused;
- only the video decoders of VIDEO_CODECS may open, while probing too: audio is never decoded;
- the bounds are checked from the headers, then from the packets (demuxed, not decoded) before
  any frame is decoded: bytes, streams, resolution, duration, frame count and frame rate;
- only the packets a sample needs reach the decoder: each sample starts at the keyframe at or
  before its time (the keyframe itself when one is near that time), the rest is skipped; decoding
  stops after MAX_VIDEO_DECODE_FRAMES frames or MAX_VIDEO_DECODE_S seconds, and the frames found
  so far are judged. A video cut short is judged on the frames that arrived, as browsers play it.

PyAV (the `av` package, FFmpeg bundled in its wheels) is this module's alone and is imported on
first use, so `import simclip` stays light; without it a video gets VideoDecoderMissingError.
"""

from __future__ import annotations

import io
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .constants import (
    BLANK_FRAME_STDDEV,
    MAX_ANIMATION_FRAMES,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_DECODE_FRAMES,
    MAX_VIDEO_DECODE_S,
    MAX_VIDEO_DURATION_S,
    MAX_VIDEO_FPS,
    MAX_VIDEO_FRAMES,
    MAX_VIDEO_PIXELS,
    MAX_VIDEO_SIDE,
    MAX_VIDEO_STREAMS,
    SAME_FRAME_DIFF,
    VIDEO_CODECS,
)
from .errors import (
    CorruptVideoError,
    EmptyImageError,
    ImageError,
    UnsupportedVideoError,
    VideoDecoderMissingError,
    VideoResolutionTooLargeError,
    VideoTooLargeError,
    VideoTooLongError,
    VideoTooManyFramesError,
)

MP4 = "mp4"
MATROSKA = "matroska"  # WebM is Matroska with fewer codecs
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# ISO BMFF brands of still images and image sequences (AVIF, HEIF): those stay images.
_IMAGE_BRANDS = frozenset({b"avif", b"avis", b"avio", b"heic", b"heix", b"heim", b"heis",
                           b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"mif2", b"msf1",
                           b"avci", b"avcs", b"jpeg", b"jpgs"})
# The demuxer forced for each container, and the only one FFmpeg may use (format_whitelist).
_DEMUXERS = {MP4: "mov,mp4,m4a,3gp,3g2,mj2", MATROSKA: "matroska,webm"}
# The FFmpeg decoder of each allowed codec: the native ones, dav1d for AV1.
_DECODERS = {"h264": "h264", "vp8": "vp8", "vp9": "vp9", "av1": "libdav1d"}
_MAX_THREADS = 4  # decoder threads per video (the server decodes two pictures at a time)


def get_video_container(data: bytes | bytearray | memoryview) -> str | None:
    """The container the magic bytes announce: MP4 ('mp4', an ISO BMFF `ftyp` box whose major
    brand is not an image one such as AVIF or HEIF) or WebM/Matroska ('matroska', the EBML
    header 1A45DFA3); None for anything else, images included."""
    head = bytes(data[:12])
    if head.startswith(_EBML_MAGIC):
        return MATROSKA
    if len(head) == 12 and head[4:8] == b"ftyp" and head[8:12] not in _IMAGE_BRANDS:
        return MP4
    return None


def is_video(data: Any) -> bool:
    """True for bytes that `decode_video` takes (MP4 or WebM magic bytes); never decodes."""
    return isinstance(data, (bytes, bytearray, memoryview)) and get_video_container(data) is not None


def _import_av() -> Any:
    try:
        import av
    except ImportError as e:
        raise VideoDecoderMissingError(
            "videos need PyAV, which is not installed: pip install av") from e
    return av


def list_video_codecs() -> list[str]:
    """The allowed video codecs this PyAV build can decode ('h264', 'vp8', 'vp9', 'av1');
    [] without PyAV."""
    try:
        av = _import_av()
    except VideoDecoderMissingError:
        return []
    return [c for c in VIDEO_CODECS if _DECODERS[c] in av.codecs_available]


# ---------------------------------------------------------------------------- container checks
#
# FFmpeg builds a stream's whole sample index while it opens the file, from counts the headers
# declare (a 20 KB MP4 can declare 85 million samples: 3 GB and seconds before any of the
# checks after opening runs). These bounds are checked on the container's own headers first,
# in microseconds, without FFmpeg.

MAX_VIDEO_EDITS = 64  # edit-list entries per track (a meme has one or two)
MAX_TRACK_SAMPLES = 10 * MAX_VIDEO_FRAMES  # samples of a non-video track (2 min of AAC: 5,625)
_MAX_ELEMENTS = 100_000  # boxes or EBML elements walked at most
_BMFF_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"moof",
                              b"traf", b"mvex"})
# table -> (bytes before its entry count in the full box, bytes per entry)
_BMFF_TABLES = {b"stts": (4, 8), b"ctts": (4, 8), b"stss": (4, 4), b"stsc": (4, 12),
                b"stco": (4, 4), b"co64": (4, 8), b"elst": (4, None)}


@dataclass
class _Track:
    """What one MP4 track's headers declare."""

    handler: bytes = b""  # 'vide', 'soun', ...
    samples: int = 0  # the sample table's count (stsz or stz2)
    timed: int = 0  # samples the time-to-sample table (stts) covers
    constant_size: bool = False  # stsz gives one size for every sample (no per-sample table)


def _bmff_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, bool]]:
    """(type, payload start, payload end, complete) of each box in data[start:end]; a box cut
    short by the end of the data ends at it (complete False)."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise CorruptVideoError(f"the MP4 box {kind!r} declares {size} bytes, less than its header")
        yield kind, pos + header, min(pos + size, end), pos + size <= end
        pos += size


def _check_bmff(data: bytes) -> None:
    """Stream count, sample counts, edit lists and table sizes of an MP4, from its boxes."""
    tracks: list[_Track] = []
    fragment_samples = 0  # samples the movie fragments (trun) declare, every track together
    walked = 0
    stack = [(0, len(data), None)]  # (start, end, the track the boxes belong to)
    while stack:
        start, end, track = stack.pop()
        for kind, p, q, complete in _bmff_boxes(data, start, end):
            walked += 1
            if walked > _MAX_ELEMENTS:
                raise UnsupportedVideoError(f"the MP4 has over {_MAX_ELEMENTS:,} boxes")
            if kind == b"trak":
                track = _Track()
                tracks.append(track)
                stack.append((p, q, track))
            elif kind in _BMFF_CONTAINERS:
                stack.append((p, q, track))
            elif kind == b"traf":
                stack.append((p, q, None))
            elif kind == b"hdlr" and track is not None and q - p >= 12:
                track.handler = data[p + 8:p + 12]
            elif kind in (b"stsz", b"stz2") and track is not None and q - p >= 12:
                size, count = struct.unpack(">II", data[p + 4:p + 12])
                track.samples = max(track.samples, count)
                track.constant_size = kind == b"stsz" and size != 0
                if complete and not track.constant_size:
                    bits = 32 if kind == b"stsz" else max(4, size & 0xFF)
                    _check_table(kind, count, q - p - 12, bits / 8)
            elif kind == b"trun" and q - p >= 8:
                fragment_samples += struct.unpack(">I", data[p + 4:p + 8])[0]
            elif kind in _BMFF_TABLES and q - p >= 8:
                skip, width = _BMFF_TABLES[kind]
                count = struct.unpack(">I", data[p + skip:p + skip + 4])[0]
                if kind == b"elst":
                    if count > MAX_VIDEO_EDITS:
                        raise UnsupportedVideoError(f"the video's edit list has {count:,} entries, "
                                                    f"over the {MAX_VIDEO_EDITS} allowed")
                    width = 20 if data[p] == 1 else 12
                if complete:
                    _check_table(kind, count, q - p - skip - 4, width)
                if kind == b"stts" and track is not None:
                    entries = data[p + 8:min(q, p + 8 + 8 * count)]
                    track.timed += sum(n for n, _ in struct.iter_unpack(">II", entries[:len(entries) // 8 * 8]))
    _check_stream_count(len(tracks))
    for track in tracks:
        samples = max(track.samples, track.timed)
        if track.handler == b"vide" and samples > MAX_VIDEO_FRAMES:
            raise VideoTooManyFramesError(f"the video declares {samples:,} frames, over the "
                                          f"{MAX_VIDEO_FRAMES} limit (by its MP4 sample tables)")
        if samples > MAX_TRACK_SAMPLES and not (track.handler == b"soun" and track.constant_size):
            raise VideoTooManyFramesError(f"a {track.handler.decode('latin-1') or 'media'} track "
                                          f"declares {samples:,} samples, over {MAX_TRACK_SAMPLES:,}")
    if fragment_samples > MAX_TRACK_SAMPLES:
        raise VideoTooManyFramesError(f"the video's fragments declare {fragment_samples:,} "
                                      f"samples, over {MAX_TRACK_SAMPLES:,}")


def _check_table(kind: bytes, count: int, payload: int, entry_bytes: float) -> None:
    """A complete table box must hold the entries it declares."""
    if count * entry_bytes > payload:
        raise CorruptVideoError(f"the MP4 table {kind.decode('latin-1')} declares {count:,} "
                                f"entries, more than its {payload:,} bytes hold")


def _ebml_vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """(value, length) of the EBML variable-size integer at `pos`; value -1 for 'unknown'."""
    if pos >= len(data) or data[pos] == 0:
        raise CorruptVideoError("the WebM has a malformed element header")
    length = 9 - data[pos].bit_length()
    if pos + length > len(data):
        raise CorruptVideoError("the WebM ends inside an element header")
    value = int.from_bytes(data[pos:pos + length], "big")
    if keep_marker:
        return value, length
    value &= (1 << (7 * length)) - 1
    return (-1 if value == (1 << (7 * length)) - 1 else value), length


_EBML_SEGMENT, _EBML_TRACKS, _EBML_TRACK_ENTRY, _EBML_VIDEO = 0x18538067, 0x1654AE6B, 0xAE, 0xE0
_EBML_CLUSTER, _EBML_PIXEL_WIDTH, _EBML_PIXEL_HEIGHT = 0x1F43B675, 0xB0, 0xBA


def _check_ebml(data: bytes) -> None:
    """Track count and declared frame sizes of a WebM/Matroska file, from its headers (the
    elements before the first Cluster)."""
    seen = {"tracks": 0, "elements": 0}

    def walk(pos: int, end: int) -> bool:
        """Check the elements in data[pos:end]; False once the headers are over."""
        while pos < end:
            seen["elements"] += 1
            if seen["elements"] > _MAX_ELEMENTS:
                raise UnsupportedVideoError(f"the WebM has over {_MAX_ELEMENTS:,} header elements")
            ident, n = _ebml_vint(data, pos, keep_marker=True)
            size, m = _ebml_vint(data, pos + n, keep_marker=False)
            body = pos + n + m
            stop = end if size < 0 else min(end, body + size)
            if ident == _EBML_CLUSTER:
                return False  # the frames: the headers are behind
            if ident == _EBML_TRACK_ENTRY:
                seen["tracks"] += 1
            if ident in (_EBML_SEGMENT, _EBML_TRACKS, _EBML_TRACK_ENTRY, _EBML_VIDEO):
                if not walk(body, stop):
                    return False
            elif ident in (_EBML_PIXEL_WIDTH, _EBML_PIXEL_HEIGHT) and 0 < size <= 8:
                side = int.from_bytes(data[body:stop], "big")
                if side > MAX_VIDEO_SIDE:
                    raise VideoResolutionTooLargeError(
                        f"the video declares a side of {side:,} px, over {MAX_VIDEO_SIDE}")
            if size < 0:
                return False  # an element of unknown size runs to the end
            pos = stop
        return True

    walk(0, len(data))
    _check_stream_count(seen["tracks"])


def _check_stream_count(streams: int) -> None:
    if streams > MAX_VIDEO_STREAMS:
        raise UnsupportedVideoError(
            f"the video has {streams} streams, over the {MAX_VIDEO_STREAMS} allowed")


def check_container(data: bytes | bytearray | memoryview) -> None:
    """Refuse, from the container's own headers and before FFmpeg opens it, a video whose
    declared counts would cost time and memory to index: more streams than MAX_VIDEO_STREAMS;
    for MP4, a video track declaring over MAX_VIDEO_FRAMES samples (stsz, stts, or movie
    fragments' trun), another track over MAX_TRACK_SAMPLES (but constant-size audio, which
    FFmpeg indexes by chunk), an edit list over MAX_VIDEO_EDITS entries, a table declaring more
    entries than its box holds; for WebM, a declared side over MAX_VIDEO_SIDE.

    Args:
        data: the video's bytes (MP4 or WebM by `get_video_container`; others pass).

    Raises:
        UnsupportedVideoError: too many streams or edits.
        VideoTooManyFramesError: a sample count over its bound.
        VideoResolutionTooLargeError: a declared side over MAX_VIDEO_SIDE (WebM).
        CorruptVideoError: a box or element header that does not parse.
    """
    data = bytes(data)
    container = get_video_container(data)
    if container == MP4:
        _check_bmff(data)
    elif container == MATROSKA:
        _check_ebml(data)


# ------------------------------------------------------------------------------------ opening

def _refuse_nested_open(url: str, flags: int, options: dict) -> Any:
    raise PermissionError(f"a video may not open other files or URLs ({url!r})")


def _open(av: Any, data: bytes, container: str, seconds_left: float) -> Any:
    """Open with the demuxer forced, only our video decoders allowed and no nested opens."""
    options = {"format_whitelist": _DEMUXERS[container],
               "codec_whitelist": ",".join(_DECODERS[c] for c in list_video_codecs())}
    if container == MP4:
        options.update(enable_drefs="0", use_absolute_path="0")  # FFmpeg's defaults, pinned
    timeout = max(0.05, seconds_left)  # FFmpeg's interrupt callback: a read or probe that hangs
    return av.open(io.BytesIO(data), format=_DEMUXERS[container].split(",")[0],
                   container_options=options, metadata_errors="replace",
                   timeout=(timeout, timeout), io_open=_refuse_nested_open)


def _decode_errors(av: Any) -> tuple[type[BaseException], ...]:
    """What PyAV and FFmpeg raise on malformed data (FFmpegError subclasses OSError,
    ValueError, EOFError, MemoryError ...)."""
    return (av.error.FFmpegError, OSError, ValueError, EOFError, MemoryError, OverflowError)


def _video_stream(streams: Any) -> Any:
    """The first video stream, checked against the codec allowlist and the resolution caps."""
    if len(streams) > MAX_VIDEO_STREAMS:
        raise UnsupportedVideoError(
            f"the video has {len(streams)} streams, over the {MAX_VIDEO_STREAMS} allowed")
    if not streams.video:
        raise UnsupportedVideoError("the container holds no video stream")
    stream = streams.video[0]
    allowed = list_video_codecs()
    decoder = stream.codec_context.name if stream.codec_context is not None else None
    codec = {d: c for c, d in _DECODERS.items()}.get(decoder)
    if codec not in allowed:
        name = decoder or "an unknown codec"
        raise UnsupportedVideoError(
            f"the video's codec ({name}) is not allowed; allowed: {', '.join(allowed)}")
    _check_resolution(stream.codec_context.width, stream.codec_context.height)
    return stream


def _check_resolution(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise CorruptVideoError(f"the video declares an invalid size {width}x{height}")
    if max(width, height) > MAX_VIDEO_SIDE or width * height > MAX_VIDEO_PIXELS:
        raise VideoResolutionTooLargeError(
            f"the video is {width}x{height}, over the limit ({MAX_VIDEO_SIDE} px a side, "
            f"{MAX_VIDEO_PIXELS:,} px: 1080p)")


def _check_declared_length(container: Any, stream: Any) -> None:
    """The duration, frame count and frame rate the headers declare (data may lie: the
    packets are checked again)."""
    declared = []
    if container.duration:
        declared.append(container.duration / 1_000_000)
    if stream.duration and stream.time_base:
        declared.append(float(stream.duration * stream.time_base))
    if declared and max(declared) > MAX_VIDEO_DURATION_S:
        raise VideoTooLongError(f"the video lasts {max(declared):.1f} s, over the "
                                f"{MAX_VIDEO_DURATION_S:g} s limit")
    if stream.frames > MAX_VIDEO_FRAMES:
        raise VideoTooManyFramesError(f"the video has {stream.frames} frames, over the "
                                      f"{MAX_VIDEO_FRAMES} limit")
    rate = stream.average_rate
    if rate and float(rate) > MAX_VIDEO_FPS:
        raise VideoTooManyFramesError(f"the video runs at {float(rate):.0f} frames per second, "
                                      f"over the {MAX_VIDEO_FPS} limit")


# ------------------------------------------------------------------------------------ packets

@dataclass
class _Packet:
    """One video packet (one frame), in decode order."""

    time: float  # presentation time in seconds (the decode time when it has none)
    key: bool  # a keyframe: decoding may start here


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return None if value is None or not time_base else float(value * time_base)


def _read_packets(av: Any, container: Any, stream: Any, deadline: float) -> list[_Packet]:
    """Every video packet's time and keyframe flag, demuxed without decoding, with the
    duration, frame count and frame rate bounds checked on them. A stream that stops early
    (a truncated download) gives the packets that arrived."""
    packets: list[_Packet] = []
    last, start, end = 0.0, float("inf"), float("-inf")
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end
                continue
            t = _seconds(packet.pts, stream.time_base)
            if t is None:
                t = _seconds(packet.dts, stream.time_base)
            last = t if t is not None else last
            packets.append(_Packet(last, packet.is_keyframe))
            start = min(start, last)
            end = max(end, last + (_seconds(packet.duration, stream.time_base) or 0.0))
            if len(packets) > MAX_VIDEO_FRAMES:
                raise VideoTooManyFramesError(f"the video has over {MAX_VIDEO_FRAMES} frames")
            if end - start > MAX_VIDEO_DURATION_S:
                raise VideoTooLongError(f"the video lasts over {MAX_VIDEO_DURATION_S:g} s")
            if time.monotonic() > deadline:
                raise CorruptVideoError(
                    f"reading the video's packets took over {MAX_VIDEO_DECODE_S:g} s")
    except ImageError:
        raise
    except _decode_errors(av):
        pass  # a stream cut short or damaged: what came before it is the video
    if not packets:
        raise CorruptVideoError("the video has no frame data (truncated or malformed)")
    if len(packets) > MAX_VIDEO_FPS * max(end - start, 1.0):
        raise VideoTooManyFramesError(
            f"the video has {len(packets)} frames in {end - start:.2f} s, over "
            f"{MAX_VIDEO_FPS} frames per second")
    return packets


@dataclass
class _Sample:
    """Where to look for one sampled frame."""

    start: int  # the packet (a keyframe, in decode order) where decoding starts
    after: float  # the first visible frame shown at or after this time is the sample,
    until: float = float("inf")  # if one is shown before this time (the next sample's)


def _plan_samples(packets: list[_Packet], count: int) -> list[_Sample]:
    """`count` sample times spread evenly from the first frame to the last, each moved to the
    nearest keyframe within half a spacing when there is one (decoding it costs one frame),
    and the keyframe at or before each where decoding starts."""
    times = [p.time for p in packets]
    first, last = min(times), max(times)
    if count <= 1 or last <= first:
        targets, half = [first], 0.0
    else:
        targets = [first + i * (last - first) / (count - 1) for i in range(count)]
        half = (last - first) / (2 * (count - 1))
    keys = [(i, p.time) for i, p in enumerate(packets) if p.key] or [(0, packets[0].time)]
    samples: list[_Sample] = []
    for target in targets:
        near = [t for _, t in keys if abs(t - target) <= half]
        after = min(near, key=lambda t: abs(t - target)) if near else target
        starts = [i for i, t in keys if t <= after]
        samples.append(_Sample(starts[-1] if starts else keys[0][0], after))
    for sample, following in zip(samples, samples[1:]):
        sample.until = following.after
    return samples


# ------------------------------------------------------------------------------------- frames

def _thumbnail(frame: Any) -> np.ndarray:
    """A 64x64 grey thumbnail (area-averaged, as images.py's BOX thumbnails), float32."""
    grey = frame.reformat(width=64, height=64, format="gray", interpolation="AREA")
    return grey.to_ndarray().astype(np.float32)


def _to_image(frame: Any, sample_aspect: Fraction | None) -> Image.Image:
    """The frame as a browser shows it: RGB, non-square pixels stretched, turned by the
    display matrix (a phone video recorded upright)."""
    image = frame.to_image()
    if sample_aspect and Fraction(1, 4) <= sample_aspect <= 4 and sample_aspect != 1:
        width = max(1, round(image.width * sample_aspect))
        if width * image.height <= MAX_VIDEO_PIXELS:
            image = image.resize((width, image.height), Image.Resampling.BICUBIC)
    turns = round((frame.rotation or 0) / 90) % 4  # counterclockwise quarter turns
    if turns:
        image = image.transpose((Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                 Image.Transpose.ROTATE_270)[turns - 1])
    return image


class _Sampler:
    """Takes the first visible frame in each sample's window, drops one that repeats the
    frame before, and keeps the least uniform blank frame for a video blank throughout."""

    def __init__(self, samples: list[_Sample], sample_aspect: Fraction | None) -> None:
        self.samples = samples
        self.sample_aspect = sample_aspect
        self.next = 0  # the sample looked for
        self.frames: list[Image.Image] = []
        self._last_thumb: np.ndarray | None = None
        self._fallback: tuple[float, Any] | None = None  # (spread, the decoded frame)

    @property
    def done(self) -> bool:
        return self.next >= len(self.samples)

    def offer(self, frame: Any, t: float) -> None:
        """Look at one decoded frame shown at time `t` (seconds)."""
        while not self.done and t >= self.samples[self.next].until:
            self.next += 1  # its window passed without a visible frame
        if self.done or t < self.samples[self.next].after:
            return
        thumb = _thumbnail(frame)
        spread = float(thumb.std())
        if spread < BLANK_FRAME_STDDEV:
            if self._fallback is None or spread > self._fallback[0]:
                self._fallback = (spread, frame)
            return
        if self._last_thumb is None or \
                float(np.abs(thumb - self._last_thumb).mean()) >= SAME_FRAME_DIFF:
            self.frames.append(_to_image(frame, self.sample_aspect))
            self._last_thumb = thumb
        self.next += 1

    def result(self) -> list[Image.Image]:
        if self.frames:
            return self.frames
        if self._fallback is not None:
            return [_to_image(self._fallback[1], self.sample_aspect)]
        raise CorruptVideoError("no frame of the video decodes")


def _decode_samples(av: Any, container: Any, stream: Any, samples: list[_Sample],
                    deadline: float) -> list[Image.Image]:
    """Feed the decoder only the packets the samples need, from each one's keyframe until
    its frame is found; the frames found when the samples, the frame cap or the time is out."""
    context = stream.codec_context
    context.thread_type = "AUTO"
    context.thread_count = min(_MAX_THREADS, os.cpu_count() or 1)
    context.options = {"max_pixels": str(MAX_VIDEO_PIXELS)}  # a size change mid-stream too
    sampler = _Sampler(samples, context.sample_aspect_ratio)
    errors = _decode_errors(av)
    decoded, feeding, fed, t = 0, False, False, 0.0

    def take(frames: Any) -> None:
        nonlocal decoded, t
        for frame in frames:
            decoded += 1
            _check_resolution(frame.width, frame.height)
            shown = _seconds(frame.pts, stream.time_base)
            t = shown if shown is not None else t
            sampler.offer(frame, t)

    try:
        packets = (p for p in container.demux(stream) if p.size)
        for index, packet in enumerate(packets):
            if sampler.done or decoded >= MAX_VIDEO_DECODE_FRAMES or time.monotonic() > deadline:
                break
            start = samples[sampler.next].start
            if feeding and start > index:
                feeding = False  # the next sample starts at a later keyframe: skip to it
            if not feeding:
                if index < start or not (packet.is_keyframe or index == start):
                    continue  # never decoded
                if fed:
                    context.flush_buffers()
                feeding = True
            try:
                take(context.decode(packet))
                fed = True
            except ImageError:
                raise
            except errors:
                feeding = False  # a damaged frame: go on at the next keyframe
        else:
            if feeding and not sampler.done:
                take(context.decode(None))  # the frames the decoder still holds
    except ImageError:
        raise
    except errors:
        pass  # the data stops or breaks here: the frames found so far are the video
    return sampler.result()


def decode_vp8_keyframe(payload: bytes, size: tuple[int, int]) -> Image.Image | None:
    """A lossy WebP's picture (its `VP8 ` chunk's payload, a VP8 key frame) decoded by FFmpeg's
    VP8 decoder, the one WebM videos use, which conceals damage where libwebp (Pillow) refuses
    the whole picture: Chromium 156 paints a WebP damaged in the middle down to the damage,
    and FFmpeg gives those rows too (then its concealment). RGB, or None when PyAV is missing,
    the frame does not decode, or it is not `size` (width, height), the size its header
    declared and the caller checked against the pixel cap."""
    if len(payload) < 10 or payload[3:6] != b"\x9d\x01\x2a":  # not a key frame
        return None
    declared = struct.unpack("<HH", payload[6:10])
    if (declared[0] & 0x3FFF, declared[1] & 0x3FFF) != size:  # checked before FFmpeg allocates
        return None
    try:
        av = _import_av()
    except VideoDecoderMissingError:
        return None
    if "vp8" not in list_video_codecs():
        return None
    try:
        context = av.CodecContext.create("vp8", "r")
        frames = context.decode(av.Packet(payload)) or context.decode(None)
    except _decode_errors(av):
        return None
    if not frames or (frames[0].width, frames[0].height) != size:
        return None
    return frames[0].to_image().convert("RGB")


def decode_video(data: bytes | bytearray | memoryview | str | Path,
                 max_frames: int = MAX_ANIMATION_FRAMES) -> list[Image.Image]:
    """Decode an MP4 or WebM video into the frames a viewer sees: up to `max_frames` upright
    RGB images spread evenly over its length, the first and last visible frames near the ends.

    Blank (near-uniform) frames are skipped and a sample that repeats the one before is dropped
    (a still picture posted as a video gives one frame); a video blank throughout gives its
    least uniform frame. See the module docstring and docs/api.md "Videos" for the bounds.

    Args:
        data: the encoded video (bytes or a filesystem path): MP4 (H.264 or AV1) or
            WebM/Matroska (VP8, VP9 or AV1).
        max_frames: frames returned at most (>= 1).

    Returns:
        A non-empty list of RGB images, in display order.

    Raises:
        EmptyImageError: zero bytes.
        VideoTooLargeError: more than MAX_VIDEO_BYTES bytes.
        UnsupportedVideoError: not MP4 or WebM by its magic bytes, no video stream, a codec not
            in VIDEO_CODECS, more than MAX_VIDEO_STREAMS streams.
        VideoDecoderMissingError: PyAV is not installed (an UnsupportedVideoError).
        VideoResolutionTooLargeError: a side over MAX_VIDEO_SIDE or over MAX_VIDEO_PIXELS.
        VideoTooLongError: longer than MAX_VIDEO_DURATION_S.
        VideoTooManyFramesError: more than MAX_VIDEO_FRAMES frames, or over MAX_VIDEO_FPS.
        CorruptVideoError: malformed, or truncated before any frame decodes.
    """
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    data = bytes(data)
    if not data:
        raise EmptyImageError("the video is empty (0 bytes)")
    if len(data) > MAX_VIDEO_BYTES:
        raise VideoTooLargeError(f"the video is {len(data):,} bytes, over the "
                                 f"{MAX_VIDEO_BYTES:,} byte limit")
    container = get_video_container(data)
    if container is None:
        raise UnsupportedVideoError("not an MP4 or WebM video (by its magic bytes)")
    check_container(data)
    av = _import_av()
    deadline = time.monotonic() + MAX_VIDEO_DECODE_S
    errors = _decode_errors(av)
    try:
        with _open(av, data, container, deadline - time.monotonic()) as probe:
            stream = _video_stream(probe.streams)
            _check_declared_length(probe, stream)
            packets = _read_packets(av, probe, stream, deadline)
        samples = _plan_samples(packets, max(1, max_frames))
        with _open(av, data, container, deadline - time.monotonic()) as video:
            stream = _video_stream(video.streams)
            return _decode_samples(av, video, stream, samples, deadline)
    except ImageError:
        raise
    except errors as e:
        raise CorruptVideoError(f"the video is malformed or truncated: {e}") from e
