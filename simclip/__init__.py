"""SimCLIP meme classifier: frozen CLIP encoders, a siamese fusion head, meme OCR.

Public API (the server and the tools use only these names):
    load_classifier, Predictor             ready-to-use classifier
    load_backbone, Backbone, list_backbones, get_device
    HeadConfig, TaskSpec, SimCLIPHead, simclip_loss, fuse
    score_warning_rule, warning_scores   the one warning-score rule (training and serving)
    save_checkpoint, load_checkpoint, make_metadata, read_metadata
    decode_image, get_ocr_engine
    errors: SimCLIPError, ImageError (+ subclasses), CheckpointError, BackboneUnavailableError

Names load lazily (PEP 562): `from simclip import DEFAULT_PORT` or an error class does not
import torch and open_clip, so `simclip --help` and `simclip-server --print-token` answer at
once; the first model-related name pulls them in.

Training, evaluation and dataset tools live in the separate `simclip_train` package
(`pip install 'simclip[train]'`); `import simclip` never loads them.
"""

import importlib

__version__ = "0.1.0"

# public name -> the submodule that defines it
_EXPORTS = {
    "Backbone": "backbone",
    "BackboneInfo": "backbone",
    "get_device": "backbone",
    "list_backbones": "backbone",
    "load_backbone": "backbone",
    "checkpoint_digest": "checkpoint",
    "get_user_cache_dir": "fileutil",
    "load_checkpoint": "checkpoint",
    "make_metadata": "checkpoint",
    "read_metadata": "checkpoint",
    "save_checkpoint": "checkpoint",
    "validate_metadata": "checkpoint",
    "load_classifier": "classifier",
    "ALLOWED_IMAGE_FORMATS": "constants",
    "DEFAULT_MODEL": "constants",
    "DEFAULT_PORT": "constants",
    "DEFAULT_PRETRAINED": "constants",
    "DEFAULT_THRESHOLD": "constants",
    "MAX_IMAGE_PIXELS": "constants",
    "WARNING_CATEGORIES": "constants",
    "BackboneUnavailableError": "errors",
    "CheckpointError": "errors",
    "CorruptImageError": "errors",
    "EmptyImageError": "errors",
    "ImageError": "errors",
    "ImageTooLargeError": "errors",
    "SimCLIPError": "errors",
    "UnsupportedImageError": "errors",
    "MULTICLASS": "head",
    "MULTILABEL": "head",
    "HeadConfig": "head",
    "SimCLIPHead": "head",
    "TaskSpec": "head",
    "fuse": "head",
    "score_warning_rule": "head",
    "simclip_loss": "head",
    "warning_scores": "head",
    "decode_image": "images",
    "list_image_formats": "images",
    "OCR_ENGINES": "ocr",
    "get_ocr_engine": "ocr",
    "TRAINED": "predictor",
    "ZERO_SHOT": "predictor",
    "Predictor": "predictor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simclip' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
