"""The picture judged is the picture the browser paints (simclip/display.py): EXIF orientation
per format, as the viewer's browser applies it, and ICC colour converted to sRGB."""

import io
import struct
import time
import zlib

import pytest
from PIL import Image, ImageCms, PngImagePlugin, features

import simclip.images
from display_pictures import FOLLOWED_OTHERWISE, close
from simclip.display import DISPLAY_RULES, EXIF_ORIENTATION_FORMATS, exif_orientation, orient, to_srgb
from simclip.images import decode_frames, decode_image, list_image_formats
from simclip.picture import decode_picture

STORED = (60, 20)  # a landscape picture whose EXIF says: turn 90 degrees clockwise to show it
UPRIGHT = (20, 60)


def exif_block(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def oriented(fmt, orientation=6, size=STORED, **save):
    """A picture in `fmt` whose left half is red and right half blue, with an EXIF orientation."""
    img = Image.new("RGB", size, (220, 20, 20))
    img.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    buf = io.BytesIO()
    img.save(buf, fmt, exif=exif_block(orientation), **save)
    return buf.getvalue()


def png_with_exif_text_only(orientation):
    """A PNG whose orientation is only in a `Raw profile type exif` text chunk and in XMP:
    places browsers never read it from."""
    raw = b"Exif\x00\x00" + exif_block(orientation)
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8}\n{raw.hex()}\n")
    info.add_itxt("XML:com.adobe.xmp", f'<x:xmpmeta><rdf:Description tiff:Orientation="{orientation}"/>'
                                       "</x:xmpmeta>")
    buf = io.BytesIO()
    Image.new("RGB", STORED, (200, 30, 30)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied_only_in_the_formats_the_browser_orients(fmt):
    data = oriented(fmt)
    assert decode_image(data).size == UPRIGHT  # no rule: every format, as before
    assert decode_image(data, exif_formats=[fmt]).size == UPRIGHT
    assert decode_image(data, exif_formats=[fmt.lower()]).size == UPRIGHT
    assert decode_image(data, exif_formats=[]).size == STORED
    others = [f for f in EXIF_ORIENTATION_FORMATS if f != fmt]
    assert decode_image(data, exif_formats=others).size == STORED


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_an_upright_picture_has_the_left_half_on_top(fmt):
    """Orientation 6 turns the stored picture 90 degrees clockwise: its left (red) half ends on top."""
    upright = decode_image(oriented(fmt, quality=95) if fmt != "PNG" else oriented(fmt))
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 55))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0], (top, bottom)


def test_an_avif_is_always_turned_by_its_irot_whatever_the_rule():
    if "AVIF" not in list_image_formats():
        pytest.skip("this Pillow build has no AVIF plugin")
    data = oriented("AVIF")
    assert decode_image(data, exif_formats=[]).size == UPRIGHT
    assert decode_image(data).size == UPRIGHT


def test_every_orientation_value_is_applied_as_exif_defines_it():
    img = Image.new("RGB", (3, 2))
    img.putpixel((0, 0), (255, 0, 0))  # the stored top-left pixel
    expected = {1: (0, 0), 2: (2, 0), 3: (2, 1), 4: (0, 1), 5: (0, 0), 6: (1, 0), 7: (1, 2), 8: (0, 2)}
    for value, where in expected.items():
        buf = io.BytesIO()
        img.save(buf, "PNG", exif=exif_block(value))
        shown = decode_image(buf.getvalue())
        assert shown.getpixel(where) == (255, 0, 0), (value, shown.size)


def test_orientation_in_xmp_or_a_png_text_chunk_is_ignored_as_browsers_ignore_it():
    assert decode_image(png_with_exif_text_only(6)).size == STORED


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_an_out_of_range_orientation_leaves_the_picture_as_stored(value):
    assert decode_image(oriented("JPEG", orientation=value)).size == STORED


def test_a_malformed_exif_block_is_ignored_not_refused():
    img = Image.new("RGB", STORED, (10, 200, 10))
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    assert decode_image(buf.getvalue()).size == STORED


