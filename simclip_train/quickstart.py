"""`simclip quickstart`: from nothing to a trained harmful-meme head in one command.

Fetches Harm-C (public), embeds it with the backbone (the paper's ViT-L/14-336 by default),
trains the binary harmful head with the paper's protocol, writes the checkpoint, calibrates the
zero-shot scores on the validation memes' OCR text (`simclip calibrate`, used when the server runs
without a head) and prints the `simclip-server` line that serves the head. Each step reuses what
an earlier run left (a complete download, a valid embedding cache), so running it again is cheap.

Its head is meant for the server, so two defaults differ from `simclip train`'s:
    * `--threshold-text ocr`: the warning threshold is tuned on validation embeddings of our
      OCR text, which is what the server sees (the head still trains on the transcriptions,
      as the paper; `--text ocr` trains on OCR text too, at the cost of OCR over every meme);
    * `--augment`: on a CUDA GPU 8 RandAugment views (config.RECOMMENDED_AUGMENT, the authors'
      recipe) per training image, so the head sees varied images as the authors' did; on a CPU
      none (the embedding step is 9x shorter: hours less with ViT-L-14-336 on a laptop), as
      `simclip setup` does on a CPU. `--augment N` chooses.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from simclip import ClassifierOptions, SimCLIPError, get_user_cache_dir, random_weights_warning
from simclip.zeroshot import get_calibration_path

from .calibrate import calibrate
from .config import RECOMMENDED_AUGMENT, TEXT_SOURCES, EmbedConfig, train_config_from_args
from .download import fetch_harmeme_c
from .embed import EmbeddingCache
from .train import add_train_args, get_serve_command
from .train import run as run_train

DATASET = "harmeme-c:binary"  # the binary harmful head: the server's "Harmful" warning


def parse_args(argv):
    """Arguments of `simclip quickstart`."""
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
    p.add_argument("--text", choices=TEXT_SOURCES, default=EmbedConfig.text,
                   help="caption source for training (default: the dataset's transcription)")
    p.add_argument("--batch-size", type=int, default=EmbedConfig.batch_size,
                   help="encoder batch size")
    p.add_argument("--augment", type=int, default=None,
                   help=f"RandAugment views cached per training image (default "
                        f"{RECOMMENDED_AUGMENT} on a CUDA GPU, 0 on a CPU: 9x faster)")
    add_train_args(p)
    ClassifierOptions.add_arguments(p, calibration=False)
    p.set_defaults(threshold_text="ocr")  # the server sees OCR text: tune the threshold on it
    args = p.parse_args(argv)
    if args.augment is None:
        from simclip import get_device

        args.augment = RECOMMENDED_AUGMENT if get_device(args.device).type == "cuda" else 0
    args.out = args.out or str(Path(args.data_dir) / "checkpoints" /
                               "harmeme-c-binary.safetensors")
    return args


def main(argv=None):
    """Fetch, embed, train, and print how to serve the checkpoint."""
    args = parse_args(argv)
    try:
        print(f"[1/4] fetching Harm-C into {args.data_dir}", file=sys.stderr)
        fetch_harmeme_c(args.data_dir, base_url=args.base_url)
        print(f"[2/4] embedding and training the binary harmful head ({DATASET})", file=sys.stderr)
        cfg = train_config_from_args(args, datasets=[DATASET])
        path, meta = run_train(cfg, args.out)
        print("[3/4] calibrating the zero-shot scores on the validation memes' OCR text",
              file=sys.stderr)
        ocr_cache = EmbeddingCache.from_config(replace(cfg.embed, text="ocr", augment=0))
        calibration = calibrate(ocr_cache, [DATASET], "val")
        calibration_path = calibration.save(get_calibration_path(calibration.backbone))
    except (SimCLIPError, ValueError, RuntimeError, OSError) as e:
        print(f"simclip quickstart: {e}", file=sys.stderr)
        return 1
    val = meta["metrics"]["val"]
    print(f"[4/4] wrote {path} (validation mean macro-F1 {val['mean_macro_f1']:.3f}; threshold "
          f"tuned on {meta['training']['threshold_text']} text) and the zero-shot calibration "
          f"{calibration_path}", file=sys.stderr)
    warning = random_weights_warning(calibration.backbone)
    if warning:
        print(warning, file=sys.stderr)
    print(get_serve_command(path, meta))
    return 0
