"""BMP layouts Pillow refuses and browsers paint (simclip/bmp.py, issue 17 item 4: the picture
judged is the picture shown). tests/e2e/test_truncation_e2e.py holds the same forms of real
memes to Chromium's and Firefox's painting."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from display_pictures import BMP_LAYOUTS, bmp_with_bit_fields, bmp_with_palette, unusual_bmp
from simclip import ImageError, decode_image
from simclip.bmp import BmpLayoutError, bmp_fields, decode_bmp
from simclip.errors import ImageDataTooShortError, ImageTooLargeError


def _picture(width=61, height=40):
    """A colour gradient with a shape in it: every channel varies, and the rows differ."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)], axis=-1)
    rgb[5:15, 10:30] = (250, 20, 120)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


BIT_FIELDS = [name for name, (kind, _, _) in BMP_LAYOUTS.items() if kind == "fields"]
PALETTES = [name for name, (kind, _, _) in BMP_LAYOUTS.items() if kind == "palette"]


@pytest.mark.parametrize("layout", BIT_FIELDS)
def test_bit_field_layouts_pillow_refuses_decode_to_the_picture(layout):
    img = _picture()
    data = unusual_bmp(img, layout)
    with pytest.raises((OSError, ValueError)):
        Image.open(io.BytesIO(data)).load()  # what the server did before: 415, shown unchecked
    decoded = decode_image(data)
    assert decoded.size == img.size and decoded.mode == "RGB"
    diff = np.abs(np.asarray(decoded, dtype=int) - np.asarray(img, dtype=int))
    assert diff.max() <= BMP_LAYOUTS[layout][2], (layout, diff.max())


def test_a_field_narrower_than_8_bits_is_scaled_to_the_full_range_as_browsers_do():
    img = Image.new("RGB", (4, 1), (255, 255, 255))
    img.putpixel((0, 0), (0, 0, 0))
    decoded = np.asarray(decode_image(bmp_with_bit_fields(img, 16, (0x30, 0x0E, 0x01, 0))))
    assert decoded[0, 0].tolist() == [0, 0, 0]
    assert decoded[0, 1].tolist() == [255, 255, 255]  # 2, 3 and 1 bits at their top: white, not 192/224/128


def test_an_alpha_field_is_the_pictures_alpha_unless_every_pixel_leaves_it_zero():
    img = Image.new("RGBA", (8, 2), (200, 10, 10, 255))
    img.putpixel((0, 0), (200, 10, 10, 0))
    masks = (0xFF0000, 0xFF00, 0xFF, 0xFF000000)
    with_alpha = decode_bmp(bmp_with_bit_fields(img, 32, masks, alpha_bit_fields=True), 10**6)
    assert with_alpha.mode == "RGBA" and np.asarray(with_alpha)[:, :, 3].tolist() == [[0] + [255] * 7, [255] * 8]
    opaque = img.convert("RGB")
    unset = decode_bmp(bmp_with_bit_fields(opaque, 32, (0xFF0000, 0xFF00, 0xFF, 0), alpha_bit_fields=True), 10**6)
    assert unset.mode == "RGB"  # no alpha in the data: opaque


@pytest.mark.parametrize("layout", PALETTES)
def test_palette_layouts_pillow_refuses_decode_to_their_palette_colours(layout):
    """2 bits a pixel, an OS/2 2.x 16-byte header, a palette longer than the depth indexes."""
    img = _picture()
    data = unusual_bmp(img, layout)
    with pytest.raises((OSError, ValueError)):
        Image.open(io.BytesIO(data)).load()
    expected = np.asarray(img.quantize(1 << BMP_LAYOUTS[layout][1].get("bits", 8)).convert("RGB"))
    assert np.array_equal(np.asarray(decode_image(data)), expected), layout


def test_a_bmp_cut_short_paints_the_rows_that_arrived_and_nothing_else():
    img = _picture()
    data = bmp_with_bit_fields(img, 32, (0xFFE00000, 0x1FFC00, 0x3FF, 0))
    offset = struct.unpack_from("<I", data, 10)[0]
    stride = img.width * 4
    cut = data[:offset + 15 * stride + 7]  # 15 whole rows: the picture's bottom rows (stored first)
    rgba = np.asarray(decode_bmp(cut, 10**6), dtype=int)
    assert (rgba[-15:, :, 3] == 255).all() and (rgba[:-15, :, 3] == 0).all()
    assert np.abs(rgba[-15:, :, :3] - np.asarray(img, dtype=int)[-15:]).max() == 0
    assert decode_image(cut).size == img.size  # the server judges it so (the rest filled as for any transparency)


