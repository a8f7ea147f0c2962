"""`load_classifier`: the single builder of a ready Predictor (backbone + head or zero-shot + OCR)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch

from .backbone import load_backbone, resolve_weights
from .checkpoint import checkpoint_digest, load_checkpoint, read_metadata, validate_metadata
from .errors import CheckpointError
from .ocr import OCREngine, get_ocr_engine
from .predictor import Predictor
from .zeroshot import find_calibration

logger = logging.getLogger(__name__)


def load_classifier(checkpoint: str | os.PathLike[str] | None = None,
                    model: str | os.PathLike[str] | None = None,
                    pretrained: str | os.PathLike[str] | None = None,
                    device: str | torch.device | None = None, ocr: str | OCREngine = "auto",
                    cache_dir: str | None = None, precision: str | None = None,
                    batch_size: int = 32, quick_gelu: bool | None = None,
                    calibration: str | os.PathLike[str] | None = None,
                    weights_progress: Callable[[int, int | None], None] | None = None,
                    zero_shot_fallback: bool = True) -> Predictor:
    """Build the Predictor the server and the CLI use.

    Args:
        checkpoint: a trained head (safetensors, see `simclip.checkpoint`); None for zero-shot.
        model: open_clip architecture or local model directory. Default: the checkpoint's
            backbone, else the paper's ViT-L-14-336.
        pretrained: weights tag or file. Default: the checkpoint's, else the model's default
            tag ('openai'). Only 'none' builds seeded random weights (tests, demos). The head runs on the
            CPU: it is a few small matrices, and the encoders return CPU embeddings.
        device: 'cuda', 'mps', 'cpu' or None for automatic.
        ocr: OCR engine name ('auto', 'rapidocr', 'tesseract', 'none') or an engine object.
        cache_dir: where downloaded backbone weights go (default: the Hugging Face cache).
        precision: encoder precision (`simclip.options.PRECISIONS`); None: per device
            (see `load_backbone`).
        batch_size: images per encoder call.
        quick_gelu: build the backbone with QuickGELU (see `load_backbone`). None: the
            activation the checkpoint records, else decided from the weights (True for
            OpenAI's).
        calibration: for the zero-shot categories (every category without a checkpoint, the
            ones the head lacks with one): a calibration file from `simclip calibrate`, or
            'none' for uncalibrated scores. None looks in the default place for this backbone
            (`simclip.zeroshot.get_calibration_path`); one there that no longer fits (other
            prompts, a damaged file) is skipped with a warning, while a file given explicitly
            must fit.
        zero_shot_fallback: with a checkpoint, score the warning categories its head lacks
            zero-shot (False: the head's categories only).
        weights_progress: called as weights_progress(done, total) in bytes while the CLIP
            weights are found in the cache or downloaded (see `load_backbone`).

    Returns:
        A ready `Predictor`: trained mode with a checkpoint (the categories its head lacks
        scored zero-shot), zero-shot mode without.

    Raises:
        CheckpointError: an unreadable or invalid checkpoint, one trained on another backbone
            than `model`/`pretrained`, one trained on a local backbone not given again, or one
            trained on random weights without an explicit `pretrained='none'`.
        BackboneUnavailableError: the CLIP weights are neither cached nor downloadable.
        ValueError: an unknown architecture or OCR engine, or an architecture with no
            published weights and no `pretrained`.
        ImportError, RuntimeError: the OCR engine asked for is not installed.

    Example:
        >>> p = load_classifier(model="simclip-tiny", pretrained="none", device="cpu")
        >>> p.predict([open("meme.png", "rb").read()])[0]["scores"]
    """
    meta = None
    if checkpoint is not None:
        meta = read_metadata(checkpoint)
        validate_metadata(meta)
        bb = meta["backbone"]
        if model is None:
            model = bb["model"]
        if pretrained is None:
            tag: str = bb["pretrained"]
            pretrained = tag
            if tag == "random":
                raise CheckpointError(
                    f"{checkpoint} was trained on random weights ({model}, --pretrained none): "
                    f"its verdicts mean nothing. Pass --pretrained none to load it anyway "
                    f"(tests, demos), or train a head on real weights")
            if tag.startswith("file:") or tag == "local-dir":
                raise CheckpointError(
                    f"{checkpoint} was trained on a local backbone ({model}, {pretrained}); "
                    f"pass the same weights with --model/--pretrained")
        if quick_gelu is None and "activation" in bb:  # else decided from the weights
            quick_gelu = bb["activation"] == "quick_gelu"
    model, pretrained = resolve_weights(model, pretrained)
    backbone = load_backbone(model, pretrained, device=device, precision=precision,
                             cache_dir=cache_dir, quick_gelu=quick_gelu,
                             weights_progress=weights_progress)
    head, checkpoint_id = None, None
    if checkpoint is not None:
        head, meta = load_checkpoint(checkpoint, backbone.info)
        checkpoint_id = checkpoint_digest(checkpoint)
    fitted = find_calibration(calibration, backbone.info.id)  # for the zero-shot categories
    engine = get_ocr_engine(ocr) if isinstance(ocr, str) else ocr
    predictor = Predictor(backbone, engine, head=head, metadata=meta,
                          checkpoint_id=checkpoint_id, batch_size=batch_size, calibration=fitted,
                          zero_shot_fallback=zero_shot_fallback)
    logger.info("classifier ready: %s, %s mode%s, device %s, OCR %s",
                backbone.info.id, predictor.mode,
                "" if predictor.calibrated else " (uncalibrated: run `simclip setup`)",
                backbone.device, engine.name)
    if backbone.info.random_weights:
        logger.warning("RANDOM WEIGHTS: %s was built with --pretrained none; its verdicts mean "
                       "nothing (tests and demos only)", backbone.info.id)
    return predictor

