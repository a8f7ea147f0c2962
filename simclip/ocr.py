"""Meme OCR: read the caption text of a meme image.

Engines share one tiny interface, `engine(image: PIL.Image) -> str`, plus a `.name`.
`get_ocr_engine(name, **options)` builds one by name:

- 'rapidocr': PP-OCR detection + recognition through onnxruntime (the models ship in the
  rapidocr wheel), tuned for memes on one core (on 400 HarMeme training memes): a small
  detector input, big images capped, long pictures read in overlapping tiles, thin strips
  padded, no angle classifier, one crop per recognizer call, glued caps words split again with
  a word list.
- 'tesseract': pytesseract (the Debian `tesseract-ocr` binary), with meme preprocessing:
  upscaling, masks for white and black Impact-style captions, a chosen page segmentation mode,
  and the passes merged.
- 'none': no OCR, the text tower sees an empty string.

'auto' is the engine that measures best on real memes (docs/ocr.md): rapidocr when it is
installed, else tesseract. Engines are built once and may be called from several threads.
The text clean-up they share (lines joined, passes merged, glued words split) is
`simclip.ocr_text`.
"""

from __future__ import annotations

import logging
import math
import shutil
from typing import Any, Protocol

from PIL import Image, ImageFilter

from .ocr_text import WordSplitter, clean_text, merge_passes

logger = logging.getLogger(__name__)

OCR_ENGINES = ("auto", "rapidocr", "tesseract", "none")


class OCREngine(Protocol):
    """What every engine is: `engine(image) -> caption text`, with a `name`.

    Engines may also have an `identity` string (name and settings) that the result cache keys on.
    """

    name: str

    def __call__(self, image: Image.Image) -> str: ...


def fit_size(image, min_side=0, max_side=0):
    """Resize so the short side reaches min_side and the long side stays within max_side.

    Small memes (a 217 px short side is typical) have caption strokes too thin for the
    recognizers; big screenshots cost time for no gain. 0 disables either bound.
    """
    w, h = image.size
    scale = 1.0
    if min_side and min(w, h) < min_side:
        scale = min_side / min(w, h)
    if max_side and max(w, h) * scale > max_side:
        scale = max_side / max(w, h)
    if abs(scale - 1.0) < 0.02:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.BOX)


def caption_masks(gray, white_level=200, black_level=60):
    """Black-on-white masks of white captions (Impact with outline) and of black captions.

    Args:
        gray: an 'L' image.
    Returns:
        [white_text_mask, black_text_mask], 'L' images where the text is black on white.
    """
    white = gray.point(lambda v: 0 if v >= white_level else 255)
    black = gray.point(lambda v: 0 if v <= black_level else 255)
    return [white.filter(ImageFilter.MedianFilter(3)), black.filter(ImageFilter.MedianFilter(3))]


class NoOCR:
    """The 'none' engine: no text."""

    name = "none"

    def __call__(self, image):
        return ""


