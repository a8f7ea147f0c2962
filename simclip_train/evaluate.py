"""`simclip evaluate CHECKPOINT DATASET --split test`: the paper's metrics, as JSON and Markdown.

Per task of the dataset setting: macro-F1, accuracy, balanced accuracy, AUROC (argmax
decisions; for a multilabel task, 0.5 per label), weighted-F1 (multiclass) and, for a multilabel
task, the official MAMI sub-task B score (`metrics.mami_subtask_b_f1`). Per warning category:
the same at the checkpoint's threshold (tuned on validation when the head was trained).
`paper_metrics` names, per primary task, the metric the papers report, and `aggregates` the
official combined scores (Memotion Task A/B/C).

Binary and 3-class HarMeme: a 3-class head (`harmfulness`) also gives the binary `harmful` task
(P(harmful) = P(somewhat) + P(very); `datasets.DERIVED_TASKS`), so evaluating it on
`harmeme-c:3class` reports both, and on `harmeme-c` (binary) reports the binary task. A binary
head cannot give three levels.

Every task of the dataset setting must come from the head: when the head has none of them,
or only some, evaluate stops with an error naming the missing ones; `--only-shared-tasks`
reports the shared ones and lists the others under `missing_tasks`.

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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from simclip import (
    ClassifierOptions,
    SimCLIPError,
    find_calibration,
    get_trained_backbone,
    load_checkpoint,
    random_weights_warning,
    read_metadata,
)
from simclip.backbone import get_backbone_id
from simclip.zeroshot import ZeroShotScorer

from .calibrate import collect
from .config import TEXT_SOURCES, EmbedConfig, TrainConfig
from .datasets import DERIVED_TASKS, check_dataset, get_dataset
from .embed import EmbeddingCache, describe_losses
from .metrics import binary_auroc, binary_metrics
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
           ("weighted_f1", "weighted-F1"), ("mami_b_f1", "MAMI-B F1")]


def merge_classes(probs, groups):
    """(N, G) probabilities of a derived task: per group, the sum of its source classes'."""
    return np.stack([probs[:, list(g)].sum(1) for g in groups], axis=1)


def derive_targets(source_targets, groups):
    """A derived task's class indices from its source task's (-1, missing, stays -1)."""
    index = {c: k for k, g in enumerate(groups) for c in g}
    return source_targets.clone().apply_(lambda c: index.get(c, -1))


def match_tasks(head_tasks, spec):
    """How the head gives each task of the dataset setting.

    Returns:
        (matched, missing): matched is [(dataset TaskSpec, source)] where source is None (the
        head has the task itself) or a DerivedTask; missing is [(task name, why)].
    """
    matched, missing = [], []
    for t in spec.tasks:
        own = head_tasks.get(t.name)
        derived = DERIVED_TASKS.get(t.name)
        if own is not None and (own.kind, list(own.labels)) == (t.kind, list(t.labels)):
            matched.append((t, None))
        elif derived is not None and derived.source in head_tasks:
            matched.append((t, derived))
        elif own is not None:
            missing.append((t.name, f"the head's {t.name!r} is {own.kind} {list(own.labels)}, "
                                    f"the dataset's {t.kind} {list(t.labels)}"))
        else:
            missing.append((t.name, "not in the head"))
    return matched, missing


