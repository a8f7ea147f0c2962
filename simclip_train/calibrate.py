"""`simclip calibrate`: fit the zero-shot scores on labelled validation memes.

Zero-shot is the server's mode until a head is trained. Uncalibrated, its scores rank memes but
are not probabilities and every category is decided at 0.5 (see `simclip.zeroshot`). This command
computes the zero-shot margins (image and OCR-text similarity to each category's positive minus
negative prompts) on a dataset's validation split, fits per warning category a logistic model
over [image margin, text margin, has text] (L2-regularised, LBFGS) and the decision threshold
that maximises binary macro-F1, and stores them where the classifier finds them for the same
backbone (`simclip.zeroshot.get_calibration_path`). The test split is never read.

    simclip calibrate --dataset harmeme-c --data-dir D            # OCR text, as the server sees
    simclip calibrate --dataset harmeme-c --dataset mami:a --data-dir D --text dataset
"""

import argparse
import logging
import sys

import numpy as np
import torch

from simclip import ClassifierOptions, SimCLIPError, random_weights_warning
from simclip.zeroshot import (
    Calibration,
    CategoryCalibration,
    ZeroShotScorer,
    get_calibration_path,
    get_prompts_digest,
)

from .config import embed_config_from_args
from .datasets import check_dataset, get_dataset
from .embed import EmbeddingCache, add_cache_args
from .metrics import binary_auroc, binary_metrics, tune_threshold
from .train import build_targets, clean_floats

logger = logging.getLogger(__name__)

L2 = 1e-3  # ridge on the logistic weights: a few hundred memes, 3 features


def fit_logistic(features, truth, l2=L2):
    """Logistic regression: (N, F) float features, (N,) 0/1 -> (weights (F,), bias) as floats.

    Deterministic (full-batch LBFGS from zeros). One class only: zero weights and the bias of
    its base rate, clipped.
    """
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(truth, dtype=torch.float64)
    rate = float(y.mean()) if len(y) else 0.5
    if rate in (0.0, 1.0):
        return [0.0] * x.shape[1], float(np.log(max(rate, 1e-3) / max(1.0 - rate, 1e-3)))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(float(np.log(rate / (1.0 - rate))), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, tolerance_grad=1e-10,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return [float(v) for v in w.detach()], float(b.detach())


def collect(cache, datasets, split, scorer):
    """{category: (features (N, 3), truth (N,))} over the split's labelled rows of every dataset
    whose warning rules feed the category."""
    out = {}
    for name in datasets:
        spec = get_dataset(name)
        examples, c = cache.get(name, split)
        has_text = torch.tensor([bool(t.strip()) for t in c["meta"]["texts"]])
        feats = scorer.margins(c["image"], c["text"], has_text)  # (N, K, 3)
        targets = build_targets(examples, spec.tasks)
        for rule in spec.warning_rules:
            task = next(t for t in spec.tasks if t.name == rule["task"])
            idx = [task.labels.index(lbl) for lbl in rule["labels"]]
            y = targets[task.name].numpy()
            keep = (y >= 0) if y.ndim == 1 else ~np.isnan(y).any(-1)
            truth = (np.isin(y[keep], idx) if y.ndim == 1 else y[keep][:, idx].max(1) > 0).astype(int)
            k = scorer.categories.index(rule["category"])
            f = feats[torch.from_numpy(keep)][:, k, :].numpy()
            prev_f, prev_y = out.get(rule["category"], (np.zeros((0, 3)), np.zeros(0, int)))
            out[rule["category"]] = (np.concatenate([prev_f, f]), np.concatenate([prev_y, truth]))
    return out


def calibrate(cache, datasets, split="val"):
    """Fit a Calibration on `split` of `datasets` (NAME[:setting]) with `cache`'s backbone."""
    for name in datasets:
        check_dataset(cache.data_dir, name, (split,))  # before the backbone is built
    backbone = cache.get_backbone()
    scorer = ZeroShotScorer(backbone)  # uncalibrated: its margins are the features
    categories = {}
    for category, (features, truth) in collect(cache, datasets, split, scorer).items():
        if len(truth) == 0:
            continue
        raw = scorer.uncalibrated_scores(torch.from_numpy(features).float()).numpy()
        weights, bias = fit_logistic(features, truth)
        prob = 1.0 / (1.0 + np.exp(-(features @ np.asarray(weights) + bias)))
        threshold = tune_threshold(truth, prob)
        metrics = {"n": int(len(truth)), "positives": int(truth.sum()),
                   "auroc_uncalibrated": binary_auroc(truth, raw),
                   "macro_f1_uncalibrated": binary_metrics(truth, raw, 0.5)["macro_f1"],
                   **binary_metrics(truth, prob, threshold)}
        categories[category] = CategoryCalibration(weights, bias, round(float(threshold), 6),
                                                   clean_floats(metrics))
    if not categories:
        raise ValueError(f"no labelled rows for any warning category in {datasets} {split}")
    data = {"datasets": [get_dataset(n).key for n in datasets], "split": split,
            "text": cache.text_source}
    return Calibration(backbone.info.id, get_prompts_digest(), categories, data)


def parse_args(argv):
    """Arguments of `simclip calibrate`."""
    p = argparse.ArgumentParser(prog="simclip calibrate",
                                description="fit the zero-shot scores on labelled validation memes")
    p.add_argument("--dataset", action="append", required=True,
                   help="NAME[:setting], repeatable (e.g. --dataset harmeme-c --dataset mami:a)")
    p.add_argument("--split", default="val", help="labelled split to fit on (default val; never test)")
    p.add_argument("--out", default=None,
                   help="calibration file (default: where the classifier looks for this backbone)")
    add_cache_args(p)
    ClassifierOptions.add_arguments(p, calibration=False)
    p.set_defaults(text="ocr")  # the server scores OCR text: fit on what it will see
    return p.parse_args(argv)


def main(argv=None):
    """Fit, store, and print each category's validation numbers."""
    args = parse_args(argv)
    if args.split == "test":
        print("simclip calibrate: refusing to fit on the test split", file=sys.stderr)
        return 2
    try:
        cache = EmbeddingCache.from_config(embed_config_from_args(args))
        cal = calibrate(cache, args.dataset, args.split)
        path = cal.save(args.out or get_calibration_path(cal.backbone))
    except (SimCLIPError, ValueError, RuntimeError, OSError) as e:
        print(f"simclip calibrate: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({cal.backbone}, text={cal.data['text']})")
    for name, c in cal.categories.items():
        m = {k: ("n/a" if v is None else f"{v:.3f}") for k, v in c.metrics.items()
             if k not in ("n", "positives")}
        print(f"  {name:<11} n={c.metrics['n']} AUROC {m['auroc_uncalibrated']} -> {m['auroc']}, "
              f"macro-F1 {m['macro_f1_uncalibrated']} -> {m['macro_f1']} "
              f"at threshold {c.threshold:.3f}")
    print("the server uses it in zero-shot mode for this backbone (restart simclip-server)")
    warning = random_weights_warning(cal.backbone)
    if warning:
        print(warning, file=sys.stderr)
    return 0
