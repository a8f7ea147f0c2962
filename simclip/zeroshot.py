"""Zero-shot warning scores from CLIP prompt ensembles, used before any head is trained.

For each warning category, the mean embedding of its positive prompts and the mean embedding of
its negative prompts are anchors. A meme gives two margins per category: the cosine similarity of
its image embedding to the positive anchor minus that to the negative one, and the same for its
OCR text embedding (0 when it has no text).

Uncalibrated (the default until `simclip calibrate` has run), the score is the two-way softmax of
the image margin at the backbone's own learned logit scale (100 for OpenAI's CLIP), averaged with
the same for the text margin when there is text, and the threshold is 0.5. CLIP learned that scale
for image-text pairs only, so text-text margins are not calibrated by it: these scores rank memes
but are not probabilities, and every result says `"calibrated": false`.

Calibrated, each category fitted has a logistic model over [image margin, text margin, has text] and a
decision threshold, both fitted on a labelled validation split (`simclip calibrate`,
`simclip_train.calibrate`) and stored as JSON beside the user's cache (`get_calibration_path`).
A calibration is tied to its backbone id and to a digest of the prompts: a change in either makes
it refused, never silently reused. Categories the calibration data had no labels for stay
uncalibrated, and say so (`is_calibrated`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .constants import DEFAULT_THRESHOLD
from .errors import CheckpointError
from .fileutil import get_user_cache_dir

if TYPE_CHECKING:
    from .backbone import Backbone

logger = logging.getLogger(__name__)

# Each template is filled with every positive and every negative description of a category; each
# description reads as the end of "a meme that is ...", so every prompt is a grammatical sentence.
PROMPT_TEMPLATES = (
    "a meme that is {}.",
    "an image macro that is {}.",
    "a picture with a caption that is {}.",
)

# category -> (positive descriptions, negative descriptions). The negatives describe the same
# kind of picture without the harm, so the margin measures the harm, not "meme vs not meme".
ZERO_SHOT_PROMPTS = {
    "harmful": (
        ("hurtful and abusive toward a person or a group",
         "spreading dangerous misinformation",
         "mocking victims, illness or death"),
        ("harmless and friendly",
         "a light-hearted joke about everyday life",
         "kind and supportive"),
    ),
    "misogynous": (
        ("sexist and degrading to women",
         "mocking women for being women",
         "treating women as sexual objects"),
        ("respectful to women",
         "a harmless joke about daily life",
         "supportive of women"),
    ),
    "hateful": (
        ("hateful toward people of a race, religion or ethnicity",
         "attacking people for their religion",
         "dehumanizing immigrants or minorities"),
        ("respectful to every group of people",
         "a harmless joke about daily life",
         "friendly and inclusive"),
    ),
    "offensive": (
        ("offensive, vulgar and insulting",
         "crude and obscene",
         "rude and demeaning"),
        ("polite and inoffensive",
         "a harmless joke about daily life",
         "clean and friendly"),
    ),
}
ZERO_SHOT_THRESHOLD = DEFAULT_THRESHOLD  # uncalibrated scores: even odds decide
CALIBRATION_FORMAT_VERSION = 1
MAX_LOGIT_SCALE = 100.0  # CLIP clamps its learned temperature here


def list_prompts(descriptions: tuple[str, ...]) -> list[str]:
    """Every template filled with every description: len(templates) x len(descriptions) prompts."""
    return [t.format(d) for d in descriptions for t in PROMPT_TEMPLATES]


def get_prompts_digest() -> str:
    """sha256 (16 hex characters) of the templates and prompts: part of a calibration's identity."""
    raw = json.dumps([PROMPT_TEMPLATES, ZERO_SHOT_PROMPTS], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class CategoryCalibration:
    """A category's logistic model over [image margin, text margin, has text] and its threshold."""

    weights: list[float]  # 3 weights: image margin, text margin, has-text indicator
    bias: float
    threshold: float  # decision threshold on the calibrated probability, tuned on validation
    metrics: dict[str, Any] = field(default_factory=dict)  # validation AUROC, macro-F1, n ...

    def __post_init__(self) -> None:
        if len(self.weights) != 3 or not all(math.isfinite(w) for w in self.weights):
            raise ValueError(f"calibration weights must be 3 finite numbers, got {self.weights!r}")
        if not math.isfinite(self.bias) or not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"calibration bias {self.bias!r} / threshold {self.threshold!r} invalid")


