"""WebDataset shards and content sniffing: which tar members (and folder files) are pictures.

A shard is read front to back, member by member (the bytes of one member in memory at a time),
and every member a tar reader sees is accounted for: a picture, an error row, or a skip with
its reason. The member rules are the webdataset library's (`webdataset.tariterators`,
`webdataset.autodecode`):

    __key__-style metadata ('__' ... '__', and webdataset's skip_meta r'__[^/]*__($|/)')  skipped
    key and extension: the key runs to the first '.' of the base name, the extension is the rest
      ('0001.seg.jpg': key '0001', extension 'seg.jpg'); the extension's last component decides
      ('jpg'), lowercased; '.gz' is decompressed first ('0001.jpg.gz' is a jpg)
    PIL's image extensions (webdataset's IMAGE_EXTENSIONS)   a picture
    webdataset's data decoders (txt, json, cls, npy...), audio and video   skipped: not an image
    any other extension ('jpg_large') or none ('0001'): sniffed by content (Pillow, on the
      formats simclip decodes): a picture, or skipped: not an image

Where webdataset drops a member silently we do not: a hard link is read as its target's bytes
(how GNU tar stores a second copy of a file), a symbolic link inside the shard likewise, a
directory or a device is counted as skipped.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError

# webdataset.autodecode.IMAGE_EXTENSIONS: the extensions PIL opens
IMAGE_EXTENSIONS = frozenset([
    "blp", "bmp", "dib", "bufr", "cur", "pcx", "dcx", "dds", "ps", "eps", "fit", "fits",
    "fli", "flc", "ftc", "ftu", "gbr", "gif", "grib", "h5", "hdf", "png", "apng", "jp2",
    "j2k", "jpc", "jpf", "jpx", "j2c", "icns", "ico", "im", "iim", "tif", "tiff", "jfif",
    "jpe", "jpg", "jpeg", "mpg", "mpeg", "msp", "pcd", "pxr", "pbm", "pgm", "ppm", "pnm",
    "psd", "bw", "rgb", "rgba", "sgi", "ras", "tga", "icb", "vda", "vst", "webp", "wmf",
    "emf", "xbm", "xpm", "avif", "heic", "heif",
])
# webdataset.autodecode.decoders and its video/audio handlers: data that is never a picture
NOT_IMAGE_EXTENSIONS = frozenset([
    "txt", "text", "transcript", "cls", "cls2", "index", "inx", "id", "json", "jsn", "pyd",
    "pickle", "pth", "ten", "tb", "mp", "msg", "npy", "npz", "cbor", "mp4", "ogv", "mjpeg",
    "avi", "mov", "h264", "webm", "wmv", "flac", "mp3", "sox", "wav", "m4a", "ogg", "wma",
    "csv", "tsv", "xml", "html", "htm", "md", "parquet", "tar", "zip",
])
META_PATTERN = re.compile(r"__[^/]*__($|/)")  # webdataset's skip_meta
SNIFF_BYTES = 64 * 1024  # enough for every allowed format's header
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # a larger member is an error row, never read whole
NOT_AN_IMAGE = "not an image"


def member_extension(name: str) -> str | None:
    """The extension that decides a member: the last component of webdataset's extension
    (`base_plus_ext`), lowercased; None when the base name has no '.'."""
    match = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", name)
    if not match:
        return None
    return match.group(2).lower().rsplit(".", 1)[-1]


def is_meta(name: str) -> bool:
    """A webdataset metadata member ('__key__', '__index__/...'), never a sample."""
    base = name.rsplit("/", 1)[-1]
    return ("/" not in name and name.startswith("__") and name.endswith("__")) or bool(
        META_PATTERN.match(name)) or bool(META_PATTERN.match(base))


def looks_like_image(head: bytes) -> bool:
    """True when Pillow recognises `head` (a file's first bytes) as one of the formats simclip
    decodes (`simclip.images.list_image_formats`), or when it is an SVG that embeds a picture
    there (`simclip.svg`; a vector SVG, an icon or a logo, is not one); nothing is decoded."""
    from simclip import list_image_formats
    from simclip.svg import embeds_picture, is_svg

    if is_svg(head):
        return embeds_picture(head)

    try:
        with Image.open(io.BytesIO(head), formats=list_image_formats()):
            return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return False


def classify_name(name: str) -> str:
    """'image', 'skip' or 'sniff' for a file or member name (see the module docstring)."""
    ext = member_extension(name)
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in NOT_IMAGE_EXTENSIONS:
        return "skip"
    return "sniff"


def skip_reason(name: str) -> str:
    """The summary's reason for a member or file skipped by its extension."""
    return f"{NOT_AN_IMAGE} (.{member_extension(name)})"


class ShardMember:
    """One member of a shard as the reader saw it: its name, and its bytes or why not."""

    __slots__ = ("data", "error", "name", "skipped")

    def __init__(self, name: str, data: bytes | None = None, error: str | None = None,
                 skipped: str | None = None) -> None:
        self.name, self.data, self.error, self.skipped = name, data, error, skipped


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """A member's bytes, at most MAX_MEMBER_BYTES; a link is read as its target inside the
    shard (tarfile finds it among the members already read)."""
    f = tar.extractfile(member)
    if f is None:
        raise ValueError("the link's target is not a file")
    with f:
        data = f.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise ValueError(f"over the {MAX_MEMBER_BYTES} byte limit")
    return data


def iter_shard(path: str) -> Iterator[ShardMember]:
    """Every member of the shard at `path`, in order, classified.

    Raises:
        tarfile.TarError, OSError, EOFError: the shard cannot be read from this member on
            (the members before it were yielded).
    """
    with tarfile.open(path) as tar:  # random access: a link's target is read again
        for member in tar:
            yield classify_member(tar, member)


def skip_by_header(member: tarfile.TarInfo) -> str | None:
    """Why a member is skipped from its header alone (a folder, a device, webdataset's
    metadata, a suffix that is never a picture), or None when it may be a picture."""
    name = member.name
    if member.isdir():
        return "folder entry"
    if not (member.isfile() or member.islnk() or member.issym()):
        return "not a file (device, fifo)"
    if is_meta(name):
        return "webdataset metadata (__key__)"
    base = _without_gz(name)
    return skip_reason(base) if classify_name(base) == "skip" else None


def _without_gz(name: str) -> str:
    """A '.gz' member's name without it ('0001.jpg.gz' is a jpg), else the name."""
    return name[:-3] if member_extension(name) == "gz" else name


def classify_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> ShardMember:
    """One member: its bytes when it is a picture, else why it is skipped or an error."""
    name = member.name
    skipped = skip_by_header(member)
    if skipped:
        return ShardMember(name, skipped=skipped)
    base = _without_gz(name)
    try:
        data = _read_member(tar, member)
        if base != name:
            data = _gunzip(data)
    except (KeyError, ValueError, OSError, EOFError, tarfile.TarError) as e:
        what = "link" if member.islnk() or member.issym() else "member"
        return ShardMember(name, error=f"unreadable {what}: {type(e).__name__}: {e}")
    if classify_name(base) == "sniff" and not looks_like_image(data[:SNIFF_BYTES]):
        return ShardMember(name, skipped=f"{NOT_AN_IMAGE} (content)")
    return ShardMember(name, data=data)


def count_shard_pictures(path: str, compressed_bytes_per_picture: int) -> int:
    """About how many inputs a shard gives, without reading a member's bytes: an uncompressed
    tar's members that may be pictures, from their headers (`skip_by_header`; tarfile seeks
    over the bytes), plus one error row if it is damaged; a compressed shard (or a file that is
    not a tar) from its size, at `compressed_bytes_per_picture` bytes a picture."""
    count = 0
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                count += skip_by_header(member) is None
    except tarfile.ReadError:  # compressed (or not a tar: one error row)
        try:
            return os.path.getsize(path) // compressed_bytes_per_picture
        except OSError:
            return 1
    except (OSError, EOFError, tarfile.TarError):
        return count + 1  # the members before the damage, and its error row
    return count


def _gunzip(data: bytes) -> bytes:
    """A '.gz' member's content, at most MAX_MEMBER_BYTES (a gzip bomb stops there)."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        out = f.read(MAX_MEMBER_BYTES + 1)
    if len(out) > MAX_MEMBER_BYTES:
        raise ValueError(f"decompressed over the {MAX_MEMBER_BYTES} byte limit")
    return out


def sniff_file(path: str) -> bool | None:
    """True when the file's first bytes are a picture, False when not, None when it cannot be
    read (its row will say why)."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return None
    return looks_like_image(head)

