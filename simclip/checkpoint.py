"""The trained-head checkpoint: one safetensors file, the head weights plus JSON metadata.

Metadata (stored under the safetensors header key 'simclip'):

    format_version  int, CHECKPOINT_FORMAT_VERSION
    backbone        {"model", "pretrained", "embed_dim", "activation"}: the head only fits
                    this backbone
    random_weights  true for a head trained on seeded random weights (`--pretrained none`):
                    its verdicts mean nothing
    precision       the encoder precision the head's training embeddings were made with
                    ('int8', 'fp32', 'fp16', 'bf16'; absent or null: not recorded); the
                    head serves at any precision of its backbone
    head_config     HeadConfig fields, tasks with their label names
    warnings        the warning rules, [{"category", "task", "labels", "threshold"}]: which
                    class labels of which task feed which warning category, and its decision
                    threshold (tuned on validation); `simclip.head.score_warning_rule` is the
                    score (docs/glossary.md).
    training        free-form: datasets, seed, epochs ...
    metrics         free-form: validation and test metrics
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .constants import CHECKPOINT_FORMAT_VERSION, WARNING_CATEGORIES
from .errors import CheckpointError
from .fileutil import sha256_file
from .head import HeadConfig, SimCLIPHead

if TYPE_CHECKING:
    from .backbone import BackboneInfo

METADATA_KEY = "simclip"


def make_metadata(head_config: HeadConfig, backbone_info: BackboneInfo,
                  warnings: Iterable[Mapping[str, Any]], training: dict[str, Any] | None = None,
                  metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble (and validate) the metadata dict for `save_checkpoint`.

    Args:
        head_config: the head's sizes and tasks.
        backbone_info: the backbone the head was trained on (`Backbone.info`).
        warnings: the warning rules, {"category", "task", "labels", "threshold"} each.
        training, metrics: free-form JSON-able dicts (datasets, seed; validation metrics).

    Returns:
        The metadata dict (see the module docstring for its keys).

    Raises:
        CheckpointError: the first problem `validate_metadata` finds.
    """
    meta = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "backbone": {"model": backbone_info.model, "pretrained": backbone_info.pretrained,
                     "embed_dim": backbone_info.embed_dim,
                     "activation": backbone_info.activation},
        "random_weights": backbone_info.random_weights,
        "precision": backbone_info.precision,
        "head_config": head_config.to_dict(),
        "warnings": [dict(w) for w in warnings],
        "training": training or {},
        "metrics": metrics or {},
    }
    validate_metadata(meta)
    return meta


def _list_precisions():
    from .backbone import DTYPES

    return tuple(DTYPES)


