"""Benchmark scripts: `python -m bench.<name>` or `python bench/<name>.py` from the repository
root (docs/bench.md); the options and inputs several of them share."""

import sys
from pathlib import Path

from simclip import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "harmeme-c-val" / "images"  # real memes
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif"}


def add_backbone_arguments(parser, ocr_help):
    """Add --device, --model, --pretrained and --ocr: random weights, on the tiny backbone on a
    CPU and the paper's on CUDA (`get_model`); `ocr_help` says what --ocr takes."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the encoders)")
    parser.add_argument("--model", help=f"default: simclip-tiny on CPU, {DEFAULT_MODEL} on CUDA")
    parser.add_argument("--pretrained", default="none", help="default: random weights")
    parser.add_argument("--ocr", default="auto", help=ocr_help)


def get_model(args):
    """The architecture `add_backbone_arguments`' options name: --model, else --device's default."""
    return args.model or (DEFAULT_MODEL if args.device.startswith("cuda") else "simclip-tiny")


def list_images(folder):
    """The picture files of `folder`, sorted by name; exits, naming the folder, when it has none."""
    files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        sys.exit(f"no images in {folder}")
    return files