def test_animation_frames_follow_the_rule_too():
    frames = [Image.new("RGB", STORED, c) for c in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100,
                   exif=exif_block(6), lossless=True)
    data = buf.getvalue()
    assert {f.size for f in decode_frames(data)} == {UPRIGHT}
    assert {f.size for f in decode_frames(data, exif_formats=["JPEG"])} == {STORED}


def test_a_pil_image_is_oriented_by_the_same_rule():
    img = Image.open(io.BytesIO(oriented("WEBP")))
    assert decode_image(img).size == UPRIGHT
    assert decode_image(Image.open(io.BytesIO(oriented("WEBP"))), exif_formats=["PNG"]).size == STORED


def tiff(entries, order="MM"):
    """A TIFF structure (an EXIF block) whose first directory holds `entries`:
    (tag, type, count, 4 value bytes or an int)."""
    e = ">" if order == "MM" else "<"
    body = struct.pack(e + "H", len(entries))
    for tag, kind, count, value in entries:
        if isinstance(value, int):
            value = struct.pack(e + "H", value) + b"\0\0" if kind == 3 else struct.pack(e + "I", value)
        body += struct.pack(e + "HHI", tag, kind, count) + value
    return order.encode() + struct.pack(e + "HI", 42, 8) + body + b"\0\0\0\0"


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunks(img=None, before=(), after=(), **save):
    """A PNG of `img` (default the red/blue picture) with extra chunks before and after its
    image data."""
    buf = io.BytesIO()
    if img is None:
        img = Image.new("RGB", STORED, (220, 20, 20))
        img.paste((20, 20, 220), (STORED[0] // 2, 0, *STORED))
    img.save(buf, "PNG", **save)
    data = buf.getvalue()
    first, end = data.index(b"IDAT") - 4, data.index(b"IEND") - 4
    return data[:first] + b"".join(before) + data[first:end] + b"".join(after) + data[end:]


def jpeg_with_exif(block):
    img = Image.new("RGB", STORED, (220, 20, 20))
    img.paste((20, 20, 220), (STORED[0] // 2, 0, *STORED))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=b"Exif\0\0" + block)
    return buf.getvalue()


SHORT, LONG = 3, 4
TURN = tiff([(0x112, SHORT, 1, 6)])
# What headless Chromium 156 and Firefox ESR 153 both paint (measured 2026-12-03 on pages of
# these pictures): a stored 60x20 picture, turned or not.
AS_BROWSERS_READ_IT = [
    ("one SHORT 6", jpeg_with_exif(tiff([(0x112, SHORT, 1, 6)])), UPRIGHT),
    ("little-endian", jpeg_with_exif(tiff([(0x112, SHORT, 1, 6)], "II")), UPRIGHT),
    ("orientation as a LONG", jpeg_with_exif(tiff([(0x112, LONG, 1, 6)])), STORED),
    ("two SHORTs", jpeg_with_exif(tiff([(0x112, SHORT, 2, struct.pack(">HH", 6, 6))])), STORED),
    ("a value of 0x0606", jpeg_with_exif(tiff([(0x112, SHORT, 1, 0x0606)])), STORED),
    ("PNG eXIf after the image data", png_with_chunks(after=[chunk(b"eXIf", TURN)]), STORED),
    ("PNG eXIf with a JPEG's Exif header", png_with_chunks(before=[chunk(b"eXIf", b"Exif\0\0" + TURN)]), STORED),
    ("PNG eXIf as a LONG", png_with_chunks(before=[chunk(b"eXIf", tiff([(0x112, LONG, 1, 6)]))]), STORED),
    ("PNG: two eXIf, 1 then 6", png_with_chunks(before=[chunk(b"eXIf", tiff([(0x112, SHORT, 1, 1)])),
                                                        chunk(b"eXIf", TURN)]), STORED),
    ("PNG eXIf before the image data", png_with_chunks(before=[chunk(b"eXIf", TURN)]), UPRIGHT),
]


@pytest.mark.parametrize("case,data,size", AS_BROWSERS_READ_IT, ids=[c[0] for c in AS_BROWSERS_READ_IT])
def test_the_orientation_is_read_from_the_exif_as_browsers_read_it(case, data, size):
    assert decode_image(data, exif_formats=["JPEG", "PNG"]).size == size, case


def _entries(spec):
    """Orientation entries from a spec like '1,6', 'long6', 'two' (a SHORT of count 2) or 'x'
    (another tag between them)."""
    out = []
    for item in spec.split(","):
        if item == "x":
            out.append((0x100, SHORT, 1, 4))
        elif item == "two":
            out.append((0x112, SHORT, 2, struct.pack(">HH", 1, 1)))
        elif item.startswith("long"):
            out.append((0x112, LONG, 1, int(item[4:])))
        else:
            out.append((0x112, SHORT, 1, int(item)))
    return out


# Several orientation entries in one directory, as headless Chromium 156 and Firefox ESR 153
# paint a 4x2 JPEG of them (measured 2026-12-04: naturalWidth x naturalHeight; 6 and 8 turn).
SEVERAL_ENTRIES = [  # (entries, Chromium turns it, Firefox turns it)
    ("1,6", False, True), ("6,1", True, False), ("9,6", True, False), ("6,9", True, True),
    ("6,0", True, True), ("0,6", True, False), ("long6,6", True, False), ("6,long1", True, True),
    ("1,6,x,1", False, False), ("6,x,1", True, False), ("6,6", True, True), ("8,6", True, True),
    ("6,two", True, True),
]


@pytest.mark.parametrize("spec,chromium,firefox", SEVERAL_ENTRIES, ids=[c[0] for c in SEVERAL_ENTRIES])
def test_several_orientation_entries_are_read_as_each_browser_reads_them(spec, chromium, firefox):
    """By default the first valid entry (Chromium); with 'exif-last-entry' the last valid one
    before any invalid one (Firefox)."""
    data = jpeg_with_exif(tiff(_entries(spec)))
    assert (decode_image(data).size == UPRIGHT) is chromium
    assert (decode_image(data, display_rules={"exif-last-entry"}).size == UPRIGHT) is firefox
    assert (decode_image(data, display_rules=["exif-last-entry"], exif_formats=["PNG"]).size) == STORED


def apng_with_exif(frames=2, orientation=6):
    """An APNG of `frames` frames (an acTL announcing them, even one) with an eXIf chunk before
    its image data."""
    actl = chunk(b"acTL", struct.pack(">II", frames, 0))
    if frames == 1:  # Pillow writes no acTL for one frame: a one-frame APNG is made by hand
        fctl = chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, *STORED, 0, 0, 1, 10, 0, 0))
        return png_with_chunks(before=[chunk(b"eXIf", tiff([(0x112, SHORT, 1, orientation)])), actl, fctl])
    imgs = [Image.new("RGB", STORED, (40 * k, 200, 30 * k)) for k in range(frames)]
    for img in imgs:
        img.paste((20, 20, 220), (STORED[0] // 2, 0, *STORED))
    buf = io.BytesIO()
    imgs[0].save(buf, "PNG", save_all=True, append_images=imgs[1:], duration=100)
    data = buf.getvalue()
    at = data.index(b"IHDR") + 4 + 13 + 4
    return data[:at] + chunk(b"eXIf", tiff([(0x112, SHORT, 1, orientation)])) + data[at:]


@pytest.mark.parametrize("frames", [1, 2])
def test_an_apng_follows_pngs_rule_unless_the_browser_ignores_its_exif(frames):
    """Chromium 156 turns an APNG by its eXIf where it turns a PNG, Firefox 153 paints it as
    stored (apng-exif-ignored), even one whose acTL announces one frame (measured 2026-12-04);
    a still PNG is turned by both. A client that lists png without the rule (an older one)
    keeps the APNG turned, as before."""
    data = apng_with_exif(frames)
    firefox = {"apng-exif-ignored"}
    assert simclip.images.is_apng(data) and not simclip.images.is_apng(png_with_chunks())
    assert decode_image(data).size == UPRIGHT  # no rule: every format
    assert decode_image(data, exif_formats=["JPEG", "PNG"]).size == UPRIGHT  # Chromium
    assert decode_image(data, exif_formats=["JPEG", "PNG"], display_rules=firefox).size == STORED
    assert decode_image(data, exif_formats=["JPEG"]).size == STORED  # a browser that turns no PNG
    assert {f.size for f in decode_frames(data, exif_formats=["PNG"], display_rules=firefox)} == {STORED}
    assert {f.size for f in decode_frames(data, exif_formats=["PNG"])} == {UPRIGHT}
    still = png_with_chunks(before=[chunk(b"eXIf", TURN)])
    assert decode_image(still, exif_formats=["PNG"], display_rules=firefox).size == UPRIGHT


def test_a_pil_apng_is_told_by_its_animation():
    img = Image.open(io.BytesIO(apng_with_exif(2)))
    assert orient(img, ["PNG"], display_rules={"apng-exif-ignored"}).size == STORED
    assert orient(img, ["PNG"]).size == UPRIGHT


def test_a_huge_exif_block_is_read_in_one_pass_over_its_first_directory():
    """65,535 entries, each claiming megabytes of data: only the directory is read."""
    count, size = 65535, 4_000_000
    entries = struct.pack(">HHII", 0x9000, 1, size, 8) * (count - 1) + struct.pack(">HHIHH", 0x112, SHORT, 1, 6, 0)
    block = b"MM\0*\0\0\0\x08" + struct.pack(">H", count) + entries + b"\0\0\0\0" + bytes(size)
    img = Image.new("RGB", STORED)
    img.info["exif"] = block
    t0 = time.perf_counter()
    assert exif_orientation(img) == 6
    assert time.perf_counter() - t0 < 0.5


def test_orient_reads_the_exif_block_alone():
    img = Image.open(io.BytesIO(oriented("JPEG", orientation=8)))
    assert exif_orientation(img) == 8
    assert orient(img, ["JPEG"]).size == UPRIGHT
    assert orient(img, ["WEBP"]) is img


# ---------------------------------------------------------------------------------- colour

def _s15(v):
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz):
    return b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in xyz)


def _icc_profile(space, name, tags):
    """A minimal ICC v2 display profile of colour space `space` (b"RGB ", b"GRAY") named `name`:
    its description and D50 white point, then these (signature, data) tags."""
    desc = (b"desc\x00\x00\x00\x00" + struct.pack(">I", len(name)) + name
            + b"\x00" * 8 + b"\x00\x00\x00" + b"\x00" * 67)
    tags = [(b"desc", desc), (b"wtpt", _xyz_tag((0.9642, 1.0, 0.8249))), *tags]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\x00" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + b"\x00" * 4 + struct.pack(">I", 0x02100000)
              + b"mntr" + space + b"XYZ " + b"\x00" * 12 + b"acsp" + b"\x00" * 24
              + struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0) + _s15(0.8249))
    return header + b"\x00" * (128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def _curve_tag(gamma):
    return b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(gamma * 256)) + b"\x00\x00"


