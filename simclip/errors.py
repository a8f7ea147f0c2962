"""Typed errors raised by the library; each carries a short machine-readable code."""


class SimCLIPError(Exception):
    """Base class of every error this library raises on purpose."""

    code = "simclip_error"


class ImageError(SimCLIPError, ValueError):
    """An image could not be used. `status` is the HTTP status the server maps it to."""

    code = "bad_image"
    status = 422


class EmptyImageError(ImageError):
    """Zero bytes were given."""

    code = "empty_image"
    status = 400


class UnsupportedImageError(ImageError):
    """The bytes are not one of the allowed image formats (JPEG, PNG, GIF, WebP, BMP, AVIF)."""

    code = "unsupported_format"
    status = 415


class ImageTooLargeError(ImageError):
    """The declared dimensions exceed the pixel or side cap (a decompression bomb guard)."""

    code = "image_too_large"
    status = 422


class CorruptImageError(ImageError):
    """The format is allowed but the data is truncated or malformed."""

    code = "corrupt_image"
    status = 422


class BackboneUnavailableError(SimCLIPError, RuntimeError):
    """The CLIP weights are neither cached nor downloadable."""

    code = "backbone_unavailable"


class CheckpointError(SimCLIPError, ValueError):
    """A head checkpoint is malformed or does not match the backbone."""

    code = "bad_checkpoint"