class TesseractOCR:
    """Tesseract through pytesseract, with meme preprocessing.

    Args:
        psm: page segmentation mode; 11 (sparse text) suits captions scattered over a picture.
        min_side, max_side: resize bounds before recognition (see fit_size).
        masks: also read the white-caption and black-caption masks, merged with the plain pass.
        min_conf: drop words tesseract itself scores below this confidence (0-100; 0 keeps all).
        lang: tesseract language.
    """

    name = "tesseract"

    def __init__(self, psm=11, min_side=720, max_side=2000, masks=1, min_conf=0, lang="eng"):
        self._options = {"psm": psm, "min_side": min_side, "max_side": max_side, "masks": masks,
                         "min_conf": min_conf, "lang": lang}
        try:
            import pytesseract
        except ImportError as e:
            raise ImportError("the tesseract engine needs pytesseract: pip install 'simclip[tesseract]' "
                              "(and apt-get install tesseract-ocr), or use --ocr rapidocr") from e

        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise RuntimeError(
                "the tesseract binary is not installed: apt-get install tesseract-ocr "
                "(Debian/Ubuntu), brew install tesseract (macOS), or use --ocr rapidocr")
        self._tess = pytesseract
        # what the result depends on: part of the server's result-cache key
        self.identity = (f"tesseract:{pytesseract.get_tesseract_version()}:psm={psm},"
                         f"min={min_side},max={max_side},masks={masks},conf={min_conf},{lang}")
        self.config = f"--psm {psm}"
        self.min_side = min_side
        self.max_side = max_side
        self.masks = bool(masks)
        self.min_conf = min_conf
        self.lang = lang

    def __reduce__(self):
        return _rebuild_engine, (self.name, self._options)  # rebuilt, binary checked, elsewhere

    def _read(self, gray: Image.Image) -> str:
        """One tesseract pass: its words with confidence >= min_conf, line by line."""
        data = self._tess.image_to_data(gray, lang=self.lang, config=self.config,
                                        output_type=self._tess.Output.DICT)
        lines: dict[tuple[int, int, int], list[str]] = {}
        for i, word in enumerate(data["text"]):
            if word.strip() and float(data["conf"][i]) >= self.min_conf:
                key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                lines.setdefault(key, []).append(word)
        return clean_text(" ".join(words) for words in lines.values())

    def __call__(self, image):
        gray = fit_size(image.convert("L"), self.min_side, self.max_side)
        texts = [self._read(gray)]
        if self.masks:
            texts += [self._read(m) for m in caption_masks(gray)]
        return merge_passes(texts)


def plan_tiles(width, height, max_side, min_aspect=2.0, max_aspect=4.0, overlap=0.15,
               max_tiles=8):
    """Crop boxes that cut a long picture along its long side so each piece is read legibly.

    A stacked meme of 800 x 6400 capped at `max_side` = 1280 px on its long side would be read
    at 160 px wide, with captions a few pixels high. Instead it is cut into overlapping tiles,
    each as wide as the picture and at most max(short side, max_side) long (and at most
    `max_aspect` times its short side), so a tile needs no more shrinking than an ordinary meme
    of that width. The tiles are spread evenly, consecutive ones overlapping by at least
    `overlap` of a tile's length, so every caption line lies whole in one tile. At most
    `max_tiles` tiles: a longer picture gets longer tiles (shrunk more), so a 1 x 16384 strip
    costs `max_tiles` small reads, not a hundred.

    Args:
        width, height: the picture's size in pixels.
        max_side: the long side a tile is shrunk to at most (RapidOCR's max_side).
        min_aspect: pictures up to this long/short ratio are not cut, nor any picture whose long
            side fits within max_side (it is read at full scale anyway).
        max_aspect: the longest tile, in short sides (0: no bound but max_side).
        overlap: the least overlap of consecutive tiles, as a fraction of a tile's length.
        max_tiles: the most tiles (1: never cut).

    Returns:
        [(left, top, right, bottom), ...]: the whole picture, or 2..max_tiles boxes in reading
        order (top to bottom, or left to right for a wide picture).
    """
    long_side, short_side = max(width, height), min(width, height)
    whole = [(0, 0, width, height)]
    if max_tiles < 2 or long_side <= max_side or long_side <= min_aspect * short_side:
        return whole
    length = min(max(short_side, max_side), max_aspect * short_side if max_aspect else math.inf)
    n = math.ceil((long_side - overlap * length) / ((1 - overlap) * length))
    if n > max_tiles:
        n = max_tiles
        length = long_side / (n - (n - 1) * overlap)
    length = min(long_side, math.ceil(length))
    if n < 2:
        return whole
    step = (long_side - length) / (n - 1)
    spans = [(round(i * step), round(i * step) + length) for i in range(n)]
    if width > height:
        return [(a, 0, b, height) for a, b in spans]
    return [(0, a, width, b) for a, b in spans]


