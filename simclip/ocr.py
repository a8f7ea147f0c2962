"""Meme OCR: read the caption text of a meme image.

Engines share one tiny interface, `engine(image: PIL.Image) -> str`. `get_ocr_engine(name)` builds
one by name: 'rapidocr' (PP-OCR models through onnxruntime, shipped in the wheel), 'tesseract'
(pytesseract, the required baseline), 'none' (no OCR: the text tower sees an empty string).
The default, 'auto', is the engine that measures best on real memes (see docs/ocr.md) when it
is installed, else tesseract.
"""

import logging
import shutil

from PIL import Image

logger = logging.getLogger(__name__)

OCR_ENGINES = ("auto", "rapidocr", "tesseract", "none")


def clean_text(lines):
    """Join OCR lines into one caption string, dropping empty lines and extra spaces."""
    out = []
    for line in lines:
        line = " ".join(str(line).split())
        if line:
            out.append(line)
    return "\n".join(out)


def upscale_small(image, min_side=720, max_side=2000):
    """Upscale small images so caption strokes are tall enough for the recognizer."""
    w, h = image.size
    short = min(w, h)
    if short >= min_side:
        return image
    scale = min(min_side / short, max_side / max(w, h))
    if scale <= 1.0:
        return image
    return image.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)


class NoOCR:
    """The 'none' engine: no text."""

    name = "none"

    def __call__(self, image):
        return ""


class TesseractOCR:
    """Tesseract through pytesseract, with meme preprocessing (upscaling, sparse-text layout)."""

    name = "tesseract"

    def __init__(self, psm=11, lang="eng"):
        import pytesseract

        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise RuntimeError(
                "the tesseract binary is not installed: apt-get install tesseract-ocr "
                "(Debian/Ubuntu), brew install tesseract (macOS), or use --ocr rapidocr")
        self._tess = pytesseract
        self.config = f"--psm {psm}"
        self.lang = lang

    def __call__(self, image):
        gray = upscale_small(image.convert("L"))
        text = self._tess.image_to_string(gray, lang=self.lang, config=self.config)
        return clean_text(text.splitlines())


class RapidOCR:
    """PP-OCR detection + recognition through onnxruntime (models ship in the rapidocr wheel)."""

    name = "rapidocr"

    def __init__(self, threads=1, det_side=736, det_limit="min", use_cls=1, text_score=0.5,
                 box_thresh=0.5, unclip_ratio=1.6, rec_batch=6, min_side=0, max_side=2000):
        import numpy as np
        from rapidocr import RapidOCR as _Engine

        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        params = {"Global.log_level": "warning",
                  "Global.use_cls": bool(use_cls),
                  "Global.text_score": text_score,
                  "Det.limit_side_len": det_side,
                  "Det.limit_type": det_limit,
                  "Det.box_thresh": box_thresh,
                  "Det.unclip_ratio": unclip_ratio,
                  "Rec.rec_batch_num": rec_batch,
                  "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                  "EngineConfig.onnxruntime.inter_op_num_threads": 1}
        self._engine = _Engine(params=params)
        self._np = np
        self.min_side = min_side
        self.max_side = max_side

    def __call__(self, image):
        image = image.convert("RGB")
        if self.min_side:
            image = upscale_small(image, self.min_side, self.max_side)
        result = self._engine(self._np.asarray(image))
        return clean_text(result.txts or ())


def is_rapidocr_available():
    """True when the rapidocr package (and onnxruntime) can be imported."""
    try:
        import onnxruntime  # noqa: F401
        import rapidocr  # noqa: F401
    except ImportError:
        return False
    return True


def get_ocr_engine(name="auto", **kwargs):
    """Build an OCR engine by name; see OCR_ENGINES."""
    if name == "auto":
        name = "rapidocr" if is_rapidocr_available() else "tesseract"
    if name == "rapidocr":
        return RapidOCR(**kwargs)
    if name == "tesseract":
        return TesseractOCR(**kwargs)
    if name == "none":
        return NoOCR()
    raise ValueError(f"unknown OCR engine {name!r}; available: {', '.join(OCR_ENGINES)}")
