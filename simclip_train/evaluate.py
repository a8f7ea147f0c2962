"""`simclip evaluate CHECKPOINT DATASET --split test`: the paper's metrics, as JSON and Markdown.

Per task of the dataset that the head has: macro-F1, accuracy, balanced accuracy, AUROC
(argmax decisions; for a multilabel task, 0.5 per label) and weighted-F1 (the official MAMI
sub-task B metric). Per warning category: the same at the checkpoint's threshold (tuned on
validation when the head was trained).

`--seeds N` measures the spread over training seeds: it retrains the checkpoint's recipe
(datasets, hyper-parameters, backbone, text source, all read from its metadata) with seeds
s, s+1, ..., s+N-1, where s is the checkpoint's own seed (so the first run reproduces the
checkpoint), evaluates each head on the split, and reports mean ± sample standard deviation
(n - 1 in the denominator; 0 for N = 1).
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from simclip import SimCLIPError, load_checkpoint, read_metadata
from simclip.backbone import get_backbone_id

from .config import TEXT_SOURCES, EmbedConfig, TrainConfig
from .datasets import get_dataset
from .embed import EmbeddingCache
from .metrics import binary_metrics
from .train import (
    build_targets,
    clean_floats,
    predict_probs,
    task_metrics,
    train,
    warning_truth_and_scores,
)

COLUMNS = [("macro_f1", "macro-F1"), ("accuracy", "accuracy"),
           ("balanced_accuracy", "balanced acc."), ("auroc", "AUROC"),
           ("weighted_f1", "weighted-F1")]


def evaluate_head(head, meta, examples, cache):
    """{'tasks': {task: metrics}, 'warnings': {category/task: metrics}} of a head on a split."""
    config = head.config
    spec_tasks = {t.name for t in get_dataset(cache["dataset"]).tasks}
    tasks = [t for t in config.tasks if t.name in spec_tasks]
    if not tasks:
        raise ValueError(f"the checkpoint has no task of dataset {cache['dataset']!r} "
                         f"(its tasks: {[t.name for t in config.tasks]})")
    targets = build_targets(examples, tasks)
    probs = predict_probs(head, cache["image"], cache["text"])
    out = {"tasks": task_metrics(probs, targets, tasks), "warnings": {}}
    by_name = {t.name: t for t in tasks}
    for w in meta["warnings"]:
        if w["task"] in by_name:
            truth, score = warning_truth_and_scores(probs, targets, by_name[w["task"]], w)
            out["warnings"][f"{w['category']}/{w['task']}"] = binary_metrics(truth, score,
                                                                              w["threshold"])
    return out


def aggregate(runs):
    """Mean and sample sd of every metric over runs: {group: {row: {metric: [mean, sd]}}}."""
    out = {}
    for group in ("tasks", "warnings"):
        out[group] = {}
        for row in runs[0][group]:
            out[group][row] = {}
            for key in runs[0][group][row]:
                values = [r[group][row][key] for r in runs if row in r[group]]
                values = [v for v in values if v is not None and not math.isnan(v)]
                if not values:
                    out[group][row][key] = [float("nan"), float("nan")]
                    continue
                sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                out[group][row][key] = [float(np.mean(values)), sd]
    return out


def _cell(value, percent=True):
    if isinstance(value, list):
        mean, sd = value
        if mean is None or math.isnan(mean):
            return "n/a"
        return f"{100 * mean:.1f} ± {100 * sd:.1f}" if percent else f"{mean:.3f} ± {sd:.3f}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.1f}"


def markdown_table(result):
    """The metrics as a Markdown table (percentages)."""
    lines = ["| task | n | " + " | ".join(name for _, name in COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    for group, prefix in (("tasks", ""), ("warnings", "warning ")):
        for row, m in result["metrics"][group].items():
            n = m["n"][0] if isinstance(m["n"], list) else m["n"]
            label = prefix + row
            if group == "warnings":
                t = m["threshold"][0] if isinstance(m["threshold"], list) else m["threshold"]
                label += f" (threshold {t:.3f})"
            cells = [_cell(m.get(key)) if key in m else "" for key, _ in COLUMNS]
            lines.append(f"| {label} | {int(n)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_config_from_metadata(meta, embed, seed):
    """The TrainConfig that repeats a checkpoint's recipe with another seed, on `embed`."""
    tr, hc = meta["training"], meta["head_config"]
    return TrainConfig(
        datasets=[d["name"] for d in tr["datasets"]], embed=embed, seed=seed,
        epochs=tr["epochs"], patience=tr["patience"], train_batch_size=tr["batch_size"],
        lr=tr["lr"], weight_decay=tr["weight_decay"], warmup=tr["warmup"],
        proj_dim=hc["proj_dim"], hidden_dim=hc["hidden_dim"], depth=hc["depth"],
        dropout=hc["dropout"])


