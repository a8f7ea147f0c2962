"""The Predictor: decode -> OCR -> frozen encoders -> SimCLIP head (or zero-shot) -> warnings.

It is the one entry point for the server and the CLI. The stages are public too
(`decode`, `read_text`, `classify`), so a server can run OCR in a pool and batch the encoders.

A picture is judged on every view a viewer gets of it: each frame of an animation or a video that
is shown (`decode` returns `Frames`), and, for an extreme aspect ratio, square tiles of each frame
(`split_tiles`). Every view is scored with the picture's (merged) OCR text, and the picture's
score per category is the highest over its views, so it is flagged when any view is.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import torch
from PIL import Image

from .constants import (
    DECODE_VERSION,
    MAX_ANIMATION_FRAMES,
    MAX_IMAGE_PIXELS,
    MAX_TILES,
    MAX_VIEWS,
    TILE_MIN_ASPECT,
    TRAINED,
    WARNING_CATEGORIES,
    ZERO_SHOT,
)
from .cost import Cost, measure_cost
from .head import SimCLIPHead, warning_scores
from .images import Frames, ImageSource
from .ocr import OCREngine
from .picture import decode_picture, read_picture_text
from .zeroshot import Calibration, ZeroShotScorer, get_prompts_digest

if TYPE_CHECKING:
    from .backbone import Backbone



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
    calibrated: bool  # False: zero-shot scores not fitted on labelled memes (rough, see zeroshot.py)
    text: NotRequired[str]  # OCR text (set by classify and predict); merged over frames
    frames: NotRequired[int]  # frames judged: 1 for a still image (classify and predict)
    timings_ms: NotRequired[dict[str, float]]  # stage -> milliseconds (classify and predict)


class CategoryInfo(TypedDict):
    """One warning category a Predictor gives."""

    id: str
    name: str
    description: str
    default_threshold: float
    calibrated: bool  # a trained head's or a fitted zero-shot calibration's threshold
    source: str  # TRAINED (the head gives it) or ZERO_SHOT (CLIP prompt ensembles)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


def split_tiles(image: Image.Image, max_tiles: int = MAX_TILES,
                min_aspect: float = TILE_MIN_ASPECT) -> list[Image.Image]:
    """CLIP's view of a picture with an extreme aspect ratio: square tiles along its long side.

    CLIP's preprocessing keeps the centre square, so a 800x6400 stacked meme would lose 87.5%
    of its rows; tiles let every row reach the encoder at the scale of the short side
    (bench/aspect_bench.py, docs/api.md). A picture at most `min_aspect` times longer than
    wide (or wide than long) is returned alone, so common memes cost one encoder input.

    Args:
        image: an RGB image.
        max_tiles: the most tiles; a longer picture gets longer tiles, each padded to a
            square with black (open_clip's letterbox fill) so that nothing is cropped.
        min_aspect: the long/short side ratio over which the picture is tiled.

    Returns:
        [image] or 2..max_tiles tiles, ordered along the long side, overlapping evenly so that
        together they cover every pixel.
    """
    w, h = image.size
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 0 or long_side <= min_aspect * short_side or max_tiles < 2:
        return [image]
    n = min(max_tiles, math.ceil(long_side / short_side))
    side = max(short_side, math.ceil(long_side / n))
    offsets = [round(i * (long_side - side) / (n - 1)) for i in range(n)]
    tiles = []
    for o in offsets:
        box = (0, o, w, o + side) if h >= w else (o, 0, o + side, h)
        tile = image.crop(box)
        if side > short_side:
            square = Image.new("RGB", (side, side), (0, 0, 0))
            square.paste(tile, ((side - tile.width) // 2, (side - tile.height) // 2))
            tile = square
        tiles.append(tile)
    return tiles


class Predictor:
    """Classifies meme images into warning categories with a frozen CLIP and a SimCLIP head.

    Usually built by `load_classifier`. With a `head` (and its checkpoint `metadata`) it runs in
    trained mode; without one, in zero-shot mode (CLIP prompt ensembles, no probabilities). In
    trained mode the warning categories the head does not give are scored zero-shot
    (`zero_shot_fallback`), so a head trained on one dataset (Harm-C: "Harmful") does not take
    away the other categories' protection; `list_categories` says which source gives each.

    Args:
        backbone: the frozen encoders.
        ocr: the OCR engine (`get_ocr_engine`).
        head: a trained SimCLIPHead, or None for zero-shot.
        metadata: the checkpoint metadata (needs its 'warnings' rules when `head` is given).
        checkpoint_id: identifies the head in `identity` (the checkpoint's sha256).
        batch_size: images (views) per encoder call.
        max_pixels: the decode cap in pixels (width x height).
        max_frames: frames of an animation judged at most (`decode_frames`).
        max_views: encoder inputs per picture at most (frames x tiles, `split_tiles`).
        calibration: a fitted `simclip.zeroshot.Calibration` for this backbone, for the
            zero-shot categories; None scores them uncalibrated (and says so in every result).
        zero_shot_fallback: in trained mode, score the categories the head lacks zero-shot
            (False: the head's categories only).

    Raises:
        KeyError: a head without metadata 'warnings'.
    """

    def __init__(self, backbone: Backbone, ocr: OCREngine, head: SimCLIPHead | None = None,
                 metadata: dict[str, Any] | None = None, checkpoint_id: str | None = None,
                 batch_size: int = 32, max_pixels: int = MAX_IMAGE_PIXELS,
                 max_frames: int = MAX_ANIMATION_FRAMES, max_views: int = MAX_VIEWS,
                 calibration: Calibration | None = None, zero_shot_fallback: bool = True) -> None:
        self.backbone = backbone
        self.ocr = ocr
        self.head = head
        self.metadata: dict[str, Any] = metadata or {}
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        self.max_views = max_views
        cats: dict[str, float]
        self._zero_shot: ZeroShotScorer | None
        cats, calibrated = {}, set()
        self._zero_shot = None
        if head is not None:
            self.mode = TRAINED
            self._rules: list[dict[str, Any]] = self.metadata["warnings"]  # the warning rules
            cats = {w["category"]: w["threshold"] for w in reversed(self._rules)}
            calibrated = set(cats)
        else:
            self.mode = ZERO_SHOT
        self._trained = set(cats)  # the categories the head gives
        if head is None or zero_shot_fallback:
            zero_shot = ZeroShotScorer(backbone, calibration)
            extra = {c: t for c, t in zero_shot.thresholds.items() if c not in cats}
            if extra:
                self._zero_shot = zero_shot
                cats.update(extra)
                calibrated |= {c for c in extra if zero_shot.is_calibrated(c)}
        self._thresholds = {c: cats[c] for c in WARNING_CATEGORIES if c in cats}
        self._calibrated = {c: c in calibrated for c in self._thresholds}
        # The prompts and the fit change the zero-shot categories' results.
        zero_shot_id = None
        if self._zero_shot is not None:
            raw = json.dumps([get_prompts_digest(), asdict(calibration) if calibration else None],
                             sort_keys=True).encode()
            zero_shot_id = "zero-shot:" + hashlib.sha256(raw).hexdigest()[:16]
        self.checkpoint_id = checkpoint_id or zero_shot_id  # the head (its sha256), or zero-shot
        self._zero_shot_id = zero_shot_id if checkpoint_id else None  # the fallback's part
        self.cost: Cost | None = None  # ms per picture on this device, once `measure_cost` ran

    @property
    def identity(self) -> str:
        """32 hex characters that change whenever results could (backbone, head, OCR engine,
        the decoding rules: DECODE_VERSION)."""
        ocr = getattr(self.ocr, "identity", self.ocr.name)  # engine settings change the text
        raw = f"{self.backbone.info.id}|{self.checkpoint_id}|{ocr}|decode{DECODE_VERSION}"
        if self._zero_shot_id:
            raw += f"|{self._zero_shot_id}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def measure_cost(self, batch: int = 2) -> Cost:
        """Measure what one picture costs on this device (decode, OCR, encoders and head:
        `simclip.cost.measure_cost`, which warms every stage first), keep it in `cost` and
        return it."""
        self.cost = measure_cost(self, batch=batch)
        return self.cost

    @property
    def device(self) -> str:
        """The torch device the encoders run on, as a string ('cpu', 'cuda', 'cuda:1', 'mps')."""
        return str(self.backbone.device)

    @property
    def calibrated(self) -> bool:
        """True when every category's score is calibrated: a trained head's, or zero-shot with a
        calibration fitted for it. False means some scores only rank pictures."""
        return all(self._calibrated.values())

    def list_categories(self) -> list[CategoryInfo]:
        """The warning categories this model gives: id, name, description, default threshold,
        and whether that threshold is calibrated."""
        return [{"id": c, "name": WARNING_CATEGORIES[c]["name"],
                 "description": WARNING_CATEGORIES[c]["description"],
                 "default_threshold": round(float(t), 4), "calibrated": self._calibrated[c],
                 "source": TRAINED if c in self._trained else ZERO_SHOT}
                for c, t in self._thresholds.items()]

    def decode(self, data: ImageSource,
               exif_formats: Collection[str] | None = None,
               display_rules: Collection[str] = ()) -> Image.Image | Frames:
        """Bytes, path or PIL -> what a viewer sees, within this predictor's limits
        (`simclip.picture.decode_picture`; `exif_formats`: the formats whose EXIF orientation
        the viewer's browser applies, None for all; `display_rules`: the
        `simclip.display.DISPLAY_RULES` it follows). Raises a typed ImageError."""
        return decode_picture(data, max_pixels=self.max_pixels, max_frames=self.max_frames,
                              exif_formats=exif_formats, display_rules=display_rules)

    def read_text(self, image: Image.Image | Frames) -> str:
        """OCR text of a decoded image with this predictor's engine
        (`simclip.picture.read_picture_text`: the frames' texts merged for `Frames`)."""
        return read_picture_text(self.ocr, image)

    def views(self, image: Image.Image | Frames) -> list[Image.Image]:
        """What the image encoder sees of one decoded picture: each frame, or its square tiles
        when it is over TILE_MIN_ASPECT times longer than wide (`split_tiles`); at most
        `max_views` inputs, so an animation's frames get fewer tiles each."""
        frames = list(image) if isinstance(image, Frames) else [image]
        frames = frames[:max(1, self.max_views)]
        tiles = max(1, min(MAX_TILES, self.max_views // len(frames)))
        return [view for frame in frames for view in split_tiles(frame, max_tiles=tiles)]

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
        per_image: list[dict[str, tuple[float, float]]] = [{} for _ in texts]
        probs: list[dict[str, dict[str, float]]] = [{} for _ in texts]
        if self.head is not None:
            p = self.head.predict_proba(img_emb, txt_emb)
            per_image = warning_scores(p, self.head.config, self._rules)
            probs = [{t.name: dict(zip(t.labels, [round(v, 6) for v in p[t.name][i].tolist()]))
                      for t in self.head.config.tasks} for i in range(len(texts))]
        if self._zero_shot is not None:  # the categories the head does not give
            has_text = torch.tensor([bool(t.strip()) for t in texts])
            for row, zs in zip(per_image, self._zero_shot(img_emb, txt_emb, has_text)):
                row.update({c: (s, self._thresholds[c]) for c, s in zs.items()
                            if c not in self._trained})
        out: list[Prediction] = []
        for row, pr in zip(per_image, probs):
            row = {c: row[c] for c in self._thresholds if c in row}  # display order
            scores = {c: round(s, 6) for c, (s, _) in row.items()}
            warnings: list[WarningHit] = [
                {"id": c, "name": WARNING_CATEGORIES[c]["name"], "score": round(s, 6),
                 "threshold": round(t, 6)}
                for c, (s, t) in row.items() if s >= t]
            warnings.sort(key=lambda w: -w["score"])
            out.append({"mode": self.mode, "probabilities": pr, "scores": scores,
                        "warnings": warnings, "calibrated": self.calibrated})
        return out

    def classify(self, images: Sequence[Image.Image | Frames],
                 texts: Sequence[str]) -> list[Prediction]:
        """Decoded pictures and their OCR texts -> per-picture results, encoders run in batches.

        Every view of a picture (`views`: frames, tiles) is scored with the picture's text; the
        picture's score per category is the highest over its views, its warnings are the
        categories that reach their threshold with it (flagged when any view is flagged), and
        its probabilities are those of its view with the highest score over threshold.
        Each result has "text", "frames" and "timings_ms" {"encode", "head"}: the batch's totals
        in ms.
        """
        if not images:
            return []
        t0 = time.perf_counter()
        views: list[Image.Image] = []
        owner: list[int] = []
        for i, image in enumerate(images):
            for view in self.views(image):
                views.append(view)
                owner.append(i)
        with torch.no_grad():
            img_emb = torch.cat([self.backbone.encode_images(views[i:i + self.batch_size])
                                 for i in range(0, len(views), self.batch_size)])
            txt_emb = torch.cat([self.backbone.encode_texts(texts[i:i + self.batch_size])
                                 for i in range(0, len(texts), self.batch_size)])
        t_enc = _ms(t0)
        t1 = time.perf_counter()
        per_view = self.score(img_emb, txt_emb[owner], [texts[i] for i in owner])
        results = self._combine(per_view, owner, len(images))
        t_head = _ms(t1)
        for r, image, text in zip(results, images, texts):
            r["text"] = text
            r["frames"] = len(image) if isinstance(image, Frames) else 1
            r["timings_ms"] = {"encode": t_enc, "head": t_head}
        return results

    def _combine(self, per_view: list[Prediction], owner: list[int], n: int) -> list[Prediction]:
        """Per-view results -> per-picture results (max score per category over the views)."""
        out: list[Prediction] = []
        for i in range(n):
            rows = [r for r, o in zip(per_view, owner) if o == i]
            if len(rows) == 1:
                out.append(rows[0])
                continue
            scores = {c: max(r["scores"][c] for r in rows) for c in rows[0]["scores"]}
            hits: dict[str, WarningHit] = {}
            for r in rows:  # a category's threshold is the same in every view
                for w in r["warnings"]:
                    if w["id"] not in hits or w["score"] > hits[w["id"]]["score"]:
                        hits[w["id"]] = w
            warnings = sorted(hits.values(), key=lambda w: -w["score"])
            worst = max(rows, key=lambda r: max(
                (s - self._thresholds[c] for c, s in r["scores"].items()), default=0.0))
            out.append({"mode": self.mode, "probabilities": worst["probabilities"],
                        "scores": scores, "warnings": warnings, "calibrated": self.calibrated})
        return out

    def predict(self, images: Iterable[ImageSource]) -> list[Prediction]:
        """Classify a list of images (bytes, paths or PIL): decode, OCR, encode, score.

        Args:
            images: encoded bytes, filesystem paths or PIL images; [] gives [].

        Returns:
            One dict per image, in order: mode, probabilities per task and label (trained mode),
            scores per warning category, warnings over threshold, OCR text, frames judged (an
            animation's frames a viewer sees, `decode`), and timings_ms
            {"decode", "ocr", "encode", "head"} in milliseconds.

        Raises:
            ImageError: the subclass (EmptyImageError, UnsupportedImageError,
                ImageTooLargeError, CorruptImageError, or a VideoError for a video) for the
                first image that cannot be decoded; no image is classified then.
        """
        decoded: list[Image.Image | Frames] = []
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

