"""Measure what decoding a typical meme video costs the server: docs/api.md's "Videos" table.

    python -m bench.video_bench                       # the real Harm-C validation memes
    python -m bench.video_bench --images DIR --repeat 3 --seconds 15

Videos are made with PyAV from real memes as the sites serve them: each meme panned slowly (so
that every frame differs), 30 fps, at the sites' bit rates (H.264 1 Mbps at 480p and 2 Mbps at
720p, VP9 0.75 and 1.5 Mbps; x264 `veryfast`, libvpx realtime), 5 and 15 s
long, in two contents: a meme every 3 s with a keyframe at each, and the worst case, one meme
panned throughout with a single keyframe. For each, `simclip.video.decode_video` (the server's
4 frames) and, for comparison, decoding every frame in order: wall and CPU milliseconds, best of
`--repeat` (CPU time counts every decoder thread, so it holds on a busy machine). All videos are
encoded first, then measured; the encoding takes most of the run (about 5 minutes on 2 cores).
Prints one JSON line per video. Not a test: the numbers depend on the machine.
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "harmeme-c-val" / "images"
# bits per second of the sites' meme videos, by encoder and height
RATES = {"libx264": {480: 1_000_000, 720: 2_000_000}, "libvpx-vp9": {480: 750_000, 720: 1_500_000}}
FORMATS = {"libx264": "mp4", "libvpx-vp9": "webm"}
WIDTHS = {480: 854, 720: 1280}


def slideshow(meme_paths, size, seconds, fps=30, per_meme=3):
    """A meme video as the sites serve them: real memes one after the other, each panned
    slowly (so that every frame differs), `per_meme` seconds each. Returns PIL frames."""
    from PIL import Image

    w, h = size
    frames, current = [], None
    for i in range(int(seconds * fps)):
        if i % (per_meme * fps) == 0:
            meme = Image.open(meme_paths[i // (per_meme * fps) % len(meme_paths)]).convert("RGB")
            scale = max(w / meme.width, h / meme.height) * 1.15
            current = meme.resize((round(meme.width * scale), round(meme.height * scale)))
        z = (i % (per_meme * fps)) / (per_meme * fps)
        dx, dy = int((current.width - w) * z), int((current.height - h) * z)
        frames.append(current.crop((dx, dy, dx + w, dy + h)))
    return frames


def encode_typical(frames, encoder, fmt, rate, keyint):
    """Encode as the sites do (x264 veryfast, VP9 realtime) at `rate` bits per second, with a
    keyframe at most every `keyint` frames and none at scene cuts. Returns the file's bytes."""
    import av

    options = {"libx264": {"preset": "veryfast", "g": str(keyint), "sc_threshold": "0"},
               "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "row-mt": "1",
                              "g": str(keyint), "keyint_min": str(keyint)}}[encoder]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(encoder, rate=30, options=options)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt, stream.bit_rate = "yuv420p", rate
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def measure(data, repeat=3):
    """decode_video's wall and CPU milliseconds (best of `repeat`) and frames, and the same for
    decoding every frame in order; and the video's keyframes."""
    import av

    from simclip.video import decode_video

    def best(run):
        wall = cpu = float("inf")
        result = None
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            result = run()
            wall = min(wall, time.perf_counter() - w0)
            cpu = min(cpu, time.process_time() - c0)
        return round(wall * 1000), round(cpu * 1000), result

    def every_frame():
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "AUTO"
            return sum(1 for packet in container.demux(stream) for _ in packet.decode())

    with av.open(io.BytesIO(data)) as container:
        keys = sum(p.is_keyframe for p in container.demux(video=0) if p.size)
    wall, cpu, frames = best(lambda: decode_video(data))
    all_wall, all_cpu, count = best(every_frame)
    return {"keyframes": keys, "frames": len(frames), "wall_ms": wall, "cpu_ms": cpu,
            "every_frame_wall_ms": all_wall, "every_frame_cpu_ms": all_cpu, "of": count}


def make_videos(memes, heights, lengths):
    """[(row, bytes)]: for each length, height and encoder, the two contents."""
    videos = []
    for seconds in lengths:
        for height in heights:
            for encoder, fmt in FORMATS.items():
                size = (WIDTHS[height], height)
                # a keyframe at each meme (every 3 s), and the worst case: one meme panned
                # throughout, one keyframe (libvpx keeps a keyframe at each cut whatever its
                # settings)
                for per_meme, keyint, label in ((3, 90, "a meme every 3 s"),
                                                (seconds, 100_000, "one meme, one keyframe")):
                    frames = slideshow(memes, size, seconds, per_meme=per_meme)
                    data = encode_typical(frames, encoder, fmt, RATES[encoder][height], keyint)
                    videos.append(({"video": f"{seconds} s {height}p {encoder} {fmt}",
                                    "content": label, "MB": round(len(data) / 2**20, 2)}, data))
    return videos


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of meme images")
    p.add_argument("--heights", type=int, nargs="+", default=[480, 720], choices=sorted(WIDTHS))
    p.add_argument("--seconds", type=int, nargs="+", default=[5, 15], help="video lengths")
    p.add_argument("--repeat", type=int, default=5, help="measurements per video (the best counts)")
    return p.parse_args(argv)


def main(argv=None):
    """Encode the videos, measure each, print one JSON line per video."""
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    import av

    from simclip import video as video_module

    memes = sorted(p for p in Path(args.images).iterdir()
                   if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})
    if not memes:
        sys.exit(f"no images in {args.images}")
    video_module.MAX_VIDEO_DECODE_S = 60.0  # the whole cost, however busy the machine
    videos = make_videos(memes, args.heights, args.seconds)
    print(f"cpu_count={os.cpu_count()} load={os.getloadavg()} av={av.__version__}")
    for row, data in videos:  # measured after all the encoding
        result = {**row, **measure(data, repeat=args.repeat)}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
