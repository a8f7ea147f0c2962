"""`ClassifierOptions`: the backbone and OCR options of every command and the server, defined once.

`simclip predict/embed/train/calibrate/evaluate/quickstart/score/setup` and `simclip-server` all
build their `--model/--pretrained/--precision/--device/--ocr/--weights-cache-dir/--quick-gelu/
--calibration` flags with `ClassifierOptions.add_arguments` and read them back with
`ClassifierOptions.from_args`, so a default is written here and nowhere else. Defaults are
resolved by `simclip.backbone.resolve_weights`: no `--model` is DEFAULT_MODEL (the paper's
ViT-L-14-336), no `--pretrained` is that model's default tag ('openai'), and random weights come
only from an explicit `--pretrained none`.

This module imports neither torch nor open_clip, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields

from .constants import DEFAULT_MODEL, DEFAULT_PRETRAINED

PRECISIONS = ("int8", "fp32", "fp16", "bf16")  # encoder precisions; None picks per device


def is_random_backbone(backbone_id: str) -> bool:
    """True for the id of a backbone built with seeded random weights ('simclip-tiny/random')."""
    return backbone_id.split("/")[1:2] == ["random"]


def random_weights_warning(backbone_id: str) -> str | None:
    """The loud line a command prints at its end when what it made sits on random weights,
    else None."""
    if not is_random_backbone(backbone_id):
        return None
    return (f"WARNING: {backbone_id} has RANDOM weights (--pretrained none): the embeddings, "
            f"heads, calibrations and verdicts made with it mean nothing outside tests and "
            f"demos. Drop --pretrained none to use the model's real weights.")


@dataclass
class ClassifierOptions:
    """How to build the frozen backbone and the OCR engine (see `load_classifier`)."""

    model: str | None = None  # open_clip architecture or local model dir; None: checkpoint's, else DEFAULT_MODEL
    pretrained: str | None = None  # tag, weights file or 'none' (random); None: checkpoint's, else model's default
    precision: str | None = None  # one of PRECISIONS; None: fp16 on CUDA, int8 on CPU
    device: str | None = None  # 'cuda', 'mps', 'cpu'; None: automatic (CUDA, MPS, then CPU)
    ocr: str = "auto"  # OCR engine: 'auto' (rapidocr, else tesseract), 'rapidocr', 'tesseract', 'none'
    weights_cache_dir: str | None = None  # where downloaded CLIP weights go; None: the Hugging Face cache
    quick_gelu: bool | None = None  # QuickGELU towers (OpenAI's activation); None: from the weights
    calibration: str | None = None  # zero-shot calibration file or 'none'; None: the stored one, if any
    zero_shot_fallback: bool = True  # with a trained head, score the categories it lacks zero-shot

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, calibration: bool = True,
                      ocr_choices: tuple[str, ...] | None = None,
                      ocr_default: tuple[str | None, str] | None = None) -> None:
        """Add the options to `parser`.

        Args:
            parser: the command's parser.
            calibration: add --calibration (False for commands that make heads or caches).
            ocr_choices: restrict --ocr to these names (None: any engine spec).
            ocr_default: (default, its description) for a command whose --ocr default differs.
        """
        d = ClassifierOptions
        parser.add_argument("--model", default=d.model,
                            help=f"open_clip architecture or local model dir (default: the "
                                 f"checkpoint's backbone, else {DEFAULT_MODEL})")
        parser.add_argument("--pretrained", default=d.pretrained,
                            help=f"weights tag, a local weights file, or 'none' for random "
                                 f"weights (default: the checkpoint's, else the model's default "
                                 f"tag, '{DEFAULT_PRETRAINED}' for {DEFAULT_MODEL})")
        parser.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                            help="encoder precision (default: fp16 on CUDA, int8 on a CPU)")
        parser.add_argument("--device", default=d.device, help="cuda, mps or cpu (default: auto)")
        ocr, ocr_help = ocr_default or (d.ocr, d.ocr)
        parser.add_argument("--ocr", default=ocr, choices=ocr_choices,
                            help=f"OCR engine: auto, rapidocr, tesseract or none "
                                 f"(default: {ocr_help})")
        parser.add_argument("--weights-cache-dir", default=d.weights_cache_dir,
                            help="where downloaded CLIP weights go (default: Hugging Face cache)")
        parser.add_argument("--quick-gelu", action=argparse.BooleanOptionalAction,
                            default=d.quick_gelu,
                            help="build CLIP with QuickGELU, the activation OpenAI trained it "
                                 "with (default: from the checkpoint, else the weights: on for "
                                 "'openai' and OpenAI's own files)")
        if calibration:
            parser.add_argument("--calibration", default=d.calibration,
                                help="zero-shot calibration file from `simclip calibrate`, or "
                                     "'none' (default: the one stored for this backbone, if any)")
            parser.add_argument("--zero-shot-fallback", action=argparse.BooleanOptionalAction,
                                default=d.zero_shot_fallback,
                                help="with a --checkpoint, score the warning categories its head "
                                     "does not give zero-shot (default: on)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ClassifierOptions:
        """The options an `add_arguments` parser read (fields it did not add keep their default)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    def resolved(self) -> ClassifierOptions:
        """A copy with model and pretrained filled in (`simclip.backbone.resolve_weights`).

        Raises:
            ValueError: an architecture with no published weights and no `pretrained`.
        """
        from .backbone import resolve_weights

        model, pretrained = resolve_weights(self.model, self.pretrained)
        return ClassifierOptions(**{**asdict(self), "model": model, "pretrained": pretrained})

    def get_backbone_id(self) -> str:
        """The backbone id these options build (e.g. 'ViT-L-14-336/openai/quickgelu'), without
        building it."""
        from .backbone import get_backbone_id

        return get_backbone_id(self.model, self.pretrained, quick_gelu=self.quick_gelu)

    def classifier_kwargs(self) -> dict:
        """Keyword arguments of `load_classifier` (`weights_cache_dir` as its `cache_dir`)."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(ClassifierOptions)}
        kwargs["cache_dir"] = kwargs.pop("weights_cache_dir")
        return kwargs