def rgb_profile(red, green, blue, gamma=2.2, padding=0):
    """A minimal ICC v2 display profile (matrix/TRC) with these D50 XYZ primaries, and
    `padding` bytes more in a private tag."""
    curve = _curve_tag(gamma)
    tags = [(b"rXYZ", _xyz_tag(red)), (b"gXYZ", _xyz_tag(green)), (b"bXYZ", _xyz_tag(blue)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\x00\x00\x00\x00none\x00\x00\x00\x00")]
    if padding:
        tags.append((b"zzzz", b"zzzz\x00\x00\x00\x00" + bytes(padding)))
    return _icc_profile(b"RGB ", b"simclip test profile\x00", tags)


SRGB_D50 = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
SWAPPED = rgb_profile(SRGB_D50[2], SRGB_D50[1], SRGB_D50[0])  # stored red is painted blue


def tagged(fmt, icc, colour=(255, 0, 0), mode="RGB", **save):
    buf = io.BytesIO()
    Image.new(mode, (32, 32), colour).save(buf, fmt, icc_profile=icc, **save)
    return buf.getvalue()


needs_lcms = pytest.mark.skipif(not features.check("littlecms2"), reason="Pillow without LittleCMS")


@needs_lcms
@pytest.mark.parametrize("fmt,save", [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True})])
def test_an_icc_profile_is_applied_as_the_browser_applies_it(fmt, save):
    """A profile whose red primary is sRGB's blue: the stored red pixels are painted blue."""
    shown = decode_image(tagged(fmt, SWAPPED, **save)).getpixel((16, 16))
    assert shown[2] > 200 and shown[0] < 60, shown


