"""How much of a long meme reaches CLIP: centre crop vs letterbox vs square tiles.

    python -m bench.aspect_bench [--memes DIR] [--model simclip-tiny --pretrained none]

Tall stacked memes (3, 5 and 8 real memes at 800 px wide, and one 800x6400 stack) and wide
panoramas (3 and 5 memes side by side, 400 px high) are built from the real HarMeme memes.
For each CLIP view it prints:

- rows: the fraction of the long side that reaches the encoder input;
- scale: encoder pixels per source pixel at the default backbone's 336 px input (--input-size),
  i.e. 336 / the side that is resized to 336; captions shrink by this;
- seen: the fraction of the constituent memes of which at least half reaches the encoder;
- meme px: a constituent meme's height at the encoder, in pixels (its captions are ~1/8 of it);
- cos: cosine similarity between the stack's embedding (for tiles: the best tile, or the
  mean of the tiles' embeddings) and each constituent meme's own embedding, mean and minimum
  over constituents. With the default random-weight tiny backbone this measures how much of a
  constituent's pixels the encoder input carries, not meaning; pass real weights to measure
  meaning (`--model ViT-L-14-336 --pretrained openai`);
- inputs: encoder inputs per picture (the cost).

The last lines count how many of the real memes are long enough to be tiled at all.
"""

import argparse
import statistics
from pathlib import Path

import torch
from PIL import Image

from simclip import load_backbone
from simclip.constants import TILE_MIN_ASPECT
from simclip.predictor import split_tiles

DEFAULT_MEMES = Path(__file__).resolve().parents[2] / "shared" / "data" / "harmeme-c-val" / "images"


def build_stack(memes, side, vertical):
    """(stacked image, [(start, end) of each meme along the long side]) at `side` px across."""
    if vertical:
        parts = [m.resize((side, max(1, round(m.height * side / m.width)))) for m in memes]
        size = (side, sum(p.height for p in parts))
    else:
        parts = [m.resize((max(1, round(m.width * side / m.height)), side)) for m in memes]
        size = (sum(p.width for p in parts), side)
    out, spans, pos = Image.new("RGB", size), [], 0
    for p in parts:
        out.paste(p, (0, pos) if vertical else (pos, 0))
        length = p.height if vertical else p.width
        spans.append((pos, pos + length))
        pos += length
    return out, parts, spans


def letterbox(image):
    side = max(image.size)
    out = Image.new("RGB", (side, side), (0, 0, 0))
    out.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return out


def kept_span(long_side, short_side, view):
    """(start, end) of the long side that reaches the encoder, and pixels per source pixel."""
    if view == "centre crop":
        start = (long_side - short_side) // 2
        return [(start, start + short_side)], 1 / short_side
    if view == "letterbox":
        return [(0, long_side)], 1 / long_side
    n = len(split_tiles(Image.new("RGB", (short_side, long_side))))
    side = max(short_side, -(-long_side // n)) if n > 1 else short_side
    if n == 1:
        start = (long_side - short_side) // 2
        return [(start, start + short_side)], 1 / short_side
    offsets = [round(i * (long_side - side) / (n - 1)) for i in range(n)]
    return [(o, o + side) for o in offsets], 1 / side


def covered(span, kept):
    a, b = span
    return sum(max(0, min(b, kb) - max(a, ka)) for ka, kb in kept) / (b - a)


def measure(backbone, image, parts, spans, vertical, size):
    long_side, short_side = (image.height, image.width) if vertical else (image.width, image.height)
    own = backbone.encode_images(parts)  # (M, D): each constituent alone
    rows = {}
    views = {"centre crop": [image], "letterbox": [letterbox(image)], "tiles": split_tiles(image)}
    for name, inputs in views.items():
        kept, per_px = kept_span(long_side, short_side, name)
        union = torch.zeros(long_side, dtype=torch.bool)
        for a, b in kept:
            union[a:b] = True
        seen = [min(1.0, covered(s, kept)) >= 0.5 for s in spans]
        emb = backbone.encode_images(inputs)  # (V, D)
        sims = own @ emb.T  # (M, V)
        best = sims.max(1).values
        row = {"rows": union.float().mean().item(), "scale": size * per_px,
               "seen": sum(seen) / len(seen),
               "meme px": statistics.mean((b - a) * size * per_px for a, b in spans),
               "cos mean": best.mean().item(), "cos min": best.min().item(),
               "inputs": len(inputs)}
        rows[name] = row
        if name == "tiles":
            mean = torch.nn.functional.normalize(emb.mean(0), dim=0)
            s = own @ mean
            rows["tiles (mean emb)"] = dict(row, **{"cos mean": s.mean().item(),
                                                    "cos min": s.min().item()})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memes", type=Path, default=DEFAULT_MEMES)
    parser.add_argument("--model", default="simclip-tiny")
    parser.add_argument("--pretrained", default="none")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input-size", type=int, default=336,
                        help="the encoder input side for rows/scale/meme px (ViT-L-14-336: 336)")
    args = parser.parse_args(argv)
    paths = sorted(args.memes.glob("*.png"))
    memes = [Image.open(p).convert("RGB") for p in paths]
    backbone = load_backbone(args.model, args.pretrained, device=args.device)
    cases = [(f"tall {n} memes", memes[i * 8:i * 8 + n], 800, True)
             for i, n in enumerate((3, 5, 8))]
    cases += [(f"wide {n} memes", memes[40 + i * 8:40 + i * 8 + n], 400, False)
              for i, n in enumerate((3, 5))]
    print(f"cos: backbone {backbone.info.id} ({backbone.image_size} px input); "
          f"scale and meme px at a {args.input_size} px input")
    header = ("case", "view", "size", "rows", "scale", "seen", "meme px", "cos mean", "cos min",
              "inputs")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, group, side, vertical in cases:
        image, parts, spans = build_stack(group, side, vertical)
        if name == "tall 8 memes":  # the 800x6400 example: 8 memes of 800x800
            parts = [m.resize((800, 800)) for m in group]
            image, parts, spans = build_stack(parts, 800, True)
        for view, r in measure(backbone, image, parts, spans, vertical, args.input_size).items():
            print(f"| {name} | {view} | {image.width}x{image.height} | {r['rows']:.3f} | "
                  f"{r['scale']:.3f} | {r['seen']:.2f} | {r['meme px']:.0f} | "
                  f"{r['cos mean']:.3f} | {r['cos min']:.3f} | {r['inputs']} |")
    long = [m for m in memes if max(m.size) > TILE_MIN_ASPECT * min(m.size)]
    inputs = sum(len(split_tiles(m)) for m in memes)
    print(f"\n{len(long)} of {len(memes)} real memes are over {TILE_MIN_ASPECT}:1 and get tiles; "
          f"encoder inputs for all {len(memes)}: {inputs} ({inputs / len(memes):.3f} per meme)")


if __name__ == "__main__":
    main()
