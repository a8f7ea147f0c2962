"""The Predictor: decode -> OCR -> frozen encoders -> SimCLIP head (or zero-shot) -> warnings.

It is the one entry point for the server and the CLI. The stages are public too
(`decode`, `read_text`, `classify`), so a server can run OCR in a pool and batch the encoders.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

import torch
from PIL import Image

from .constants import MAX_IMAGE_PIXELS, WARNING_CATEGORIES
from .head import SimCLIPHead, warning_scores
from .images import ImageSource, decode_image
from .ocr import OCREngine
from .zeroshot import ZERO_SHOT_THRESHOLD, ZeroShotScorer

if TYPE_CHECKING:
    from .backbone import Backbone

TRAINED = "trained"
ZERO_SHOT = "zero-shot"


class WarningHit(TypedDict):
    """A warning category whose score reached its threshold."""

    id: str  # a WARNING_CATEGORIES key
    name: str  # its display name
    score: float  # in [0, 1]
    threshold: float  # in [0, 1]


class Prediction(TypedDict):
    """The result for one image (a plain dict at runtime)."""

    mode: str  # TRAINED or ZERO_SHOT
    probabilities: dict[str, dict[str, float]]  # {task: {label: p}}; empty in zero-shot mode
    scores: dict[str, float]  # {category: score in [0, 1]}
    warnings: list[WarningHit]  # categories at or over threshold, highest score first
    text: NotRequired[str]  # OCR text (set by classify and predict)
    timings_ms: NotRequired[dict[str, float]]  # stage -> milliseconds (classify and predict)


class CategoryInfo(TypedDict):
    """One warning category a Predictor gives."""

    id: str
    name: str
    description: str
    default_threshold: float


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


class Predictor:
    """Classifies meme images into warning categories with a frozen CLIP and a SimCLIP head.

    Usually built by `load_classifier`. With a `head` (and its checkpoint `metadata`) it runs in
    trained mode; without one, in zero-shot mode (CLIP prompt ensembles, no probabilities).

    Args:
        backbone: the frozen encoders.
        ocr: the OCR engine (`get_ocr_engine`).
        head: a trained SimCLIPHead, or None for zero-shot.
        metadata: the checkpoint metadata (needs its 'warnings' rules when `head` is given).
        checkpoint_id: identifies the head in `identity` (the checkpoint's sha256).
        batch_size: images per encoder call.
        max_pixels: the decode cap in pixels (width x height).

    Raises:
        KeyError: a head without metadata 'warnings'.
    """

    def __init__(self, backbone: Backbone, ocr: OCREngine, head: SimCLIPHead | None = None,
                 metadata: dict[str, Any] | None = None, checkpoint_id: str | None = None,
                 batch_size: int = 32, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.backbone = backbone
        self.ocr = ocr
        self.head = head
        self.metadata: dict[str, Any] = metadata or {}
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        cats: dict[str, float]
        self._zero_shot: ZeroShotScorer | None
        if head is not None:
            self.mode = TRAINED
            self._rules: list[dict[str, Any]] = self.metadata["warnings"]  # the warning rules
            cats = {w["category"]: w["threshold"] for w in reversed(self._rules)}
            self._zero_shot = None
        else:
            self.mode = ZERO_SHOT
            self._zero_shot = ZeroShotScorer(backbone)
            cats = {c: ZERO_SHOT_THRESHOLD for c in self._zero_shot.categories}
        self._thresholds = {c: cats[c] for c in WARNING_CATEGORIES if c in cats}
        self.checkpoint_id = checkpoint_id or "zero-shot"

    @property
    def identity(self) -> str:
        """32 hex characters that change whenever results could (backbone, head, OCR engine)."""
        ocr = getattr(self.ocr, "identity", self.ocr.name)  # engine settings change the text
        raw = f"{self.backbone.info.id}|{self.checkpoint_id}|{ocr}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def device(self) -> str:
        """The torch device the encoders run on, as a string ('cpu', 'cuda', 'cuda:1', 'mps')."""
        return str(self.backbone.device)

    def list_categories(self) -> list[CategoryInfo]:
        """The warning categories this model gives: id, name, description, default threshold."""
        return [{"id": c, "name": WARNING_CATEGORIES[c]["name"],
                 "description": WARNING_CATEGORIES[c]["description"],
                 "default_threshold": round(float(t), 4)} for c, t in self._thresholds.items()]

    def decode(self, data: ImageSource) -> Image.Image:
        """Bytes, path or PIL -> RGB PIL image (`decode_image`); raises a typed ImageError."""
        return decode_image(data, max_pixels=self.max_pixels)

    def read_text(self, image: Image.Image) -> str:
        """OCR text of a decoded image ('' when the engine is 'none' or finds nothing)."""
        return self.ocr(image)

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image],
              texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded images and their texts -> (img_emb, txt_emb), each float32 (B, D) on the CPU.

        Encoded `batch_size` at a time; RuntimeError when `images` is empty.
        """
        img, txt = [], []
        for i in range(0, len(images), self.batch_size):
            img.append(self.backbone.encode_images(images[i:i + self.batch_size]))
            txt.append(self.backbone.encode_texts(texts[i:i + self.batch_size]))
        return torch.cat(img), torch.cat(txt)

    @torch.no_grad()
    def score(self, img_emb: torch.Tensor, txt_emb: torch.Tensor,
              texts: Sequence[str]) -> list[Prediction]:
        """Embeddings (B, D) x 2 and the B OCR texts -> B results without "text" and "timings_ms".

        In zero-shot mode a blank text leaves the image embedding alone to decide.
        """
        per_image: list[dict[str, tuple[float, float]]]
        probs: list[dict[str, dict[str, float]]]
        if self.head is None:
            has_text = torch.tensor([bool(t.strip()) for t in texts])
            zero_shot = cast(ZeroShotScorer, self._zero_shot)  # set whenever head is None
            per_image = [{c: (s, self._thresholds[c]) for c, s in row.items()}
                         for row in zero_shot(img_emb, txt_emb, has_text)]
            probs = [{} for _ in texts]
        else:
            p = self.head.predict_proba(img_emb, txt_emb)
            per_image = warning_scores(p, self.head.config, self._rules)
            probs = [{t.name: dict(zip(t.labels, [round(v, 6) for v in p[t.name][i].tolist()]))
                      for t in self.head.config.tasks} for i in range(len(texts))]
        out: list[Prediction] = []
        for row, pr in zip(per_image, probs):
            scores = {c: round(s, 6) for c, (s, _) in row.items()}
            warnings: list[WarningHit] = [
                {"id": c, "name": WARNING_CATEGORIES[c]["name"], "score": round(s, 6),
                 "threshold": round(t, 6)}
                for c, (s, t) in row.items() if s >= t]
            warnings.sort(key=lambda w: -w["score"])
            out.append({"mode": self.mode, "probabilities": pr, "scores": scores,
                        "warnings": warnings})
        return out

    def classify(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[Prediction]:
        """Decoded images and their OCR texts -> per-image results, encoders run in batches.

        Each result has "text" and "timings_ms" {"encode", "head"}: the batch's totals in ms.
        """
        t0 = time.perf_counter()
        img_emb, txt_emb = self.embed(images, texts)
        t_enc = _ms(t0)
        t1 = time.perf_counter()
        results = self.score(img_emb, txt_emb, texts)
        t_head = _ms(t1)
        for r, text in zip(results, texts):
            r["text"] = text
            r["timings_ms"] = {"encode": t_enc, "head": t_head}
        return results

    def predict(self, images: Iterable[ImageSource]) -> list[Prediction]:
        """Classify a list of images (bytes, paths or PIL): decode, OCR, encode, score.

        Args:
            images: encoded bytes, filesystem paths or PIL images; [] gives [].

        Returns:
            One dict per image, in order: mode, probabilities per task and label (trained mode),
            scores per warning category, warnings over threshold, OCR text, and timings_ms
            {"decode", "ocr", "encode", "head"} in milliseconds.

        Raises:
            ImageError: the subclass (EmptyImageError, UnsupportedImageError,
                ImageTooLargeError, CorruptImageError) for the first image that cannot be
                decoded; no image is classified then.
        """
        decoded: list[Image.Image] = []
        texts: list[str] = []
        t_dec: list[float] = []
        t_ocr: list[float] = []
        for data in images:
            t0 = time.perf_counter()
            decoded.append(self.decode(data))
            t_dec.append(_ms(t0))
            t0 = time.perf_counter()
            texts.append(self.read_text(decoded[-1]))
            t_ocr.append(_ms(t0))
        results = self.classify(decoded, texts) if decoded else []
        for r, d, o in zip(results, t_dec, t_ocr):
            r["timings_ms"] = {"decode": d, "ocr": o, **r["timings_ms"]}
        return results