@needs_lcms
def test_an_srgb_profile_leaves_the_pixels_as_decoded():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    colour = (200, 120, 40)
    assert decode_image(tagged("PNG", srgb, colour)).getpixel((3, 3)) == colour
    img = Image.new("RGB", (4, 4), colour)
    img.info["icc_profile"] = srgb
    assert to_srgb(img) is img


@needs_lcms
def test_a_profile_that_does_not_parse_or_fit_is_ignored():
    colour = (200, 120, 40)
    assert decode_image(tagged("PNG", b"not a profile at all" * 8, colour)).getpixel((3, 3)) == colour
    grey = Image.new("L", (8, 8), 90)
    grey.info["icc_profile"] = SWAPPED  # an RGB profile on grey pixels: unusable
    assert to_srgb(grey) is grey


@needs_lcms
def test_transparency_survives_the_colour_conversion():
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 4, 8))
    img.info["icc_profile"] = SWAPPED
    out = to_srgb(img)
    assert out.mode == "RGBA" and out.getpixel((6, 4))[3] == 0 and out.getpixel((1, 4))[3] == 255
    assert out.getpixel((1, 4))[2] > 200


def grey_profile(gamma):
    """A minimal ICC v2 grey display profile with this gamma."""
    return _icc_profile(b"GRAY", b"simclip grey\x00", [(b"kTRC", _curve_tag(gamma)),
                                                      (b"cprt", b"text\x00\x00\x00\x00none\x00\x00\x00\x00")])