def pad_to_aspect(array, max_aspect):
    """Pad an HxWxC array on its right or bottom with its mean edge colour so that its long side
    is at most max_aspect times its short side (0: unchanged).

    The detector scales a picture's short side up to its input size, so a thin strip would
    become a huge input (a 40 x 16384 strip would reach it as 320 x 131,072 px); padded, the
    input stays bounded.
    """
    import numpy as np

    h, w = array.shape[:2]
    if not max_aspect or max(h, w) <= max_aspect * min(h, w):
        return array
    if h > w:
        edge, shape = array[:, -1], (h, math.ceil(h / max_aspect) - w) + array.shape[2:]
        axis = 1
    else:
        edge, shape = array[-1], (math.ceil(w / max_aspect) - h, w) + array.shape[2:]
        axis = 0
    fill = np.broadcast_to(edge.mean(axis=0).astype(array.dtype), shape)
    return np.concatenate([array, fill], axis=axis)


class RapidOCR:
    """PP-OCR (PP-OCRv6 small det + rec, shipped in the rapidocr wheel) through onnxruntime.

    Args:
        threads: onnxruntime intra-op threads per call (1: one core per image; a server runs
            several images in parallel instead). OpenCV, which rapidocr uses for its image
            work, is set to one thread process-wide (`cv2.setNumThreads(1)`): its default pool
            has a thread per core under callers that already read one picture per core, and
            each thread reserves address space (docs/security.md, docs/bench.md: 1.05x the
            OCR throughput on 16 cores).
        min_side, max_side: resize bounds before detection (see fit_size), per tile.
        det_side, det_limit: rapidocr's detector resize ('min': short side up to det_side,
            'max': long side down to det_side).
        use_cls: run the 180-degree angle classifier (memes are upright: off).
        text_score, box_thresh, unclip_ratio: recognition / detection thresholds.
        rec_batch: crops per recognizer call; 1 avoids padding short words to the longest line.
        rec_width: minimum recognizer input width (rapidocr pads every crop to at least this).
        split_words: split glued caps words with WordSplitter (needs wordninja).
        tile_aspect, max_tiles: a picture longer than max_side and than tile_aspect times its
            short side is read in up to max_tiles overlapping tiles (plan_tiles), the lines
            merged in reading order; max_tiles=1 never cuts.
        max_aspect: a (tile) longer than this many short sides is padded (pad_to_aspect) so the
            detector's input stays bounded; 0 never pads.
        device: where the detector and recognizer run: 'cpu', or 'cuda' / 'cuda:N' for
            onnxruntime's CUDAExecutionProvider on GPU N (needs onnxruntime-gpu in place of
            onnxruntime; see require_cuda_provider). The rest (resizing, box geometry, word splitting)
            runs on the calling thread. No silent fallback: CUDA that onnxruntime does not
            offer is a RuntimeError at build time, never a slow CPU engine that says 'cuda'.

    Raises:
        ValueError: a device other than cpu, cuda, cuda:N.
        RuntimeError: device cuda without CUDAExecutionProvider in onnxruntime's providers.

    The onnxruntime sessions are thread-safe for run(), rapidocr loads them under a lock, and
    a call mutates no shared state, so one engine serves a thread pool.
    """

    name = "rapidocr"

    def __init__(self, threads=1, min_side=0, max_side=1280, det_side=320, det_limit="min",
                 use_cls=0, text_score=0.5, box_thresh=0.5, unclip_ratio=1.6, rec_batch=1,
                 rec_width=96, split_words=1, tile_aspect=2.0, max_tiles=8, max_aspect=4.0,
                 device="cpu"):
        options = dict(locals())
        options.pop("self")
        cuda_id = cuda_device_id(device)
        from importlib.metadata import version

        import cv2
        import numpy as np
        from rapidocr import RapidOCR as _Engine

        cv2.setNumThreads(1)
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        params = {"Global.log_level": "error",
                  "Global.use_cls": bool(use_cls),
                  "Global.text_score": text_score,
                  "Det.limit_side_len": det_side,
                  "Det.limit_type": det_limit,
                  "Det.box_thresh": box_thresh,
                  "Det.unclip_ratio": unclip_ratio,
                  "Rec.rec_batch_num": rec_batch,
                  "Rec.rec_img_shape": [3, 48, rec_width],
                  "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                  "EngineConfig.onnxruntime.inter_op_num_threads": 1}
        if cuda_id is not None:
            require_cuda_provider()
            params["EngineConfig.onnxruntime.use_cuda"] = True
            params["EngineConfig.onnxruntime.cuda_ep_cfg.device_id"] = cuda_id
        self._engine = _Engine(params=params)
        self._options = options
        self._np = np
        self.min_side = min_side
        self.max_side = max_side
        self.tile_aspect = tile_aspect
        self.max_tiles = max_tiles
        self.max_aspect = max_aspect
        self._split = None
        if split_words:
            if WordSplitter.find_word_list():
                self._split = WordSplitter()
            else:
                logger.warning("wordninja is not installed: glued caption words stay glued "
                               "(pip install wordninja)")
        # what the result depends on: part of the server's result-cache key
        settings = {**params, "min_side": min_side, "max_side": max_side,
                    "tile_aspect": tile_aspect, "max_tiles": max_tiles, "max_aspect": max_aspect,
                    "split_words": self._split.identity if self._split else 0}
        for speed_only in ("EngineConfig.onnxruntime.intra_op_num_threads",
                           "EngineConfig.onnxruntime.use_cuda",
                           "EngineConfig.onnxruntime.cuda_ep_cfg.device_id"):
            settings.pop(speed_only, None)
        self.identity = f"rapidocr:{version('rapidocr')}:" + ",".join(
            f"{k}={v}" for k, v in sorted(settings.items()))
        if cuda_id is not None:  # GPU kernels may round differently: never mixed in a cache
            self.identity += ",device=cuda"

    def __reduce__(self):
        # The onnxruntime sessions do not pickle: another process builds its own engine.
        return _rebuild_engine, (self.name, self._options)

    def read_lines(self, image):
        """The text lines of a PIL image, in reading order, with their boxes.

        Returns:
            [(text, (x0, y0, x1, y1)), ...]: each line with its bounding box in the image's
            pixels. A long picture is read tile by tile (plan_tiles), and each tile keeps the
            lines whose centre lies in its share of the picture: up to the middle of its
            overlaps with its neighbours. A line shorter than the overlap is then kept once,
            from the tile that holds it whole (the other one sees it cut, centre outside).
        """
        image = image.convert("RGB")
        tiles = plan_tiles(image.width, image.height, self.max_side, self.tile_aspect,
                           self.max_aspect, max_tiles=self.max_tiles)
        if len(tiles) == 1:
            return self._read_tile(image)
        axis = 0 if image.width > image.height else 1  # the axis the tiles follow
        lines = []
        for i, box in enumerate(tiles):
            start, end = box[axis], box[axis + 2]
            prev_end = tiles[i - 1][axis + 2] if i else start
            next_start = tiles[i + 1][axis] if i + 1 < len(tiles) else end
            # this tile's share of the picture: up to the middle of each overlap
            lo = (start + prev_end) / 2 if i else -math.inf
            hi = (next_start + end) / 2 if i + 1 < len(tiles) else math.inf
            for text, (x0, y0, x1, y1) in self._read_tile(image.crop(box)):
                centre = start + ((x0 + x1) if axis == 0 else (y0 + y1)) / 2
                if lo <= centre < hi:
                    dx, dy = (start, 0) if axis == 0 else (0, start)
                    lines.append((text, (x0 + dx, y0 + dy, x1 + dx, y1 + dy)))
        return lines

    def _read_tile(self, image):
        """[(text, box)] of one picture or tile, box in its own pixels."""
        fitted = fit_size(image, self.min_side, self.max_side)
        sx, sy = fitted.width / image.width, fitted.height / image.height
        result = self._engine(pad_to_aspect(self._np.asarray(fitted), self.max_aspect))
        if not result.txts:
            return []
        lines = []
        for box, text in zip(result.boxes, result.txts):
            xs, ys = box[:, 0] / sx, box[:, 1] / sy
            lines.append((text, (float(xs.min()), float(ys.min()),
                                 float(xs.max()), float(ys.max()))))
        return lines

    def __call__(self, image):
        text = clean_text(text for text, _ in self.read_lines(image))
        return self._split(text) if self._split else text


CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def cuda_device_id(device: str) -> int | None:
    """An OCR device name -> its CUDA device id: 'cpu' -> None, 'cuda' -> 0, 'cuda:1' -> 1.

    Raises:
        ValueError: any other name.
    """
    if device == "cpu":
        return None
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"OCR device {device!r}: use cpu, cuda or cuda:N")


