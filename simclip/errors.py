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


class UnrecognisedImageError(UnsupportedImageError):
    """No allowed image format recognises the bytes (not a malformed header of one): a caller
    that also takes other kinds of picture (`simclip.picture`) names them in its own refusal."""


class VectorSVGError(UnsupportedImageError):
    """An SVG that embeds no picture: a vector drawing (an icon, a logo), which is not judged
    (`simclip.svg`). A client may treat it as a picture it skips, not as one it failed on."""

    code = "vector_svg"


class ImageTooLargeError(ImageError):
    """The declared dimensions exceed the pixel or side cap (a decompression bomb guard)."""

    code = "image_too_large"
    status = 422


class CorruptImageError(ImageError):
    """The format is allowed but the data is truncated or malformed."""

    code = "corrupt_image"
    status = 422


class ImageDataTooShortError(CorruptImageError):
    """The header declares a canvas the bytes present cannot hold even at the format's best
    compression (a PNG's deflate ratio, a JPEG's one bit per block): a tiny file claiming a
    large picture, refused before decoding (`simclip.truncation.check_data_covers`)."""

    code = "image_data_too_short"
    status = 422


class DecodeTimeoutError(ImageError):
    """Decoding the picture took longer than its time budget (the server's decode workers)."""

    code = "decode_timeout"
    status = 422


class DecodeMemoryError(ImageError):
    """Decoding the picture needed more memory than its worker may use (the server's decode
    workers), or the decoder died while decoding it."""

    code = "decode_out_of_memory"
    status = 422


class VideoError(ImageError):
    """A video could not be used. Videos are pictures the classifier judges (their frames), so
    every video error is an ImageError that callers handling images already handle."""

    code = "bad_video"
    status = 422


class UnsupportedVideoError(VideoError):
    """Not an allowed video: a container other than MP4 or WebM, no video stream, a codec other
    than H.264, VP8, VP9 or AV1, or too many streams."""

    code = "unsupported_video"
    status = 415


class VideoDecoderMissingError(UnsupportedVideoError):
    """PyAV (the `av` package), which decodes videos, is not installed."""

    code = "video_decoder_missing"
    status = 415


class CorruptVideoError(VideoError):
    """The container or codec is allowed but the data is malformed, or truncated before any
    frame decodes."""

    code = "corrupt_video"
    status = 422


class VideoTooLargeError(VideoError):
    """The video has more bytes than MAX_VIDEO_BYTES."""

    code = "video_too_large"
    status = 422


class VideoResolutionTooLargeError(VideoError):
    """A frame is larger than MAX_VIDEO_SIDE a side or MAX_VIDEO_PIXELS (1080p)."""

    code = "video_resolution_too_large"
    status = 422


class VideoTooLongError(VideoError):
    """The video lasts longer than MAX_VIDEO_DURATION_S."""

    code = "video_too_long"
    status = 422


class VideoTooManyFramesError(VideoError):
    """The video has more than MAX_VIDEO_FRAMES frames, or more than MAX_VIDEO_FPS a second."""

    code = "video_too_many_frames"
    status = 422


class BackboneUnavailableError(SimCLIPError, RuntimeError):
    """The CLIP weights are neither cached nor downloadable."""

    code = "backbone_unavailable"


class WeightsDownloadError(BackboneUnavailableError):
    """The CLIP weights download failed after its retries, or the file received is not the one
    the hub announced (size or sha256): nothing was cached. A partial file is kept to resume."""

    code = "weights_download_failed"


class InsufficientDiskError(BackboneUnavailableError):
    """Not enough free disk space for the CLIP weights: `needed` bytes in `folder`, `free` there
    (checked before the first byte is fetched)."""

    code = "insufficient_disk"

    def __init__(self, message: str, needed: int = 0, free: int = 0, folder: str = "") -> None:
        super().__init__(message)
        self.needed, self.free, self.folder = needed, free, folder


class CheckpointError(SimCLIPError, ValueError):
    """A head checkpoint is malformed or does not match the backbone."""

    code = "bad_checkpoint"