LINEAR_GREY = grey_profile(1.0)  # mid grey 128 is painted 188 (sRGB of linear 0.5)


@needs_lcms
@pytest.mark.parametrize("mode,value", [("L", 128), ("LA", (128, 255)), ("I;16", 32896)])
def test_a_grey_picture_of_any_depth_is_converted_by_its_grey_profile(mode, value):
    shown = decode_image(tagged("PNG", LINEAR_GREY, value, mode=mode)).getpixel((16, 16))
    assert all(abs(v - 188) <= 3 for v in shown), shown


@needs_lcms
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_profile_of_megabytes_is_applied_as_browsers_apply_it(fmt):
    """A 3 MB profile (a JPEG splits it over 46 APP2 segments; a PNG's iCCP inflates past
    Pillow's 1 MB limit on compressed chunks) is applied, not a reason to refuse the picture."""
    save = {"lossless": True} if fmt == "WEBP" else {}
    big = rgb_profile(SRGB_D50[2], SRGB_D50[1], SRGB_D50[0], padding=3_000_000)
    shown = decode_image(tagged(fmt, big, **save)).getpixel((16, 16))
    assert shown[2] > 200 and shown[0] < 60, shown


@pytest.mark.parametrize("kind", [b"zTXt", b"iTXt"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_png_with_megabytes_of_compressed_text_is_decoded_as_browsers_paint_it(kind, where):
    text = zlib.compress(b"a" * 2_000_000)
    body = b"Comment\x00\x00" + text if kind == b"zTXt" else b"Comment\x00\x01\x00\x00\x00" + text
    data = png_with_chunks(**{where: [chunk(kind, body)]})
    assert decode_image(data).getpixel((5, 10)) == (220, 20, 20)


@needs_lcms
def test_the_colour_conversion_runs_on_the_picture_scaled_down_to_the_output_size(monkeypatch):
    """A server's decode workers send frames of at most `max_output_pixels`: a tagged frame is
    scaled down before its (costly) conversion, with the colours it would have had anyway."""
    sizes = []
    real = simclip.images.to_srgb
    monkeypatch.setattr(simclip.images, "to_srgb", lambda img, *rules: sizes.append(img.size) or real(img, *rules))
    data = tagged("PNG", SWAPPED)  # 32x32
    shown = decode_picture(data, max_output_pixels=16 * 16)
    assert sizes == [(16, 16)] and shown.size == (16, 16)
    assert shown.getpixel((8, 8)) == decode_image(data).getpixel((16, 16))


def gamma_png(mode, value, file_gamma, *chunks):
    """A PNG of one `value` (RGB, converted to `mode`) with a gAMA chunk (`file_gamma`, as PNG
    stores it: x 100000)."""
    gama = chunk(b"gAMA", struct.pack(">I", file_gamma))
    img = Image.new("RGB", (32, 32), value)
    img = img.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else img.convert(mode)
    return png_with_chunks(img, before=[gama, *chunks])


@needs_lcms
@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "P", "RGBA"])
def test_a_png_gamma_is_applied_as_browsers_apply_it(mode):
    """gAMA 1.0 (linear samples), no profile: mid grey is painted 188 (Chromium 156 and
    Firefox 153 measured 188 and 186)."""
    shown = decode_image(gamma_png(mode, (128, 128, 128), 100000)).getpixel((16, 16))
    assert all(abs(v - 188) <= 3 for v in shown), shown