def require_cuda_provider() -> None:
    """Raise RuntimeError unless onnxruntime can run sessions on CUDA (the condition rapidocr
    checks before it asks for CUDAExecutionProvider: it would otherwise fall back to the CPU
    with a log line)."""
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    if CUDA_PROVIDER not in providers or onnxruntime.get_device() != "GPU":
        raise RuntimeError(
            f"OCR on CUDA needs onnxruntime-gpu ({CUDA_PROVIDER} is not among {providers}, "
            f"device {onnxruntime.get_device()}): pip uninstall onnxruntime && "
            "pip install onnxruntime-gpu, or use device=cpu")


def is_rapidocr_available():
    """True when the rapidocr package (and onnxruntime) can be imported."""
    try:
        import onnxruntime  # noqa: F401
        import rapidocr  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine_name(name):
    """'auto' -> the best installed engine's name; other names unchanged."""
    if name == "auto":
        return "rapidocr" if is_rapidocr_available() else "tesseract"
    return name


def get_ocr_engine(name: str = "auto", **kwargs: Any) -> OCREngine:
    """Build an OCR engine by name; keyword options go to its constructor.

    Args:
        name: one of OCR_ENGINES: 'auto' (rapidocr if installed, else tesseract), 'rapidocr',
            'tesseract' or 'none'.
        **kwargs: options of RapidOCR or TesseractOCR (e.g. threads, min_side in pixels).

    Returns:
        An engine: `engine(image: PIL.Image.Image) -> str`, safe to call from several threads.

    Raises:
        ValueError: an unknown engine name.
        ImportError: the engine's package (rapidocr, pytesseract) is not installed.
        RuntimeError: tesseract was chosen but its binary is not installed.
        TypeError: an option the engine does not take.
    """
    name = resolve_engine_name(name)
    if name == "rapidocr":
        return RapidOCR(**kwargs)
    if name == "tesseract":
        return TesseractOCR(**kwargs)
    if name == "none":
        return NoOCR()
    raise ValueError(f"unknown OCR engine {name!r}; available: {', '.join(OCR_ENGINES)}")


def _rebuild_engine(name, options):
    """An engine unpickled in another process (the server's OCR workers): built anew."""
    return get_ocr_engine(name, **options)


def parse_ocr_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """An OCR engine spec -> (name, options): 'rapidocr:det_side=640,device=cuda:1' ->
    ('rapidocr', {'det_side': 640, 'device': 'cuda:1'}). Values become int, then float, else
    stay strings. ValueError for an option that is not KEY=VALUE."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"OCR option {part!r} in {spec!r} is not KEY=VALUE (write key=value)")
        options[key.strip()] = _parse_option_value(value.strip())
    return name.strip(), options


def _parse_option_value(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