def test_a_top_down_bmp_keeps_its_first_rows_at_the_top():
    img = _picture()
    data = bytearray(bmp_with_bit_fields(img, 32, (0xFF0000, 0xFF00, 0xFF, 0), alpha_bit_fields=True))
    height = struct.unpack_from("<i", data, 22)[0]
    struct.pack_into("<i", data, 22, -height)  # the same rows read top-down: the picture upside down
    assert np.array_equal(np.asarray(decode_image(bytes(data))), np.asarray(img)[::-1])


def test_a_palette_index_past_the_palette_is_black():
    img = Image.new("RGB", (4, 4), (10, 200, 30))
    data = bytearray(bmp_with_palette(img, bits=2))
    offset = struct.unpack_from("<I", data, 10)[0]
    data[offset] = 0xFF  # index 3, where the palette has one colour
    assert np.asarray(decode_image(bytes(data)))[-1, 0].tolist() == [0, 0, 0]


def test_a_header_claiming_a_huge_canvas_is_refused_before_decoding():
    huge = bytearray(bmp_with_bit_fields(_picture(), 32, (0xFFE00000, 0x1FFC00, 0x3FF, 0)))
    struct.pack_into("<ii", huge, 18, 30000, 30000)
    with pytest.raises(ImageTooLargeError):
        decode_image(bytes(huge))
    short = bytearray(huge)
    struct.pack_into("<ii", short, 18, 2000, 1000)  # 2 MP, and the bytes of a few rows only
    with pytest.raises(ImageDataTooShortError):
        decode_image(bytes(short))


def test_a_callers_pixel_cap_refuses_such_a_bmp_before_decoding(monkeypatch):
    data = bmp_with_bit_fields(_picture(61, 40), 32, (0xFFE00000, 0x1FFC00, 0x3FF, 0))
    assert decode_image(data, max_pixels=61 * 40).size == (61, 40)
    decoded = []
    monkeypatch.setattr("simclip.images.decode_bmp", lambda *a: decoded.append(a))
    with pytest.raises(ImageTooLargeError, match="2,439 px limit"):
        decode_image(data, max_pixels=61 * 40 - 1)
    assert decoded == [], "decoded before the caller's cap refused it"


@pytest.mark.parametrize("damage", ["no rows", "masks cut off", "header size 200", "RLE-compressed 16-bit"])
def test_other_malformed_layouts_are_typed_errors(damage):
    data = bytearray(bmp_with_bit_fields(_picture(), 16, (0x30, 0x0E, 0x01, 0)))
    offset = struct.unpack_from("<I", data, 10)[0]
    if damage == "no rows":
        data = data[:offset + 10]
    elif damage == "masks cut off":
        data = data[:14 + 40 + 6]
    elif damage == "header size 200":
        struct.pack_into("<I", data, 14, 200)
    else:
        struct.pack_into("<I", data, 30, 1)
    with pytest.raises(ImageError):
        decode_image(bytes(data))
    with pytest.raises(BmpLayoutError):
        decode_bmp(bytes(data), 10**6)


def _with_masks(masks, header_size=124):
    """A white 4x2 16-bit BMP stored as 5-6-5, its header's masks then replaced by `masks`."""
    data = bytearray(bmp_with_bit_fields(Image.new("RGB", (4, 2), "white"), 16, (0xF800, 0x07E0, 0x001F, 0),
                                         header_size=header_size))
    struct.pack_into("<4I", data, 54, *masks)
    return bytes(data)


def test_a_mask_reaching_past_the_pixel_depth_is_cut_to_it_as_chromium_reads_it():
    # red's mask 0x1F800 over a 16-bit pixel: Chromium keeps 0xF800, so white stays white
    assert np.asarray(decode_image(_with_masks((0x1F800, 0x07E0, 0x001F, 0))))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("masks", [(0xF00F, 0x07E0, 0x0010, 0), (0xF800, 0x0FE0, 0x001F, 0)],
                         ids=["a gap", "overlapping"])
def test_masks_with_a_gap_or_sharing_a_bit_are_refused_as_browsers_paint_nothing(masks):
    with pytest.raises(ImageError):
        decode_image(_with_masks(masks))