def chrm(white, red, green, blue):
    return chunk(b"cHRM", struct.pack(">8I", *(round(v * 100000) for xy in (white, red, green, blue) for v in xy)))


D65, SRGB_XY = (0.3127, 0.3290), ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))


@needs_lcms
@pytest.mark.parametrize("file_gamma,painted", [(45455, (12, 12, 221)), (100000, (79, 79, 239))])
def test_png_chromaticities_are_applied_with_the_gamma_as_browsers_apply_them(file_gamma, painted):
    """cHRM with red and blue swapped, beside a gAMA: stored red is painted blue (Chromium 156
    and Firefox 153 measured these colours); without a gAMA both ignore a cHRM."""
    swapped = chrm(D65, SRGB_XY[2], SRGB_XY[1], SRGB_XY[0])
    shown = decode_image(gamma_png("RGB", (220, 20, 20), file_gamma, swapped)).getpixel((16, 16))
    assert all(abs(a - b) <= 4 for a, b in zip(shown, painted)), shown
    alone = png_with_chunks(Image.new("RGB", (32, 32), (220, 20, 20)), before=[swapped])
    assert decode_image(alone).getpixel((16, 16)) == (220, 20, 20)
    unusable = chrm(D65, (0.64, 0.0), *SRGB_XY[1:])  # y = 0: no colour; the gamma alone applies
    assert decode_image(gamma_png("RGB", (128, 128, 128), 100000, unusable)).getpixel((16, 16))[0] > 180


@needs_lcms
def test_a_png_gamma_of_about_1_over_2_2_or_beside_an_srgb_chunk_or_a_profile_changes_nothing():
    """What Chromium 156 paints as stored: gAMA 0.45455 alone (sRGB's), gAMA with an sRGB
    chunk (Firefox 153 applies the gAMA there), gAMA with an ICC profile (the profile wins),
    and a gAMA of 0 or out of range."""
    grey = (128, 128, 128)
    srgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for data in (gamma_png("RGB", grey, 45455), gamma_png("RGB", grey, 100000, chunk(b"sRGB", b"\0")),
                 gamma_png("RGB", grey, 0), gamma_png("RGB", grey, 2**31 - 1)):
        assert decode_image(data).getpixel((16, 16)) == grey
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), grey).save(buf, "PNG", icc_profile=srgb_icc)
    with_profile = buf.getvalue()
    first = with_profile.index(b"IDAT") - 4
    data = with_profile[:first] + chunk(b"gAMA", struct.pack(">I", 100000)) + with_profile[first:]
    assert decode_image(data).getpixel((16, 16)) == grey