def parse_args(argv):
    """Arguments of `simclip evaluate`."""
    p = argparse.ArgumentParser(prog="simclip evaluate",
                                description="evaluate a trained head on a dataset split")
    p.add_argument("checkpoint", help="trained head (.safetensors)")
    p.add_argument("dataset", help="NAME[:setting], e.g. harmeme-c or mami:b")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--data-dir", required=True, help="folder holding one sub-folder per dataset")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache (default: DATA_DIR/embeddings)")
    p.add_argument("--text", choices=TEXT_SOURCES, default=None,
                   help="caption source (default: the one the head was trained with)")
    p.add_argument("--seeds", type=int, default=1,
                   help="retrain the checkpoint's recipe with N seeds and report mean ± sd")
    p.add_argument("--json", default=None, help="also write the JSON result to this file")
    p.add_argument("--model", default=None, help="backbone (default: the checkpoint's)")
    p.add_argument("--pretrained", default=None, help="weights (default: the checkpoint's)")
    p.add_argument("--device", default=None, help="device for the encoders")
    p.add_argument("--ocr", default=None, help="OCR engine for --text ocr "
                                               "(default: the one the head was trained with)")
    p.add_argument("--batch-size", type=int, default=EmbedConfig.batch_size,
                   help="encoder batch size")
    p.add_argument("--weights-cache-dir", default=None, help="where CLIP weights are cached")
    return p.parse_args(argv)


def run(args, progress=True):
    """Evaluate as `args` says; return the result dict (see module docstring)."""
    meta = read_metadata(args.checkpoint)
    bb = meta["backbone"]
    trained_text = meta.get("training", {}).get("text", "dataset")
    text = args.text or ("dataset" if trained_text == "dataset" else "ocr")
    ocr = args.ocr or (trained_text.removeprefix("ocr-") if trained_text != "dataset" else "auto")
    model = args.model or bb["model"]
    pretrained = args.pretrained or bb["pretrained"]
    backbone_id = get_backbone_id(model, pretrained)
    if backbone_id != f"{bb['model']}/{bb['pretrained']}":
        raise ValueError(f"{args.checkpoint} was trained on {bb['model']}/{bb['pretrained']}, "
                         f"not {backbone_id}; pass its --model/--pretrained")
    seeds = max(1, args.seeds)
    base_seed = int(meta.get("training", {}).get("seed", 0))
    embed = EmbedConfig(data_dir=args.data_dir, cache_dir=args.cache_dir, text=text,
                        augment=meta.get("training", {}).get("augment", 0),
                        batch_size=args.batch_size, model=model, pretrained=pretrained,
                        device=args.device, ocr=ocr, weights_cache_dir=args.weights_cache_dir)
    cache = EmbeddingCache.from_config(embed, seed=base_seed, progress=progress)
    examples, c = cache.get(args.dataset, args.split)
    c["dataset"] = args.dataset
    runs = []
    if seeds == 1:
        head, meta = load_checkpoint(args.checkpoint)
        runs.append(evaluate_head(head, meta, examples, c))
    else:
        for k in range(seeds):
            cfg = train_config_from_metadata(meta, embed, base_seed + k)
            head, run_meta = train(cfg, cache=cache, progress=progress)
            runs.append(evaluate_head(head, run_meta, examples, c))
    metrics = runs[0] if seeds == 1 else aggregate(runs)
    return clean_floats({
        "checkpoint": str(args.checkpoint), "dataset": get_dataset(args.dataset).key,
        "split": args.split, "n": len(examples), "backbone": backbone_id,
        "text": cache.text_source, "seeds": [base_seed + k for k in range(seeds)],
        "aggregate": "mean ± sample sd over seeds" if seeds > 1 else None,
        "metrics": metrics, "runs": runs if seeds > 1 else None,
    })


def main(argv=None):
    """`simclip evaluate CHECKPOINT DATASET`: print a Markdown table, then the JSON result."""
    args = parse_args(argv)
    try:
        result = run(args)
    except (SimCLIPError, ValueError, RuntimeError, OSError) as e:
        print(f"simclip evaluate: {e}", file=sys.stderr)
        return 2
    seeds = f", {len(result['seeds'])} seeds (mean ± sd)" if len(result["seeds"]) > 1 else ""
    print(f"{result['dataset']} {result['split']} (n={result['n']}, {result['backbone']}, "
          f"text={result['text']}{seeds})\n")
    print(markdown_table(result))
    print()
    print(json.dumps(result, sort_keys=True))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0
