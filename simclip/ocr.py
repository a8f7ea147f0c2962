"""Meme OCR: read the caption text of a meme image.

Engines share one tiny interface, `engine(image: PIL.Image) -> str`, plus a `.name`.
`get_ocr_engine(name, **options)` builds one by name:

- 'rapidocr': PP-OCR detection + recognition through onnxruntime (the models ship in the
  rapidocr wheel), tuned for memes on one core: a small detector input, big images capped, no
  angle classifier, one crop per recognizer call, glued caps words split again with a word list.
- 'tesseract': pytesseract (the Debian `tesseract-ocr` binary), with meme preprocessing:
  upscaling, masks for white and black Impact-style captions, a chosen page segmentation mode,
  and the passes merged.
- 'none': no OCR, the text tower sees an empty string.

'auto' is the engine that measures best on real memes (docs/ocr.md): rapidocr when it is
installed, else tesseract. Engines are built once and may be called from several threads.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import shutil
import threading
from collections import Counter
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageFilter

logger = logging.getLogger(__name__)

OCR_ENGINES = ("auto", "rapidocr", "tesseract", "none")


class OCREngine(Protocol):
    """What every engine is: `engine(image) -> caption text`, with a `name`.

    Engines may also have an `identity` string (name and settings) that the result cache keys on.
    """

    name: str

    def __call__(self, image: Image.Image) -> str: ...


def clean_text(lines):
    """Join OCR lines into one caption string, dropping empty lines and extra spaces."""
    out = []
    for line in lines:
        line = " ".join(str(line).split())
        if line:
            out.append(line)
    return "\n".join(out)


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


def merge_passes(texts):
    """First pass as is, then the words of later passes that it lacks (bag of words)."""
    if not texts:
        return ""
    merged = [texts[0]]
    have = Counter(w.lower() for w in texts[0].split())
    for text in texts[1:]:
        extra = []
        for word in text.split():
            key = word.lower()
            if have[key] > 0:
                have[key] -= 1
            else:
                extra.append(word)
        if extra:
            merged.append(" ".join(extra))
        have = Counter(w.lower() for w in " ".join(merged).split())
    return clean_text(merged)


_CONTRACTION_TAILS = {"ll", "re", "ve", "s", "t", "d", "m"}  # from "we'll" etc., not words


class WordSplitter:
    """Splits caption words the recognizer glued together ('HAPPYBIRTHDAY' -> 'HAPPY BIRTHDAY').

    PP-OCR often drops the spaces of all-caps Impact captions. A run of letters that is not
    among the 100,000 most frequent English words (the unigram list shipped in the wordninja
    wheel) is split by dynamic programming, cost log(rank), only if every piece is frequent
    enough for its length: 1 letter 'a' or 'i', 2 letters top 3,500 (no contraction tails
    such as 'll'), 3 letters top 10,000, 4 letters top 30,000, longer top 100,000. Runs under 5 letters are kept,
    so are names the pieces cannot cover ('Lindell'). Tuned on HarMeme captions (docs/ocr.md).
    """

    def __init__(self, min_len=5, max_ranks=(3500, 10000, 30000), max_rank=100000):
        self.min_len = min_len
        self.max_ranks = max_ranks  # max rank of 2-letter, 3-letter, ... pieces
        self.max_rank = max_rank  # max rank of longer pieces, and of words kept whole
        self._rank = None
        self._lock = threading.Lock()

    @staticmethod
    def find_word_list():
        """Path of the word list in the wordninja install (beside its module), or None."""
        spec = find_spec("wordninja")
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / "wordninja" / "wordninja_words.txt.gz"
        return path if path.is_file() else None

    def _load(self):
        """word -> frequency rank, read once (about 0.1 s)."""
        with self._lock:
            if self._rank is None:
                words = gzip.decompress(self.find_word_list().read_bytes()).decode().split()
                self._cost_base = math.log(len(words))
                self._rank = {w: i for i, w in enumerate(words[:self.max_rank])
                              if w not in _CONTRACTION_TAILS}
        return self._rank

    def _is_piece(self, piece, rank):
        """Whether a dictionary word of this rank may be a piece of a split."""
        if len(piece) == 1:
            return piece in ("a", "i")
        if len(piece) - 2 < len(self.max_ranks):
            return rank < self.max_ranks[len(piece) - 2]
        return True

    def split_word(self, word):
        """The pieces of one letter run, or None to keep it whole."""
        rank = self._rank or self._load()
        low = word.lower()
        if len(low) < self.min_len or low in rank:
            return None
        n = len(low)
        best = [(0.0, 0)] + [(math.inf, 0)] * n  # (cost, start of last piece) per prefix
        for i in range(1, n + 1):
            for j in range(max(0, i - 24), i):
                r = rank.get(low[j:i])
                if r is None or best[j][0] == math.inf:
                    continue
                if not self._is_piece(low[j:i], r):
                    continue
                cost = best[j][0] + math.log((r + 1) * self._cost_base)
                if cost < best[i][0]:
                    best[i] = (cost, j)
        if best[n][0] == math.inf:
            return None
        pieces, i = [], n
        while i > 0:
            j = best[i][1]
            pieces.append(word[j:i])
            i = j
        return pieces[::-1] if len(pieces) > 1 else None

    def __call__(self, text):
        def repl(m):
            pieces = self.split_word(m.group(0))
            return " ".join(pieces) if pieces else m.group(0)
        return re.sub(r"[A-Za-z]+", repl, text)


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
        import pytesseract

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


class RapidOCR:
    """PP-OCR (PP-OCRv6 small det + rec, shipped in the rapidocr wheel) through onnxruntime.

    Args:
        threads: onnxruntime intra-op threads per call (1: one core per image; a server runs
            several images in parallel instead).
        min_side, max_side: resize bounds before detection (see fit_size).
        det_side, det_limit: rapidocr's detector resize ('min': short side up to det_side,
            'max': long side down to det_side).
        use_cls: run the 180-degree angle classifier (memes are upright: off).
        text_score, box_thresh, unclip_ratio: recognition / detection thresholds.
        rec_batch: crops per recognizer call; 1 avoids padding short words to the longest line.
        rec_width: minimum recognizer input width (rapidocr pads every crop to at least this).
        split_words: split glued caps words with WordSplitter (needs wordninja).

    The onnxruntime sessions are thread-safe for run(), rapidocr loads them under a lock, and
    a call mutates no shared state, so one engine serves a thread pool.
    """

    name = "rapidocr"

    def __init__(self, threads=1, min_side=0, max_side=1280, det_side=256, det_limit="min",
                 use_cls=0, text_score=0.5, box_thresh=0.5, unclip_ratio=1.6, rec_batch=1,
                 rec_width=96, split_words=1):
        import numpy as np
        from rapidocr import RapidOCR as _Engine

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
        self._engine = _Engine(params=params)
        self._np = np
        # what the result depends on: part of the server's result-cache key
        self.identity = "rapidocr:" + ",".join(
            f"{k}={v}" for k, v in sorted({**params, "min_side": min_side, "max_side": max_side,
                                           "split_words": split_words}.items()))
        self.min_side = min_side
        self.max_side = max_side
        self._split = None
        if split_words:
            if WordSplitter.find_word_list():
                self._split = WordSplitter()
            else:
                logger.warning("wordninja is not installed: glued caption words stay glued "
                               "(pip install wordninja)")

    def __call__(self, image):
        image = fit_size(image.convert("RGB"), self.min_side, self.max_side)
        result = self._engine(self._np.asarray(image))
        text = clean_text(result.txts or ())
        return self._split(text) if self._split else text


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
