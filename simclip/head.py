"""The SimCLIP head (arXiv 2409.05772): a siamese projection, a four-block fusion, one MLP per task.

    p(e) = L2normalize(Linear(d -> 128)(GELU(e)))          shared by image and text
    f    = [p_img, p_txt, |p_img - p_txt|, p_img * p_txt]   4 x 128 = 512 features
    head = Dropout -> depth x [LayerNorm -> Linear -> GELU -> Dropout]
           -> LayerNorm -> Linear -> GELU -> Linear(n_classes)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

MULTICLASS = "multiclass"
MULTILABEL = "multilabel"


@dataclass
class TaskSpec:
    """One classification task of the head.

    Raises:
        ValueError: an unknown `kind`, too few labels (2 for multiclass, 1 for multilabel) or
            duplicate labels.
    """

    name: str  # e.g. 'harmful'
    kind: str  # 'multiclass' (softmax, cross-entropy) or 'multilabel' (sigmoid, BCE)
    labels: list[str] = field(default_factory=list)  # label names, in logit order

    def __post_init__(self) -> None:
        if self.kind not in (MULTICLASS, MULTILABEL):
            raise ValueError(f"task {self.name!r}: kind must be {MULTICLASS!r} or {MULTILABEL!r}")
        if len(self.labels) < (2 if self.kind == MULTICLASS else 1):
            raise ValueError(f"task {self.name!r}: too few labels {self.labels!r}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"task {self.name!r}: duplicate labels {self.labels!r}")
        self.labels = list(self.labels)


@dataclass
class HeadConfig:
    """Sizes of the SimCLIP head; the defaults are the authors' (arXiv 2409.05772).

    `tasks` may also be given as dicts of TaskSpec fields (as stored in a checkpoint).

    Raises:
        ValueError: no task, duplicate task names, or an invalid task (see TaskSpec).
    """

    embed_dim: int = 768  # CLIP embedding dim (768 for ViT-L/14-336)
    proj_dim: int = 128  # siamese projection output
    hidden_dim: int = 512  # width of the per-task MLP
    depth: int = 2  # number of [LayerNorm -> Linear -> GELU -> Dropout] blocks
    dropout: float = 0.1  # the authors' newest code uses 0.1
    tasks: list[TaskSpec] = field(default_factory=list)  # TaskSpecs (or their dicts)

    def __post_init__(self) -> None:
        self.tasks = [t if isinstance(t, TaskSpec) else TaskSpec(**t) for t in self.tasks]
        if not self.tasks:
            raise ValueError("a head needs at least one task")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate task names {names!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; `HeadConfig(**d)` rebuilds it."""
        return asdict(self)

    def get_task(self, name: str) -> TaskSpec:
        """The TaskSpec called `name`; KeyError naming the tasks if there is none."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"no task {name!r}; tasks: {[t.name for t in self.tasks]}")


class SiameseProjector(nn.Module):
    """One projection shared by both modalities: L2normalize(Linear(GELU(e)))."""

    def __init__(self, embed_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(embed_dim, proj_dim)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(F.gelu(e)), dim=-1)  # (B, P)


def fuse(p_img: torch.Tensor, p_txt: torch.Tensor) -> torch.Tensor:
    """[p_img, p_txt, |p_img - p_txt|, p_img * p_txt]: (B, P) x 2 -> (B, 4P) (arXiv 2409.05772)."""
    return torch.cat([p_img, p_txt, (p_img - p_txt).abs(), p_img * p_txt], dim=-1)


class TaskHead(nn.Module):
    """Dropout -> depth x [LN -> Linear -> GELU -> Dropout] -> LN -> Linear -> GELU -> Linear."""

    def __init__(self, in_dim: int, hidden_dim: int, depth: int, dropout: float,
                 n_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        d = in_dim
        for _ in range(depth):
            layers += [nn.LayerNorm(d), nn.Linear(d, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
            d = hidden_dim
        layers += [nn.LayerNorm(d), nn.Linear(d, hidden_dim), nn.GELU(),
                   nn.Linear(hidden_dim, n_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)  # (B, n_classes)


class SimCLIPHead(nn.Module):
    """Siamese projection + fusion + one head per task, over frozen CLIP embeddings.

    The architecture of SimCLIP (arXiv 2409.05772), sized by `config`; see the module docstring.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.projector = SiameseProjector(config.embed_dim, config.proj_dim)
        self.heads = nn.ModuleDict({
            t.name: TaskHead(4 * config.proj_dim, config.hidden_dim, config.depth,
                             config.dropout, len(t.labels))
            for t in config.tasks
        })

    def forward(self, img_emb: torch.Tensor, txt_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) image and text embeddings -> {task: logits (B, n_classes)}."""
        f = fuse(self.projector(img_emb), self.projector(txt_emb))  # (B, 4P)
        return {name: head(f) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict_proba(self, img_emb: torch.Tensor,
                      txt_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """{task: probabilities (B, n_classes)}: softmax for multiclass, sigmoid for multilabel."""
        logits = self(img_emb, txt_emb)
        return {t.name: (logits[t.name].softmax(-1) if t.kind == MULTICLASS
                         else logits[t.name].sigmoid()) for t in self.config.tasks}


def simclip_loss(logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                 tasks: Iterable[TaskSpec],
                 class_weights: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Sum of per-task losses, ignoring samples whose label for a task is missing.

    Cross-entropy for multiclass tasks, binary cross-entropy with logits for multilabel ones,
    as in SimCLIP (arXiv 2409.05772). A task absent from `targets` is skipped.

    Args:
        logits: {task: (B, C)} from `SimCLIPHead`.
        targets: {task: tensor}. Multiclass: (B,) long class index, -1 when missing.
            Multilabel: (B, C) float in {0, 1}, NaN (any entry) when missing.
        tasks: the TaskSpecs.
        class_weights: optional {task: (C,)} weights (class-balanced; for multilabel the
            positive-class weight of each label).

    Returns:
        A scalar tensor: 0 (with a gradient path) when no sample has any label.
    """
    total = cast(torch.Tensor, sum(v.sum() * 0.0 for v in logits.values()))
    for t in tasks:
        if t.name not in targets:
            continue
        y, z = targets[t.name], logits[t.name]
        w = None if class_weights is None else class_weights.get(t.name)
        if t.kind == MULTICLASS:
            keep = y >= 0
            if keep.any():
                total = total + F.cross_entropy(z[keep], y[keep].long(), weight=w)
        else:
            keep = ~torch.isnan(y).any(dim=-1)
            if keep.any():
                total = total + F.binary_cross_entropy_with_logits(
                    z[keep], y[keep].float(), pos_weight=w)
    return total


