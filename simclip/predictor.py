"""The Predictor: decode -> OCR -> frozen encoders -> SimCLIP head (or zero-shot) -> warnings.

It is the one entry point for the server and the CLI. The stages are public too
(`decode`, `read_text`, `classify`), so a server can run OCR in a pool and batch the encoders.
"""

import hashlib
import time

import torch

from .constants import MAX_IMAGE_PIXELS, WARNING_CATEGORIES
from .head import warning_scores
from .images import decode_image
from .zeroshot import ZERO_SHOT_THRESHOLD, ZeroShotScorer

TRAINED = "trained"
ZERO_SHOT = "zero-shot"


def _ms(t0):
    return round((time.perf_counter() - t0) * 1000.0, 2)


class Predictor:
    """Classifies meme images into warning categories with a frozen CLIP and a SimCLIP head."""

    def __init__(self, backbone, ocr, head=None, metadata=None, checkpoint_id=None,
                 batch_size=32, max_pixels=MAX_IMAGE_PIXELS):
        self.backbone = backbone
        self.ocr = ocr
        self.head = head
        self.metadata = metadata or {}
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        if head is not None:
            self.mode = TRAINED
            self._rules = self.metadata["warnings"]  # the checkpoint's warning rules
            cats = {w["category"]: w["threshold"] for w in reversed(self._rules)}
            self._zero_shot = None
        else:
            self.mode = ZERO_SHOT
            self._zero_shot = ZeroShotScorer(backbone)
            cats = {c: ZERO_SHOT_THRESHOLD for c in self._zero_shot.categories}
        self._thresholds = {c: cats[c] for c in WARNING_CATEGORIES if c in cats}
        self.checkpoint_id = checkpoint_id or "zero-shot"

    @property
    def identity(self):
        """A string that changes whenever results could change (backbone, head, OCR engine)."""
        ocr = getattr(self.ocr, "identity", self.ocr.name)  # engine settings change the text
        raw = f"{self.backbone.info.id}|{self.checkpoint_id}|{ocr}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def device(self):
        """The torch device the encoders run on."""
        return str(self.backbone.device)

    def list_categories(self):
        """The warning categories this model gives: id, name, description, default threshold."""
        return [{"id": c, "name": WARNING_CATEGORIES[c]["name"],
                 "description": WARNING_CATEGORIES[c]["description"],
                 "default_threshold": round(float(t), 4)} for c, t in self._thresholds.items()]

    def decode(self, data):
        """Bytes, path or PIL -> RGB PIL image; raises a typed ImageError."""
        return decode_image(data, max_pixels=self.max_pixels)

    def read_text(self, image):
        """OCR text of a decoded image."""
        return self.ocr(image)

    @torch.no_grad()
    def embed(self, images, texts):
        """Decoded images and their texts -> (img_emb, txt_emb), each (B, D), in batches."""
        img, txt = [], []
        for i in range(0, len(images), self.batch_size):
            img.append(self.backbone.encode_images(images[i:i + self.batch_size]))
            txt.append(self.backbone.encode_texts(texts[i:i + self.batch_size]))
        return torch.cat(img), torch.cat(txt)

    @torch.no_grad()
    def score(self, img_emb, txt_emb, texts):
        """Embeddings -> per image {"probabilities", "scores", "warnings"}."""
        if self.head is None:
            has_text = torch.tensor([bool(t.strip()) for t in texts])
            per_image = [{c: (s, self._thresholds[c]) for c, s in row.items()}
                         for row in self._zero_shot(img_emb, txt_emb, has_text)]
            probs = [{} for _ in texts]
        else:
            p = self.head.predict_proba(img_emb, txt_emb)
            per_image = warning_scores(p, self.head.config, self._rules)
            probs = [{t.name: dict(zip(t.labels, [round(v, 6) for v in p[t.name][i].tolist()]))
                      for t in self.head.config.tasks} for i in range(len(texts))]
        out = []
        for row, pr in zip(per_image, probs):
            scores = {c: round(s, 6) for c, (s, _) in row.items()}
            warnings = [{"id": c, "name": WARNING_CATEGORIES[c]["name"], "score": round(s, 6),
                         "threshold": round(t, 6)}
                        for c, (s, t) in row.items() if s >= t]
            warnings.sort(key=lambda w: -w["score"])
            out.append({"mode": self.mode, "probabilities": pr, "scores": scores,
                        "warnings": warnings})
        return out

    def classify(self, images, texts):
        """Decoded images and OCR texts -> per-image results (encoders run in batches)."""
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

    def predict(self, images):
        """Classify a list of images (bytes, paths or PIL).

        Returns:
            One dict per image: mode, probabilities per task and label (trained mode),
            scores per warning category, warnings over threshold, OCR text, timings in ms.

        Raises:
            ImageError: for the first image that cannot be decoded.
        """
        decoded, texts, t_dec, t_ocr = [], [], [], []
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