def evaluate_head(head, meta, examples, cache, only_shared=False):
    """{'tasks': {task: metrics}, 'warnings': {category/task: metrics}, 'aggregates': {...},
    'missing_tasks': [...]} of a head on a split.

    Raises:
        ValueError: the head gives none of the dataset setting's tasks, or only some of them
            and `only_shared` is False (the message names the missing ones).
    """
    config = head.config
    spec = get_dataset(cache["dataset"])
    head_tasks = {t.name: t for t in config.tasks}
    matched, missing = match_tasks(head_tasks, spec)
    head_names = ", ".join(head_tasks)
    if not matched:
        raise ValueError(f"the checkpoint gives no task of dataset setting {spec.key!r} (it needs "
                         f"{', '.join(t.name for t in spec.tasks)}; the checkpoint has "
                         f"{head_names}); evaluate it on the setting it was trained for")
    if missing and not only_shared:
        raise ValueError(f"the checkpoint lacks task(s) of dataset setting {spec.key!r}: "
                         + "; ".join(f"{name} ({why})" for name, why in missing)
                         + f" (the checkpoint has {head_names}). Evaluate another setting, or "
                           "pass --only-shared-tasks to report the shared tasks only")
    head_probs = predict_probs(head, cache["image"], cache["text"])
    tasks, probs, targets = [], {}, {}
    for t, derived in matched:
        tasks.append(t)
        targets[t.name] = build_targets(examples, [t])[t.name]
        probs[t.name] = (head_probs[t.name] if derived is None
                         else merge_classes(head_probs[derived.source], derived.groups))
    for name in spec.report_tasks:  # e.g. binary harmful from a 3-class head
        derived = DERIVED_TASKS[name]
        if name in probs or derived.source not in head_tasks or derived.source not in targets:
            continue
        tasks.append(derived.task)
        targets[name] = derive_targets(targets[derived.source], derived.groups)
        probs[name] = merge_classes(head_probs[derived.source], derived.groups)
    out = {"tasks": task_metrics(probs, targets, tasks), "warnings": {}, "aggregates": {},
           "missing_tasks": [name for name, _ in missing]}
    own = {t.name: t for t, derived in matched if derived is None}
    for w in meta["warnings"]:
        if w["task"] in own:
            truth, score = warning_truth_and_scores(probs, targets, own[w["task"]], w)
            out["warnings"][f"{w['category']}/{w['task']}"] = binary_metrics(truth, score,
                                                                              w["threshold"])
    for name, (metric, parts) in spec.aggregates.items():
        if all(p in out["tasks"] for p in parts):
            out["aggregates"][name] = {metric: float(np.mean([out["tasks"][p][metric]
                                                              for p in parts])),
                                       "tasks": len(parts)}
    return out


def paper_metrics(spec, metrics):
    """{task or aggregate: {'metric', 'value'}}: the numbers the papers report."""
    out = {}
    for task, metric in spec.primary_metric.items():
        if task in metrics["tasks"] and metric in metrics["tasks"][task]:
            out[task] = {"metric": metric, "value": metrics["tasks"][task][metric]}
    for name, (metric, _) in spec.aggregates.items():
        if name in metrics.get("aggregates", {}):
            out[name] = {"metric": f"mean {metric}",
                         "value": metrics["aggregates"][name][metric]}
    return out


def aggregate(runs):
    """Mean and sample sd of every metric over runs: {group: {row: {metric: [mean, sd]}}}."""
    out = {"missing_tasks": runs[0].get("missing_tasks", [])}
    for group in ("tasks", "warnings", "aggregates"):
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
    for group, prefix in (("tasks", ""), ("warnings", "warning "), ("aggregates", "")):
        for row, m in result["metrics"].get(group, {}).items():
            label = prefix + row
            if group == "warnings":
                t = m["threshold"][0] if isinstance(m["threshold"], list) else m["threshold"]
                label += f" (threshold {t:.3f})"
            if group == "aggregates":
                n = ""
                label += " (mean of its tasks)"
            else:
                n = int(m["n"][0] if isinstance(m["n"], list) else m["n"])
            cells = [_cell(m.get(key)) if key in m else "" for key, _ in COLUMNS]
            lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_config_from_metadata(meta, embed, seed):
    """The TrainConfig that repeats a checkpoint's recipe with another seed, on `embed`."""
    tr, hc = meta["training"], meta["head_config"]
    return TrainConfig(
        datasets=[d["name"] for d in tr["datasets"]], embed=embed, seed=seed,
        epochs=tr["epochs"], patience=tr["patience"], train_batch_size=tr["batch_size"],
        lr=tr["lr"], weight_decay=tr["weight_decay"], warmup=tr["warmup"],
        proj_dim=hc["proj_dim"], hidden_dim=hc["hidden_dim"], depth=hc["depth"],
        dropout=hc["dropout"], threshold_text=_threshold_option(tr))