@dataclass
class Calibration:
    """Fitted zero-shot scores for one backbone and one prompt set."""

    backbone: str  # backbone id, e.g. 'ViT-L-14-336/openai/quickgelu'
    prompts: str  # get_prompts_digest() at fitting time
    categories: dict[str, CategoryCalibration]
    data: dict[str, Any] = field(default_factory=dict)  # datasets, split, text source, n
    format_version: int = CALIBRATION_FORMAT_VERSION

    def __post_init__(self) -> None:
        self.categories = {c: v if isinstance(v, CategoryCalibration) else CategoryCalibration(**v)
                           for c, v in self.categories.items()}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as JSON (atomically); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path


def get_calibration_path(backbone_id: str) -> Path:
    """Where `simclip calibrate` stores, and the classifier looks for, a backbone's calibration:
    $XDG_CACHE_HOME/simclip/calibration/<backbone id with '/' as '__'>.json."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in backbone_id.replace("/", "__"))
    return get_user_cache_dir() / "calibration" / f"{safe}.json"


def load_calibration(path: str | os.PathLike[str], backbone_id: str) -> Calibration:
    """Read a calibration file and check that it fits `backbone_id` and today's prompts.

    Raises:
        CheckpointError: unreadable JSON, a bad field, another backbone, or other prompts (each
            message says to rerun `simclip calibrate`).
    """
    try:
        raw = json.loads(Path(path).read_text())
        cal = Calibration(**raw)
    except (OSError, json.JSONDecodeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid zero-shot calibration ({e})") from e
    if cal.format_version != CALIBRATION_FORMAT_VERSION:
        raise CheckpointError(f"{path}: calibration format {cal.format_version} is not supported")
    if cal.backbone != backbone_id:
        raise CheckpointError(f"{path} calibrates backbone {cal.backbone}, not {backbone_id}; "
                              "run `simclip calibrate` with this backbone")
    if cal.prompts != get_prompts_digest():
        raise CheckpointError(f"{path} was fitted on other zero-shot prompts; rerun `simclip calibrate`")
    unknown = set(cal.categories) - set(ZERO_SHOT_PROMPTS)
    if unknown:
        raise CheckpointError(f"{path}: unknown categories {sorted(unknown)}")
    return cal


def find_calibration(calibration: str | os.PathLike[str] | None,
                     backbone_id: str) -> Calibration | None:
    """The zero-shot calibration to use for `backbone_id`, or None for uncalibrated scores.

    `calibration` is a file (it must fit: `load_calibration` raises CheckpointError), 'none', or
    None: the file stored for this backbone (`get_calibration_path`) if there is one; a stored
    file that no longer fits (other prompts, a damaged file) is skipped with a warning.
    """
    if calibration is not None:
        return None if str(calibration) == "none" else load_calibration(calibration, backbone_id)
    path = get_calibration_path(backbone_id)
    if not path.is_file():
        return None
    try:
        return load_calibration(path, backbone_id)
    except CheckpointError as e:
        logger.warning("ignoring the zero-shot calibration: %s", e)
        return None


class ZeroShotScorer:
    """Scores images and texts against the prompt ensembles of every warning category; the
    categories a calibration covers are scored by it, the others uncalibrated."""

    def __init__(self, backbone: Backbone, calibration: Calibration | None = None) -> None:
        self.calibration = calibration
        self.categories = list(ZERO_SHOT_PROMPTS)
        scale = getattr(backbone.model, "logit_scale", None)
        self.logit_scale = (min(float(scale.exp()), MAX_LOGIT_SCALE) if isinstance(scale, torch.Tensor)
                            else MAX_LOGIT_SCALE)
        anchors = []
        for cat in self.categories:
            pos, neg = ZERO_SHOT_PROMPTS[cat]
            e_pos = backbone.encode_texts(list_prompts(pos)).mean(0)
            e_neg = backbone.encode_texts(list_prompts(neg)).mean(0)
            anchors.append(torch.stack([e_pos, e_neg]))
        self.anchors = torch.nn.functional.normalize(torch.stack(anchors), dim=-1)  # (K, 2, D)
        fitted = calibration.categories if calibration else {}
        self._fitted = torch.tensor([c in fitted for c in self.categories])  # (K,)
        self._weights = torch.tensor([fitted[c].weights if c in fitted else [0.0] * 3
                                      for c in self.categories])  # (K, 3)
        self._bias = torch.tensor([fitted[c].bias if c in fitted else 0.0 for c in self.categories])

    def is_calibrated(self, category: str) -> bool:
        """True when `category`'s scores come from a fitted calibration."""
        return self.calibration is not None and category in self.calibration.categories

    @property
    def thresholds(self) -> dict[str, float]:
        """{category: decision threshold}: the calibration's where fitted, else 0.5."""
        fitted = self.calibration.categories if self.calibration else {}
        return {c: fitted[c].threshold if c in fitted else ZERO_SHOT_THRESHOLD for c in self.categories}

    def margins(self, img_emb: torch.Tensor, txt_emb: torch.Tensor,
                has_text: torch.Tensor) -> torch.Tensor:
        """(B, D) image and text embeddings, (B,) bool -> (B, K, 3) features per category:
        image margin, text margin (0 without text), has-text indicator. A margin is the cosine
        similarity to the positive anchor minus that to the negative one, in [-2, 2]."""
        sims_img = torch.einsum("bd,kpd->bkp", img_emb.float(), self.anchors)  # (B, K, 2)
        sims_txt = torch.einsum("bd,kpd->bkp", txt_emb.float(), self.anchors)  # (B, K, 2)
        w = has_text.float().unsqueeze(-1)  # (B, 1)
        m_img = sims_img[..., 0] - sims_img[..., 1]  # (B, K)
        m_txt = (sims_txt[..., 0] - sims_txt[..., 1]) * w  # (B, K)
        return torch.stack([m_img, m_txt, w.expand_as(m_img)], dim=-1)  # (B, K, 3)

    def uncalibrated_scores(self, features: torch.Tensor) -> torch.Tensor:
        """(..., 3) margins -> (...) uncalibrated scores: the mean over the modalities present of
        the two-way softmax at the backbone's learned logit scale."""
        m_img, m_txt, w = features.unbind(-1)
        p_img = torch.sigmoid(self.logit_scale * m_img)  # = 2-way softmax at the learned scale
        p_txt = torch.sigmoid(self.logit_scale * m_txt)
        return (p_img + w * p_txt) / (1.0 + w)

    def category_scores(self, features: torch.Tensor, category: str) -> torch.Tensor:
        """(N, 3) margins of one category -> (N,) scores, calibrated where the fit covers it."""
        if not self.is_calibrated(category):
            return self.uncalibrated_scores(features)
        fit = self.calibration.categories[category]  # type: ignore[union-attr]
        return torch.sigmoid(features.double() @ torch.tensor(fit.weights, dtype=torch.float64)
                             + fit.bias).to(features.dtype)

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """(B, K, 3) margins -> (B, K) scores in [0, 1] (see the module docstring)."""
        raw = self.uncalibrated_scores(features)  # (B, K)
        fitted = torch.sigmoid((features * self._weights).sum(-1) + self._bias)  # (B, K)
        return torch.where(self._fitted, fitted, raw)

    @torch.no_grad()
    def __call__(self, img_emb: torch.Tensor, txt_emb: torch.Tensor,
                 has_text: torch.Tensor) -> list[dict[str, float]]:
        """(B, D), (B, D), (B,) bool -> one {category: score in [0, 1]} per image."""
        p = self.scores(self.margins(img_emb, txt_emb, has_text))  # (B, K)
        return [dict(zip(self.categories, row)) for row in p.tolist()]
