"""Synthetic memes for tests and demos: a caption over a varied background, labelled by its words.

The label depends only on the caption (insults => harmful, neutral sentences => not harmful);
backgrounds are drawn independently of the label, so a model that learns the task has to read
the caption, through OCR and the text tower, exactly as on a real meme.
`make_synthetic_dataset` writes the HarMeme layout (images/ + {train,val,test}.jsonl), so every
tool that reads Harm-C reads it too.
"""

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SUBJECTS = ["my neighbour", "the new teacher", "your cousin", "that singer", "our mayor",
            "the bus driver", "his brother", "the team captain"]
INSULTS = ["a stupid idiot", "a worthless loser", "an ugly moron", "a disgusting pig",
           "a pathetic clown", "a dumb fool"]
NEUTRAL = ["likes green tea", "went to the park", "reads books at night", "plays the piano",
           "bakes fresh bread", "walks the dog daily"]
HARMFUL, NOT_HARMFUL = "harmful", "not harmful"
# A renderer caption is drawn in one of these fonts (bold sans faces read best by OCR).
FONT_CANDIDATES = ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf")


def get_font(size):
    """A bold TrueType font if one is installed, else Pillow's built-in scalable font."""
    for name in FONT_CANDIDATES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _background(rng, size):
    """A random gradient with blobs: colours and layout vary with the seed, never with the label."""
    w, h = size
    c0 = tuple(rng.randrange(256) for _ in range(3))
    c1 = tuple(rng.randrange(256) for _ in range(3))
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / max(h - 1, 1)
        draw.line([(0, y), (w, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(c0, c1)))
    for _ in range(rng.randrange(3, 9)):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(8, max(w, h) // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        else:
            draw.rectangle([x - r, y - r // 2, x + r, y + r // 2], fill=colour)
    return img.filter(ImageFilter.GaussianBlur(2))


def _wrap(text, font, max_width, draw):
    """Greedy word wrap to `max_width` pixels."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > max_width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def render_meme(caption, background_seed=0, size=(480, 360)):
    """Draw `caption` in dark bold letters on a light band over a random background.

    Args:
        caption: the text; wrapped to the image width.
        background_seed: seeds the background (colours, blobs, band position).
        size: (width, height) in pixels.

    Returns:
        An RGB PIL image.
    """
    rng = random.Random(background_seed)
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    w, h = size
    font = get_font(max(14, h // 11))
    lines = _wrap(caption.upper(), font, w - 40, draw)
    line_h = font.size + font.size // 3
    band_h = line_h * len(lines) + 16
    top = rng.choice([8, (h - band_h) // 2, h - band_h - 8])
    draw.rectangle([10, top, w - 10, top + band_h], fill=(250, 250, 245))
    for i, line in enumerate(lines):
        tw = draw.textlength(line, font=font)
        draw.text(((w - tw) / 2, top + 8 + i * line_h), line, font=font, fill=(15, 15, 15))
    return img


def make_caption(rng, harmful):
    """A random caption: a subject and two insults (harmful) or two neutral phrases."""
    a, b = rng.sample(INSULTS if harmful else NEUTRAL, 2)
    return f"{rng.choice(SUBJECTS)} is {a} and {b}" if harmful else \
        f"{rng.choice(SUBJECTS)} {a} and {b}"


def make_synthetic_dataset(root, n_train=64, n_val=24, n_test=32, seed=0, size=(480, 360)):
    """Write a HarMeme-format dataset of rendered memes under `root`.

    Layout: `root/images/synth_<i>.png` and `root/{train,val,test}.jsonl`, one object a line
    with `id`, `image`, `labels` (["not harmful"] or ["very harmful", "individual"]) and `text`
    (the caption, as a dataset transcription). Each split is half harmful, half not.

    Returns:
        `root` as a Path.
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    index = 0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        rows = []
        for k in range(n):
            harmful = k % 2 == 0
            caption = make_caption(rng, harmful)
            name = f"synth_{index:05d}.png"
            render_meme(caption, background_seed=rng.randrange(2**31), size=size).save(
                root / "images" / name)
            labels = ["very harmful", "individual"] if harmful else [NOT_HARMFUL]
            rows.append({"id": f"synth_{index:05d}", "image": name, "labels": labels,
                         "text": caption})
            index += 1
        rng.shuffle(rows)
        with open(root / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    return root