def _threshold_option(training):
    """The --threshold-text a checkpoint was trained with, from its recorded sources."""
    source = training.get("threshold_text", training.get("text", "dataset"))
    if source == training.get("text", "dataset"):
        return "same"
    return "dataset" if source == "dataset" else "ocr"


def parse_args(argv):
    """Arguments of `simclip evaluate`."""
    p = argparse.ArgumentParser(prog="simclip evaluate",
                                description="evaluate a trained head on a dataset split")
    p.add_argument("checkpoint", help="trained head (.safetensors), or 'zero-shot' for the "
                   "prompt-ensemble scores (calibrated by --calibration or the stored fit)")
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
    p.add_argument("--only-shared-tasks", action="store_true",
                   help="when the head lacks some tasks of the dataset setting, report the "
                        "shared ones instead of stopping (the others are listed)")
    p.add_argument("--batch-size", type=int, default=EmbedConfig.batch_size,
                   help="encoder batch size")
    ClassifierOptions.add_arguments(
        p, ocr_default=(None, "the one the head was trained with, else auto"))
    return p.parse_args(argv)


def run(args, progress=True):
    """Evaluate as `args` says; return the result dict (see module docstring)."""
    check_dataset(args.data_dir, args.dataset, (args.split,))  # before the backbone is built
    meta = read_metadata(args.checkpoint)
    bb = meta["backbone"]
    trained_text = meta.get("training", {}).get("text", "dataset")
    text = args.text or ("dataset" if trained_text == "dataset" else "ocr")
    ocr = args.ocr or (trained_text.removeprefix("ocr-") if trained_text != "dataset" else "auto")
    model = args.model or bb["model"]
    pretrained = args.pretrained or bb["pretrained"]
    trained = get_trained_backbone(meta)  # a checkpoint of simclip 0.1: the GELU build
    quick_gelu = getattr(args, "quick_gelu", None)
    if quick_gelu is None:
        quick_gelu = trained.activation == "quick_gelu"  # build what the head was trained on
    backbone_id = get_backbone_id(model, pretrained, quick_gelu=quick_gelu)
    if backbone_id != trained.id:
        raise ValueError(f"{args.checkpoint} was trained on {trained.id}, not {backbone_id}; "
                         f"pass its --model/--pretrained (and --quick-gelu/--no-quick-gelu)")
    seeds = max(1, args.seeds)
    base_seed = int(meta.get("training", {}).get("seed", 0))
    embed = EmbedConfig(data_dir=args.data_dir, cache_dir=args.cache_dir, text=text,
                        augment=meta.get("training", {}).get("augment", 0),
                        batch_size=args.batch_size, model=model, pretrained=pretrained,
                        device=args.device, ocr=ocr, weights_cache_dir=args.weights_cache_dir,
                        quick_gelu=quick_gelu, precision=args.precision)
    cache = EmbeddingCache.from_config(embed, seed=base_seed, progress=progress)
    examples, c = cache.get(args.dataset, args.split)
    c["dataset"] = args.dataset
    runs = []
    only_shared = getattr(args, "only_shared_tasks", False)
    head, head_meta = load_checkpoint(args.checkpoint)
    first = evaluate_head(head, head_meta, examples, c, only_shared)  # refuses before retraining
    if seeds == 1:
        runs.append(first)
    else:
        for k in range(seeds):
            cfg = train_config_from_metadata(meta, embed, base_seed + k)
            head, run_meta = train(cfg, cache=cache, progress=progress)
            runs.append(evaluate_head(head, run_meta, examples, c, only_shared))
    metrics = runs[0] if seeds == 1 else aggregate(runs)
    spec = get_dataset(args.dataset)
    return clean_floats({
        "checkpoint": str(args.checkpoint), "dataset": spec.key,
        "split": args.split, "n": len(examples), "backbone": backbone_id,
        "text": cache.text_source, "seeds": [base_seed + k for k in range(seeds)],
        "aggregate": "mean ± sample sd over seeds" if seeds > 1 else None,
        "metrics": metrics, "paper_metrics": paper_metrics(spec, metrics),
        "missing_tasks": metrics.get("missing_tasks", []),
        "data": describe_losses(c),
        "runs": runs if seeds > 1 else None,
    })