def score_warning_rule(probs: torch.Tensor, task: TaskSpec,
                       labels: Sequence[str]) -> torch.Tensor:
    """The score of one warning rule: how strongly a task's output says "one of `labels`".

    Args:
        probs: (B, C) probabilities of `task` (softmax for multiclass, sigmoid for multilabel).
        task: the TaskSpec.
        labels: the rule's class labels, a subset of `task.labels`.

    Returns:
        (B,) tensor in [0, 1]: the summed probability of `labels` for a multiclass task (the
        classes are exclusive), their max for a multilabel one. Training tunes thresholds on this
        score and the server applies them to it, so it is the only place the rule is written.

    Raises:
        ValueError: a label that is not one of `task.labels`.
    """
    idx = torch.tensor([task.labels.index(lbl) for lbl in labels])
    p = probs[:, idx]  # (B, k)
    score = p.sum(-1) if task.kind == MULTICLASS else p.max(-1).values  # (B,)
    return score.clamp(0.0, 1.0)


def warning_scores(probs: Mapping[str, torch.Tensor], config: HeadConfig,
                   rules: Iterable[Mapping[str, Any]]) -> list[dict[str, tuple[float, float]]]:
    """Per-category scores of a batch from head probabilities.

    Args:
        probs: {task: (B, C) tensor} from `SimCLIPHead.predict_proba`.
        config: the HeadConfig.
        rules: the checkpoint's warning rules, [{"category", "task", "labels", "threshold"}].

    Returns:
        A list (one per image) of {category: (score, threshold)}; a category fed by several
        rules keeps the rule with the highest score relative to its threshold.

    Raises:
        KeyError: a rule names a task the config or `probs` lacks.
        ValueError: a rule names a label its task lacks.
    """
    batch = next(iter(probs.values())).shape[0]
    out: list[dict[str, tuple[float, float]]] = [{} for _ in range(batch)]
    for w in rules:
        score = score_warning_rule(probs[w["task"]], config.get_task(w["task"]), w["labels"])
        for i, s in enumerate(score.tolist()):
            prev = out[i].get(w["category"])
            if prev is None or s - w["threshold"] > prev[0] - prev[1]:
                out[i][w["category"]] = (s, float(w["threshold"]))
    return out