@pytest.mark.parametrize("layout", ["OS/2 2.x 64-byte header with bit fields", "OS/2 2.x 2-bit", "header size 66"])
def test_header_layouts_chromium_refuses_stay_refused(layout):
    img = _picture()
    if layout.startswith("OS/2 2.x 64"):
        data = bytearray(bmp_with_bit_fields(img, 32, (0xFF0000, 0xFF00, 0xFF, 0), header_size=56))
        struct.pack_into("<I", data, 14, 64)  # read as an OS/2 2.x header: its compression 3 is Huffman
    elif layout == "OS/2 2.x 2-bit":
        data = bytearray(bmp_with_palette(img, bits=2, header_size=16))
    else:
        data = bytearray(bmp_with_bit_fields(img, 32, (0xFF0000, 0xFF00, 0xFF, 0), header_size=124))
        struct.pack_into("<I", data, 14, 66)
    with pytest.raises(BmpLayoutError):
        decode_bmp(bytes(data), 10**6)
    if not layout.startswith("OS/2 2.x 64"):  # that one Pillow reads as bit fields itself
        with pytest.raises(ImageError):
            decode_image(bytes(data))


@pytest.mark.parametrize("fmt, header", [("BMP", 40), ("palette-os2", 16), ("core", 12), ("fields-v5", 124)])
def test_bmp_fields_reads_every_header_size_as_stored(fmt, header):
    """One reader of a BMP's headers for the decoder and the truncation check: what Pillow and
    our own writers store, and nothing from bytes cut inside those fields."""
    img = _picture(33, 7)
    if fmt == "BMP":
        buf = io.BytesIO()
        img.save(buf, "BMP")
        data, bits, compression = buf.getvalue(), 24, 0
    elif fmt == "core":  # OS/2 1.x: 16-bit sizes, 24-bit rows padded to 4 bytes
        rows = b"".join(img.tobytes()[y * 99:(y + 1) * 99][::-1] + b"\0" for y in range(7))
        data = b"BM" + struct.pack("<IHHI", 26 + len(rows), 0, 0, 26) + struct.pack("<IHHHH", 12, 33, 7, 1, 24) + rows
        bits, compression = 24, 0
    elif fmt == "fields-v5":
        data, bits, compression = bmp_with_bit_fields(img, 32, (0xFF0000, 0xFF00, 0xFF, 0), header_size=124), 32, 3
    else:
        data, bits, compression = bmp_with_palette(img.quantize(16).convert("RGB"), bits=4, header_size=header), 4, 0
    offset = struct.unpack_from("<I", data, 10)[0]
    assert bmp_fields(data) == (offset, header, 33, 7, bits, compression)
    needed = max(30, 14 + min(header, 20))  # the fields read: up to the compression, where the header has one
    assert bmp_fields(data[:needed]) == bmp_fields(data)
    assert bmp_fields(data[:needed - 1]) is None
    assert bmp_fields(b"BA" + data[2:]) is None


def _failing_first_load(data, error):
    """`data` opened by Pillow, its first load raising `error` as for a layout Pillow cannot load;
    later loads are Pillow's own (after truncated_bmp empties the tiles, they decode nothing)."""
    img = Image.open(io.BytesIO(data))
    load = img.load
    calls = []

    def first_fails():
        calls.append(1)
        if len(calls) == 1:
            raise error
        return load()

    img.load = first_fails
    return img


def test_a_bmp_pillow_fails_to_load_for_another_reason_is_not_painted_as_a_cut_one():
    """truncated_bmp paints the rows that arrived of a BMP cut short. A load that fails with every
    row there, or for a reason other than the data stopping (a layout Pillow opens and cannot
    load), is not a cut: no blank frame for it (on the old code: an opaque black picture)."""
    from simclip.truncation import truncated_bmp

    buf = io.BytesIO()
    _picture().save(buf, "BMP")
    data = buf.getvalue()
    assert truncated_bmp(data, lambda: _failing_first_load(data, OSError("image file is truncated"))) is None
    cut = data[:len(data) - 61 * 3 * 10]  # ten rows short
    assert truncated_bmp(cut, lambda: _failing_first_load(cut, ValueError("unsupported BMP layout"))) is None
    painted = truncated_bmp(cut, lambda: Image.open(io.BytesIO(cut)))
    assert painted is not None and painted.getpixel((0, 0))[3] == 0 and painted.getpixel((0, 39))[3] == 255
