"""SimCLIP meme classifier: frozen CLIP encoders, a siamese fusion head, meme OCR.

Public API (the server and the tools use only these names):
    load_classifier, Predictor             ready-to-use classifier
    load_backbone, Backbone, list_backbones, get_device
    HeadConfig, TaskSpec, SimCLIPHead, simclip_loss, fuse
    save_checkpoint, load_checkpoint, make_metadata, read_metadata
    decode_image, get_ocr_engine
    errors: SimCLIPError, ImageError (+ subclasses), CheckpointError, BackboneUnavailableError
"""

from .backbone import Backbone, BackboneInfo, get_device, list_backbones, load_backbone
from .checkpoint import (
    checkpoint_digest,
    load_checkpoint,
    make_metadata,
    read_metadata,
    save_checkpoint,
    validate_metadata,
)
from .classifier import load_classifier
from .constants import (
    ALLOWED_IMAGE_FORMATS,
    DEFAULT_MODEL,
    DEFAULT_PORT,
    DEFAULT_PRETRAINED,
    MAX_IMAGE_PIXELS,
    TINY_MODEL,
    WARNING_CATEGORIES,
)
from .errors import (
    BackboneUnavailableError,
    CheckpointError,
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    SimCLIPError,
    UnsupportedImageError,
)
from .head import MULTICLASS, MULTILABEL, HeadConfig, SimCLIPHead, TaskSpec, fuse, simclip_loss
from .images import decode_image, list_image_formats
from .ocr import OCR_ENGINES, get_ocr_engine
from .predictor import TRAINED, ZERO_SHOT, Predictor

__version__ = "0.1.0"

__all__ = [
    "Backbone",
    "BackboneInfo",
    "get_device",
    "list_backbones",
    "load_backbone",
    "checkpoint_digest",
    "load_checkpoint",
    "make_metadata",
    "read_metadata",
    "save_checkpoint",
    "validate_metadata",
    "load_classifier",
    "ALLOWED_IMAGE_FORMATS",
    "DEFAULT_MODEL",
    "DEFAULT_PORT",
    "DEFAULT_PRETRAINED",
    "MAX_IMAGE_PIXELS",
    "TINY_MODEL",
    "WARNING_CATEGORIES",
    "BackboneUnavailableError",
    "CheckpointError",
    "CorruptImageError",
    "EmptyImageError",
    "ImageError",
    "ImageTooLargeError",
    "SimCLIPError",
    "UnsupportedImageError",
    "MULTICLASS",
    "MULTILABEL",
    "HeadConfig",
    "SimCLIPHead",
    "TaskSpec",
    "fuse",
    "simclip_loss",
    "decode_image",
    "list_image_formats",
    "OCR_ENGINES",
    "get_ocr_engine",
    "TRAINED",
    "ZERO_SHOT",
    "Predictor",
]