def run_zero_shot(args, progress=True):
    """Evaluate the zero-shot scorer (CHECKPOINT 'zero-shot'): per warning category the AUROC,
    and macro-F1 and accuracy at its threshold, calibrated where a calibration is found (as the
    server would be), with the uncalibrated AUROC beside it."""
    check_dataset(args.data_dir, args.dataset, (args.split,))  # before the backbone is built
    text = args.text or "ocr"  # what the server sees
    options = ClassifierOptions.from_args(args)
    embed = EmbedConfig(**{**asdict(options), "ocr": args.ocr or "auto"}, data_dir=args.data_dir,
                        cache_dir=args.cache_dir, text=text, batch_size=args.batch_size)
    cache = EmbeddingCache.from_config(embed, progress=progress)
    backbone = cache.get_backbone()
    calibration = find_calibration(getattr(args, "calibration", None), backbone.info.id)
    scorer = ZeroShotScorer(backbone, calibration)
    examples, c = cache.get(args.dataset, args.split)
    warnings = {}
    for category, (features, truth) in collect(cache, [args.dataset], args.split, scorer).items():
        f = torch.from_numpy(features).float()
        score = scorer.category_scores(f, category).numpy()
        m = binary_metrics(truth, score, scorer.thresholds[category])
        m["auroc_uncalibrated"] = binary_auroc(truth, scorer.uncalibrated_scores(f).numpy())
        m["calibrated"] = scorer.is_calibrated(category)
        warnings[category] = m
    return clean_floats({
        "checkpoint": "zero-shot", "dataset": get_dataset(args.dataset).key, "split": args.split,
        "n": len(examples), "backbone": backbone.info.id, "text": cache.text_source,
        "seeds": [0], "calibration": calibration.data if calibration else None,
        "metrics": {"tasks": {}, "warnings": warnings}, "paper_metrics": {},
        "missing_tasks": [], "data": describe_losses(c),
    })


def main(argv=None):
    """`simclip evaluate CHECKPOINT DATASET`: print a Markdown table, then the JSON result."""
    args = parse_args(argv)
    try:
        result = run_zero_shot(args) if args.checkpoint == "zero-shot" else run(args)
    except (SimCLIPError, ValueError, RuntimeError, OSError) as e:
        print(f"simclip evaluate: {e}", file=sys.stderr)
        return 2
    seeds = f", {len(result['seeds'])} seeds (mean ± sd)" if len(result["seeds"]) > 1 else ""
    print(f"{result['dataset']} {result['split']} (n={result['n']}, {result['backbone']}, "
          f"text={result['text']}{seeds})\n")
    print(markdown_table(result))
    print()
    for name, m in result["paper_metrics"].items():
        value = m["value"]
        shown = (f"{100 * value[0]:.1f} ± {100 * value[1]:.1f}" if isinstance(value, list)
                 else "n/a" if value is None else f"{100 * value:.1f}")
        print(f"paper metric: {name} {m['metric']} = {shown}")
    if result["missing_tasks"]:
        print(f"not evaluated (not in the head): {', '.join(result['missing_tasks'])}")
    for line in result["data"]:
        print(f"data: {line}")
    print()
    print(json.dumps(result, sort_keys=True))
    warning = random_weights_warning(result["backbone"])
    if warning:
        print(warning, file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0