def test_a_cmyk_jpeg_is_converted_as_browsers_convert_it():
    """A CMYK JPEG (Adobe's inverted convention, what Photoshop writes and browsers assume),
    without a profile: pure magenta + yellow is red, cyan is cyan, full black is black."""
    for cmyk, rgb in (((0, 255, 255, 0), (255, 0, 0)), ((255, 0, 0, 0), (0, 255, 255)),
                      ((0, 0, 0, 255), (0, 0, 0)), ((0, 0, 0, 0), (255, 255, 255))):
        shown = decode_image(tagged("JPEG", None, cmyk, mode="CMYK", quality=95)).getpixel((16, 16))
        assert all(abs(a - b) <= 8 for a, b in zip(shown, rgb)), (cmyk, shown)


def _rgb(text):
    return tuple(int(v) for v in text.split(",")) if text else None


def _extension_pictures():
    """extension/background/orientation.js's test pictures: ({format: bytes}, {rule: (bytes,
    followed, otherwise)}): followed 'turned' or 'stored' and otherwise None for a size rule's
    picture, two RGB colours for a colour rule's."""
    import base64
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "extension/background/orientation.js").read_text()
    formats = {name: base64.b64decode(b64) for name, b64 in
               re.findall(r"^  (\w+): 'data:image/\w+;base64,([A-Za-z0-9+/=]+)'", source, re.M)}
    rules = {}
    for name, size, followed, otherwise, b64 in re.findall(
            r"'([\w-]+)': \{\s*(?:followed: '(\w+)', |followed: \[([\d, ]+)\], otherwise: \[([\d, ]+)\],\s*)"
            r"url: 'data:image/\w+;base64,([A-Za-z0-9+/=]+)'", source):
        rules[name] = (base64.b64decode(b64), size or _rgb(followed), _rgb(otherwise))
    return formats, rules


def test_the_extensions_test_pictures_are_stored_4x2_with_orientation_6():
    """extension/background/orientation.js decodes these in the browser: a format whose picture
    comes out 2x4 is one the browser turns. Each must really be a 4x2 picture in its format with
    EXIF orientation 6 (PNG: an eXIf chunk before the image data, where browsers read it)."""
    found, _ = _extension_pictures()
    assert set(found) == {"jpeg", "png", "webp"}
    for name, data in found.items():
        img = Image.open(io.BytesIO(data))
        assert (img.format, img.size, exif_orientation(img)) == (name.upper(), (4, 2), 6), name
        assert decode_image(data).size == (2, 4)
        assert decode_image(data, exif_formats=[name]).size == (2, 4)
        assert decode_image(data, exif_formats=[f for f in EXIF_ORIENTATION_FORMATS if f != name.upper()]).size \
            == (4, 2), name  # each picture tells its own format apart
    assert found["png"].index(b"eXIf") < found["png"].index(b"IDAT")


