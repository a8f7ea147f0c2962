"""SimCLIP meme classifier: frozen CLIP encoders, a siamese fusion head, meme OCR.

Public API (the server and the tools use only these names):
    load_classifier, Predictor             ready-to-use classifier
    ClassifierOptions, PRECISIONS          the backbone/OCR options of every command, defined once
    load_backbone, Backbone, list_backbones, get_device
    HeadConfig, TaskSpec, SimCLIPHead, simclip_loss, fuse
    score_warning_rule, warning_scores   the one warning-score rule (training and serving)
    save_checkpoint, load_checkpoint, make_metadata, read_metadata
    decode_image, get_ocr_engine, DECODE_VERSION (bumped when decoding changes: caches key on it)
    EXIF_ORIENTATION_FORMATS            formats whose EXIF orientation browsers differ on
    DISPLAY_RULES                       where browsers read a picture differently, the rules named
    collect_batch, BatchStats           encoder batching (the server and bulk scoring)
    limit_malloc_arenas, set_mmap_threshold, trim_heap   glibc's heap controls (memory economies)
    errors: SimCLIPError, ImageError (+ subclasses), CheckpointError, BackboneUnavailableError

Names load lazily (PEP 562): `from simclip import DEFAULT_PORT` or an error class does not
import torch and open_clip, so `simclip --help` and `simclip-server --print-token` answer at
once; the first model-related name pulls them in.

Training, evaluation and dataset tools live in the separate `simclip_train` package
(`pip install 'simclip[train]'`); `import simclip` never loads them.
"""

import importlib
import typing

if typing.TYPE_CHECKING:  # what type checkers and IDEs see; at runtime the names load lazily below
    from .backbone import Backbone as Backbone
    from .backbone import BackboneInfo as BackboneInfo
    from .backbone import get_device as get_device
    from .backbone import list_backbones as list_backbones
    from .backbone import load_backbone as load_backbone
    from .batching import BatchStats as BatchStats
    from .batching import collect_batch as collect_batch
    from .checkpoint import checkpoint_digest as checkpoint_digest
    from .checkpoint import get_trained_backbone as get_trained_backbone
    from .checkpoint import load_checkpoint as load_checkpoint
    from .checkpoint import make_metadata as make_metadata
    from .checkpoint import read_metadata as read_metadata
    from .checkpoint import save_checkpoint as save_checkpoint
    from .checkpoint import validate_metadata as validate_metadata
    from .classifier import load_classifier as load_classifier
    from .constants import ALLOWED_IMAGE_FORMATS as ALLOWED_IMAGE_FORMATS
    from .constants import DECODE_VERSION as DECODE_VERSION
    from .constants import DEFAULT_MODEL as DEFAULT_MODEL
    from .constants import DEFAULT_PORT as DEFAULT_PORT
    from .constants import DEFAULT_PRETRAINED as DEFAULT_PRETRAINED
    from .constants import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD
    from .constants import MAX_BODY_BYTES as MAX_BODY_BYTES
    from .constants import MAX_IMAGE_PIXELS as MAX_IMAGE_PIXELS
    from .constants import TRAINED as TRAINED
    from .constants import WARNING_CATEGORIES as WARNING_CATEGORIES
    from .constants import ZERO_SHOT as ZERO_SHOT
    from .display import DISPLAY_RULES as DISPLAY_RULES
    from .display import EXIF_ORIENTATION_FORMATS as EXIF_ORIENTATION_FORMATS
    from .errors import BackboneUnavailableError as BackboneUnavailableError
    from .errors import CheckpointError as CheckpointError
    from .errors import CorruptImageError as CorruptImageError
    from .errors import DecodeMemoryError as DecodeMemoryError
    from .errors import DecodeTimeoutError as DecodeTimeoutError
    from .errors import EmptyImageError as EmptyImageError
    from .errors import ImageDataTooShortError as ImageDataTooShortError
    from .errors import ImageError as ImageError
    from .errors import ImageTooLargeError as ImageTooLargeError
    from .errors import SimCLIPError as SimCLIPError
    from .errors import UnsupportedImageError as UnsupportedImageError
    from .errors import VectorSVGError as VectorSVGError
    from .fileutil import get_user_cache_dir as get_user_cache_dir
    from .head import MULTICLASS as MULTICLASS
    from .head import MULTILABEL as MULTILABEL
    from .head import HeadConfig as HeadConfig
    from .head import SimCLIPHead as SimCLIPHead
    from .head import TaskSpec as TaskSpec
    from .head import fuse as fuse
    from .head import score_warning_rule as score_warning_rule
    from .head import simclip_loss as simclip_loss
    from .head import warning_scores as warning_scores
    from .heap import limit_malloc_arenas as limit_malloc_arenas
    from .heap import set_mmap_threshold as set_mmap_threshold
    from .heap import trim_heap as trim_heap
    from .images import Frames as Frames
    from .images import decode_frames as decode_frames
    from .images import decode_image as decode_image
    from .images import list_image_formats as list_image_formats
    from .ocr import OCR_ENGINES as OCR_ENGINES
    from .ocr import get_ocr_engine as get_ocr_engine
    from .options import PRECISIONS as PRECISIONS
    from .options import ClassifierOptions as ClassifierOptions
    from .options import random_weights_warning as random_weights_warning
    from .picture import decode_picture as decode_picture
    from .picture import read_picture_text as read_picture_text
    from .picture import read_picture_text_within as read_picture_text_within
    from .predictor import Predictor as Predictor
    from .zeroshot import find_calibration as find_calibration


