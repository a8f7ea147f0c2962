"""Safe image decoding: an allowlist of formats, a pixel cap before decoding, one RGB frame out.

Pillow opens about 43 formats by default, EPS among them, which launches Ghostscript; every
image reaching this module comes from an arbitrary web page, so only the formats memes use are
opened (THREATS.md T9 to T11).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TypeAlias

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError, features

from .constants import ALLOWED_IMAGE_FORMATS, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE
from .errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is refused, never half-decoded

# What decode_image accepts: encoded bytes, a filesystem path, or an opened PIL image.
ImageSource: TypeAlias = bytes | bytearray | memoryview | str | Path | Image.Image


def list_image_formats() -> list[str]:
    """The allowed formats this Pillow build can decode, as Pillow names them ('JPEG', 'PNG', ...).

    A subset of ALLOWED_IMAGE_FORMATS: AVIF only when this Pillow build has the AVIF plugin.
    """
    formats = [f for f in ALLOWED_IMAGE_FORMATS if f != "AVIF"]
    if features.check("avif"):
        formats.append("AVIF")
    return formats


def _open(data: bytes) -> Image.Image:
    """Open lazily (header only) with the format allowlist."""
    fp = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(fp, formats=list_image_formats())
    except UnidentifiedImageError as e:
        raise UnsupportedImageError(
            f"not an image in an allowed format ({', '.join(list_image_formats())})"
        ) from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"image dimensions exceed the decoder's safety limit: {e}") from e
    except (OSError, SyntaxError, ValueError, EOFError, struct_error()) as e:
        # The magic bytes matched but no valid header follows (e.g. HTML behind a PNG
        # signature): not an image at all, as far as any caller is concerned.
        raise UnsupportedImageError(f"not a valid image: malformed header ({e})") from e


def struct_error():
    """struct.error, raised by some Pillow header parsers on short input."""
    import struct

    return struct.error


def check_dimensions(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse zero (UnsupportedImageError), oversized or bomb-like (ImageTooLargeError) sizes."""
    if width <= 0 or height <= 0:
        raise UnsupportedImageError(f"image has an invalid size {width}x{height}")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise ImageTooLargeError(
            f"image side {max(width, height)} px exceeds the {MAX_IMAGE_SIDE} px limit"
        )
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height:,} px, over the {max_pixels:,} px limit"
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode (RGBA, LA, P, CMYK, I;16, 1, ...) to RGB, compositing alpha on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clip everything to white
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def decode_image(data: ImageSource, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode bytes (or a path, or a PIL image) into one upright RGB PIL image.

    Only the formats of `list_image_formats()` are opened (THREATS.md T9 to T11).

    Args:
        data: encoded image bytes, a filesystem path (str or Path), or an opened PIL image.
        max_pixels: width x height cap in pixels, checked from the header before decoding;
            each side is also capped at MAX_IMAGE_SIDE (16,384 pixels).

    Returns:
        An RGB `PIL.Image.Image`: the first frame, EXIF orientation applied, alpha composited
        on white.

    Raises:
        EmptyImageError: zero bytes.
        UnsupportedImageError: not an allowed format, a malformed header, or a zero size.
        ImageTooLargeError: over `max_pixels` or the side cap, or a decompression bomb.
        CorruptImageError: an allowed format whose data is truncated or malformed.
        TypeError: `data` is none of the accepted types.
        OSError: a path that cannot be read.
    """
    if isinstance(data, Image.Image):
        check_dimensions(*data.size, max_pixels=max_pixels)
        return _to_rgb(ImageOps.exif_transpose(data))
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, a path or a PIL image, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise EmptyImageError("the image is empty (0 bytes)")
    img = _open(data)
    check_dimensions(*img.size, max_pixels=max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.seek(0)  # first frame only; never n_frames, which walks every frame
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"image exceeds the decoder's safety limit: {e}") from e
    except MemoryError as e:
        raise ImageTooLargeError("image is too large to decode in memory") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct_error()) as e:
        raise CorruptImageError(f"image data is truncated or malformed: {e}") from e