@needs_lcms
def test_the_extensions_display_rule_pictures_are_painted_apart_only_by_their_rule():
    """Each display rule's test picture in orientation.js: painted at its `followed` size
    (exif-last-entry turned, apng-exif-ignored stored), or its centre in its `followed`
    colour, only under its own rule, and the colours it names are those
    tests/display_pictures.py measured in the browsers."""
    _, rules = _extension_pictures()
    assert set(rules) == set(DISPLAY_RULES)
    sizes = {"turned": (2, 4), "stored": (4, 2)}
    assert {rule: rules[rule][1] for rule in ("exif-last-entry", "apng-exif-ignored")} == {
        "exif-last-entry": "turned", "apng-exif-ignored": "stored"}
    for rule, (data, followed, _) in rules.items():
        if isinstance(followed, str):
            other = sizes["stored" if followed == "turned" else "turned"]
            assert decode_image(data, display_rules=[rule]).size == sizes[followed], rule
            assert decode_image(data, display_rules=[r for r in DISPLAY_RULES if r != rule]).size == other, rule
            assert decode_image(data).size == other, rule
    for rule, (data, followed, otherwise) in rules.items():
        if isinstance(followed, str):
            continue
        assert (followed, otherwise) == FOLLOWED_OTHERWISE[rule], rule
        others = [r for r in DISPLAY_RULES if r != rule]
        assert close(decode_image(data, display_rules=[rule]).getpixel((2, 2)), followed), rule
        assert close(decode_image(data, display_rules=others).getpixel((2, 2)), otherwise), rule
        assert close(decode_image(data).getpixel((2, 2)), otherwise), rule  # the defaults


def test_the_result_cache_identity_follows_the_decoding_rules(tiny_predictor, monkeypatch):
    """A result a server cached before a change of what decoding paints (orientation, colour)
    is another picture's: the predictor identity that keys the result cache names the rules."""
    import simclip.predictor

    before = tiny_predictor.identity
    monkeypatch.setattr(simclip.predictor, "DECODE_VERSION", simclip.predictor.DECODE_VERSION + 1)
    assert tiny_predictor.identity != before


@needs_lcms
@pytest.mark.parametrize("mode", ["P", "L", "RGBA", "RGB-key"])
def test_a_lab_profile_paints_every_kind_of_pixels_as_lab_under_its_rule(mode):
    """Chromium 156 paints an RGB, palette or grey picture tagged with a Lab profile as Lab
    pixels (grey as L, neutral), keeping alpha and a colour key (measured 2026-12-04: (0, 144, 0)
    for stored (128, 60, 200), 119 for grey 128); Firefox ignores the profile (the default)."""
    from PIL import ImageCms as Cms

    lab = Cms.ImageCmsProfile(Cms.createProfile("LAB")).tobytes()
    colour = (128, 60, 200)
    img, save, painted = Image.new("RGB", (32, 32), colour), {}, (0, 144, 0)
    if mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    elif mode == "L":
        img, colour, painted = Image.new("L", (32, 32), 128), (128, 128, 128), (119, 119, 119)
    elif mode == "RGBA":
        img = img.convert("RGBA")
    else:
        img.paste((10, 20, 30), (0, 0, 16, 32))
        save = {"transparency": (10, 20, 30)}
    buf = io.BytesIO()
    img.save(buf, "PNG", icc_profile=lab, **save)
    shown = decode_image(buf.getvalue(), display_rules=["lab-profile-on-rgb"])
    assert close(shown.getpixel((24, 16)), painted, 2), shown.getpixel((24, 16))
    assert close(decode_image(buf.getvalue()).getpixel((24, 16)), colour, 2)
    if mode == "RGB-key":  # the keyed half stays transparent: composited, not painted as Lab
        assert shown.getpixel((4, 16)) == decode_image(buf.getvalue()).getpixel((4, 16))


@needs_lcms
def test_a_colour_key_survives_the_profile_conversion():
    """An RGB PNG with a tRNS colour key and a profile: the keyed pixels are transparent in
    Chromium 156 and Firefox 153 (keyed on the stored values); they were painted through the
    profile as opaque colour."""
    from display_pictures import swapped_rgb_profile

    img = Image.new("RGB", (32, 32), (220, 20, 20))
    img.paste((10, 20, 30), (0, 0, 16, 32))
    buf = io.BytesIO()
    img.save(buf, "PNG", icc_profile=swapped_rgb_profile(), transparency=(10, 20, 30))
    shown = decode_image(buf.getvalue())
    assert close(shown.getpixel((24, 16)), (12, 12, 221), 4)  # the profile applied
    plain = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    plain.paste((12, 12, 221, 255), (16, 0, 32, 32))
    assert shown.getpixel((4, 16)) == decode_image(plain).getpixel((4, 16))  # as transparent
