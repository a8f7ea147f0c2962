"""`simclip quickstart`: from nothing to a trained harmful-meme head in one command.

Fetches Harm-C (public), embeds it with the backbone (the paper's ViT-L/14-336 by default),
trains the binary harmful head with the paper's protocol, writes the checkpoint and prints the
`simclip-server` line that serves it. Each step reuses what an earlier run left (a complete
download, a valid embedding cache), so running it again is cheap.
"""

import argparse
import sys
from pathlib import Path

from .datasets import fetch_harmeme_c
from .errors import SimCLIPError
from .fileutil import get_user_cache_dir
from .train import add_train_args
from .train import run as run_train


def parse_args(argv):
    """Arguments of `simclip quickstart`."""
    from .cli import add_backbone_args

    p = argparse.ArgumentParser(prog="simclip quickstart",
                                description="fetch Harm-C, train the harmful head, print the "
                                            "server line")
    default_data_dir = get_user_cache_dir() / "data"
    p.add_argument("--data-dir", default=str(default_data_dir),
                   help=f"where datasets and embeddings go (default {default_data_dir})")
    p.add_argument("--out", default=None,
                   help="checkpoint to write (default DATA_DIR/checkpoints/harmeme-c-binary."
                        "safetensors)")
    p.add_argument("--base-url", default=None, help="Harm-C mirror (default: GitHub)")
    p.add_argument("--text", choices=("dataset", "ocr"), default="dataset",
                   help="caption source for training (default: the dataset's transcription)")
    p.add_argument("--batch-size", type=int, default=32, help="encoder batch size")
    add_train_args(p)
    add_backbone_args(p)
    args = p.parse_args(argv)
    args.out = args.out or str(Path(args.data_dir) / "checkpoints" /
                               "harmeme-c-binary.safetensors")
    return args


def main(argv=None):
    """Fetch, embed, train, and print how to serve the checkpoint."""
    args = parse_args(argv)
    try:
        print(f"[1/3] fetching Harm-C into {args.data_dir}", file=sys.stderr)
        fetch_harmeme_c(args.data_dir, base_url=args.base_url)
        print("[2/3] embedding and training the binary harmful head", file=sys.stderr)
        train_args = argparse.Namespace(**vars(args), dataset=["harmeme-c:binary"],
                                        cache_dir=None, augment=0, shard_size=256)
        path, meta = run_train(train_args)
    except (SimCLIPError, ValueError, RuntimeError, OSError) as e:
        print(f"simclip quickstart: {e}", file=sys.stderr)
        return 1
    val = meta["metrics"]["val"]
    print(f"[3/3] wrote {path} (validation mean macro-F1 {val['mean_macro_f1']:.3f})",
          file=sys.stderr)
    extra = ""
    if args.model or args.pretrained:
        extra = "".join(f" --{k} {v}" for k, v in (("model", args.model),
                                                  ("pretrained", args.pretrained)) if v)
    print(f"simclip-server --checkpoint {path}{extra}")
    return 0