def validate_metadata(meta: dict[str, Any]) -> HeadConfig:
    """Raise CheckpointError naming the first problem in a metadata dict; return the HeadConfig.

    Checks the format version, the backbone, the head config and every warning rule (known
    category and task, labels of that task, threshold in [0, 1]).
    """
    if not isinstance(meta, dict):
        raise CheckpointError("checkpoint metadata is not a JSON object")
    version = meta.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {version!r} is not supported "
            f"(this simclip reads version {CHECKPOINT_FORMAT_VERSION})")
    for key in ("backbone", "head_config", "warnings"):
        if key not in meta:
            raise CheckpointError(f"checkpoint metadata has no {key!r}")
    bb = meta["backbone"]
    if not isinstance(bb, dict) or not {"model", "pretrained", "embed_dim"} <= set(bb):
        raise CheckpointError("checkpoint 'backbone' needs model, pretrained and embed_dim")
    try:
        config = HeadConfig(**meta["head_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint 'head_config' is invalid: {e}") from e
    if meta.get("precision") is not None and meta["precision"] not in _list_precisions():
        raise CheckpointError(f"checkpoint precision {meta['precision']!r} is not one of "
                              f"{', '.join(_list_precisions())}")
    if bb.get("activation", "gelu") not in ("gelu", "quick_gelu"):
        raise CheckpointError(f"checkpoint backbone activation {bb['activation']!r} is not "
                              "'gelu' or 'quick_gelu'")
    if config.embed_dim != bb["embed_dim"]:
        raise CheckpointError(
            f"head embed_dim {config.embed_dim} != backbone embed_dim {bb['embed_dim']}")
    tasks = {t.name: t for t in config.tasks}
    for w in meta["warnings"]:
        if not isinstance(w, dict) or not {"category", "task", "labels", "threshold"} <= set(w):
            raise CheckpointError(f"warning entry {w!r} needs category, task, labels, threshold")
        if w["category"] not in WARNING_CATEGORIES:
            raise CheckpointError(f"unknown warning category {w['category']!r}; "
                                  f"known: {sorted(WARNING_CATEGORIES)}")
        if w["task"] not in tasks:
            raise CheckpointError(f"warning {w['category']!r} names unknown task {w['task']!r}")
        missing = set(w["labels"]) - set(tasks[w["task"]].labels)
        if not w["labels"] or missing:
            raise CheckpointError(
                f"warning {w['category']!r}: labels {sorted(missing) or w['labels']!r} are not "
                f"labels of task {w['task']!r} {tasks[w['task']].labels!r}")
        t = w["threshold"]
        if not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
            raise CheckpointError(f"warning {w['category']!r}: threshold {t!r} not in [0, 1]")
    return config


def save_checkpoint(path: str | os.PathLike[str], head: SimCLIPHead,
                    metadata: dict[str, Any]) -> Path:
    """Write the head weights and metadata to one safetensors file (atomically).

    Args:
        path: the .safetensors file to write; missing parent directories are created.
        head: the trained head; its weights are copied to the CPU.
        metadata: from `make_metadata`.

    Returns:
        `path` as a Path.

    Raises:
        CheckpointError: invalid metadata (nothing is written).
        OSError: the file cannot be written.
    """
    validate_metadata(metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    tmp.replace(path)
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata dict of a checkpoint, without loading its weights (unvalidated).

    Raises:
        CheckpointError: not a readable safetensors file, no simclip metadata, or invalid JSON.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from e
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file has no simclip metadata")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({e})") from e


def get_trained_backbone(meta: dict[str, Any]) -> BackboneInfo:
    """The BackboneInfo a head was trained on, from its (validated) metadata.

    A checkpoint written before the activation was recorded (simclip 0.1.0) was trained on what
    open_clip builds by default for its architecture, which is GELU for every architecture whose
    name does not end in '-quickgelu', whatever the weights.
    """
    from .backbone import GELU, BackboneInfo, config_activation

    bb = meta["backbone"]
    activation = bb.get("activation")
    if activation is None:
        try:
            activation = config_activation(bb["model"], False)
        except (OSError, ValueError):
            activation = GELU
    return BackboneInfo(bb["model"], bb["pretrained"], int(bb["embed_dim"]), activation,
                        precision=meta.get("precision"))


def checkpoint_digest(path: str | os.PathLike[str]) -> str:
    """Hex sha256 (64 characters) of the checkpoint file: part of the result-cache key.

    Raises OSError when the file cannot be read.
    """
    return sha256_file(path)


def load_checkpoint(path: str | os.PathLike[str],
                    backbone_info: BackboneInfo | None = None) -> tuple[SimCLIPHead, dict[str, Any]]:
    """Load a head checkpoint; refuse one that does not match `backbone_info` if given.

    Args:
        path: a .safetensors file written by `save_checkpoint`.
        backbone_info: the loaded backbone's `Backbone.info`; None skips the check.

    Returns:
        (SimCLIPHead in eval mode on the CPU, metadata dict)

    Raises:
        CheckpointError: a missing or unreadable file, invalid metadata, weights that do not fit
            the head config, or a head trained on another backbone (saying which to load).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    meta = read_metadata(path)
    config = validate_metadata(meta)
    if backbone_info is not None:
        trained_on = get_trained_backbone(meta)
        have = backbone_info
        if (trained_on.model, trained_on.pretrained, trained_on.embed_dim) != \
                (have.model, have.pretrained, have.embed_dim):
            raise CheckpointError(
                f"{path} was trained on backbone {trained_on.id} (dim {trained_on.embed_dim}) "
                f"but the loaded backbone is {have.id} (dim {have.embed_dim}); start with "
                f"--model {trained_on.model} --pretrained {trained_on.pretrained}, or use a head "
                f"trained on this backbone")
        if trained_on.activation != have.activation:
            raise CheckpointError(
                f"{path} was trained on {trained_on.model}/{trained_on.pretrained} built with "
                f"{trained_on.activation}, but the backbone is now built with {have.activation}"
                + (" (the activation OpenAI trained CLIP with; simclip 0.1 built it with GELU, "
                   "which gives other embeddings)" if have.activation == "quick_gelu" else "")
                + ". The head does not fit these embeddings: retrain it (`simclip embed` then "
                f"recomputes the embedding cache, `simclip train` the head), or pass "
                f"{'--no-quick-gelu' if have.activation == 'quick_gelu' else '--quick-gelu'} to "
                f"build the backbone it was trained on")
    head = SimCLIPHead(config)
    try:
        state = load_file(str(path))
        head.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise CheckpointError(f"{path}: weights do not match the head config ({e})") from e
    head.eval()
    return head, meta