__version__ = "0.1.0"

# public name -> the submodule that defines it
_EXPORTS = {
    "Backbone": "backbone",
    "BackboneInfo": "backbone",
    "get_device": "backbone",
    "list_backbones": "backbone",
    "load_backbone": "backbone",
    "BatchStats": "batching",
    "collect_batch": "batching",
    "checkpoint_digest": "checkpoint",
    "get_trained_backbone": "checkpoint",
    "get_user_cache_dir": "fileutil",
    "load_checkpoint": "checkpoint",
    "make_metadata": "checkpoint",
    "read_metadata": "checkpoint",
    "save_checkpoint": "checkpoint",
    "validate_metadata": "checkpoint",
    "load_classifier": "classifier",
    "ALLOWED_IMAGE_FORMATS": "constants",
    "DECODE_VERSION": "constants",
    "DEFAULT_MODEL": "constants",
    "DEFAULT_PORT": "constants",
    "DEFAULT_PRETRAINED": "constants",
    "DEFAULT_THRESHOLD": "constants",
    "MAX_BODY_BYTES": "constants",
    "MAX_IMAGE_PIXELS": "constants",
    "WARNING_CATEGORIES": "constants",
    "BackboneUnavailableError": "errors",
    "CheckpointError": "errors",
    "CorruptImageError": "errors",
    "DecodeMemoryError": "errors",
    "DecodeTimeoutError": "errors",
    "EmptyImageError": "errors",
    "ImageDataTooShortError": "errors",
    "ImageError": "errors",
    "ImageTooLargeError": "errors",
    "SimCLIPError": "errors",
    "UnsupportedImageError": "errors",
    "VectorSVGError": "errors",
    "MULTICLASS": "head",
    "MULTILABEL": "head",
    "HeadConfig": "head",
    "SimCLIPHead": "head",
    "TaskSpec": "head",
    "fuse": "head",
    "score_warning_rule": "head",
    "simclip_loss": "head",
    "warning_scores": "head",
    "limit_malloc_arenas": "heap",
    "set_mmap_threshold": "heap",
    "trim_heap": "heap",
    "Frames": "images",
    "decode_frames": "images",
    "decode_image": "images",
    "list_image_formats": "images",
    "OCR_ENGINES": "ocr",
    "get_ocr_engine": "ocr",
    "ClassifierOptions": "options",
    "PRECISIONS": "options",
    "decode_picture": "picture",
    "read_picture_text": "picture",
    "read_picture_text_within": "picture",
    "random_weights_warning": "options",
    "TRAINED": "constants",
    "ZERO_SHOT": "constants",
    "EXIF_ORIENTATION_FORMATS": "display",
    "DISPLAY_RULES": "display",
    "Predictor": "predictor",
    "find_calibration": "zeroshot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simclip' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
