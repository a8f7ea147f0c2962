"""`simclip train`: train a SimCLIP head on cached embeddings of one or several datasets.

The protocol (arXiv 2409.05772 and the authors' code):
    * frozen encoders: the head trains on the embedding cache (`simclip embed`, computed here
      when missing), so it runs in minutes on a CPU;
    * several datasets at once: their tasks share the projection and get one head each; batches
      interleave the datasets round-robin, smaller ones cycled to the largest's length; a
      sample's missing labels are ignored by `simclip_loss`;
    * class-balanced loss weights (n / (C * n_c); for a multilabel task, pos_weight = neg/pos);
    * AdamW (lr 1e-4, weight decay 1e-4), linear warm-up over the first 10% of the steps, then
      a constant learning rate;
    * early stopping on the validation mean macro-F1 over the datasets' PRIMARY tasks (the ones
      their papers report, `DatasetSpec.primary_tasks`; argmax decisions), ties broken by the
      validation loss: an auxiliary task (HarMeme's opt-in `target`) trains but never selects;
    * per-warning thresholds tuned on validation (binary macro-F1), never on test: this
      command does not read the test split at all. `--threshold-text ocr` tunes them on
      validation embeddings of our OCR text (what the server sees) whatever the training text;
      the checkpoint's `training` metadata records both sources.
The head trains on the CPU (a few small matrices); only the encoders use --device.
"""

import argparse
import copy
import dataclasses
import logging
import math
import sys

import numpy as np
import torch

from simclip import (
    DEFAULT_THRESHOLD,
    MULTICLASS,
    BackboneInfo,
    ClassifierOptions,
    HeadConfig,
    SimCLIPHead,
    get_trained_backbone,
    make_metadata,
    random_weights_warning,
    save_checkpoint,
    score_warning_rule,
    simclip_loss,
)

from .config import THRESHOLD_TEXTS, TrainConfig, train_config_from_args
from .datasets import check_dataset, get_dataset
from .embed import EmbeddingCache, add_cache_args, get_augment_recipe
from .metrics import (
    binary_metrics,
    multiclass_metrics,
    multilabel_metrics,
    tune_threshold,
)

logger = logging.getLogger(__name__)


def merge_tasks(specs):
    """The union of the datasets' tasks; a task named twice must have the same labels."""
    tasks = {}
    for spec in specs:
        for t in spec.tasks:
            if t.name in tasks and (tasks[t.name].kind, tasks[t.name].labels) != (t.kind, t.labels):
                raise ValueError(f"task {t.name!r} means different things in the datasets given "
                                 f"({tasks[t.name].labels} vs {t.labels}); train them separately")
            tasks.setdefault(t.name, t)
    return list(tasks.values())


def merge_warning_rules(specs):
    """Each dataset's warning rules, once each."""
    out = []
    for spec in specs:
        for w in spec.warning_rules:
            if w not in out:
                out.append(dict(w))
    return out


def build_targets(examples, tasks):
    """{task: tensor} for `simclip_loss`: -1 (multiclass) or NaN rows (multilabel) when missing."""
    out = {}
    for t in tasks:
        if t.kind == MULTICLASS:
            out[t.name] = torch.tensor([ex.labels.get(t.name) if ex.labels.get(t.name) is not None
                                        else -1 for ex in examples], dtype=torch.long)
        else:
            rows = [ex.labels.get(t.name) for ex in examples]
            out[t.name] = torch.tensor([r if r is not None else [math.nan] * len(t.labels)
                                        for r in rows], dtype=torch.float32).reshape(-1,
                                                                                     len(t.labels))
    return out


def load_split(cache, spec, split, tasks):
    """Embeddings and targets of one dataset split: {'image', 'text', 'image_aug'?, 'targets'}."""
    examples, c = cache.get(spec.key, split)
    ids = c["meta"]["ids"]
    if ids != [ex.id for ex in examples]:
        raise RuntimeError(f"embedding cache of {spec.key} {split} does not match the dataset; "
                           f"rerun `simclip embed {spec.key} --force`")
    out = {"image": c["image"], "text": c["text"], "targets": build_targets(examples, tasks),
           "meta": c["meta"], "examples": examples, "read_stats": c.get("read_stats")}
    if "image_aug" in c:
        out["image_aug"] = c["image_aug"]
    return out


def concat_splits(parts, tasks):
    """One split from several datasets' parts (targets of absent tasks stay missing)."""
    return {"image": torch.cat([p["image"] for p in parts]),
            "text": torch.cat([p["text"] for p in parts]),
            "targets": {t.name: torch.cat([p["targets"][t.name] for p in parts]) for t in tasks}}


def class_weights(targets, tasks):
    """Class-balanced weights per task from the training targets."""
    out = {}
    for t in tasks:
        y = targets[t.name]
        if t.kind == MULTICLASS:
            y = y[y >= 0]
            counts = torch.bincount(y, minlength=len(t.labels)).float()
            w = torch.where(counts > 0, len(y) / (len(t.labels) * counts.clamp(min=1)),
                            torch.ones_like(counts))
        else:
            y = y[~torch.isnan(y).any(-1)]
            pos = y.sum(0)
            w = torch.where(pos > 0, (len(y) - pos) / pos.clamp(min=1), torch.ones_like(pos))
        out[t.name] = w
    return out


def interleave(sizes, generator):
    """One epoch of (dataset, row) pairs: datasets round-robin, each shuffled and cycled to the
    largest dataset's length (the authors' BalancedInterleavedDataset)."""
    longest = max(sizes)
    perms = []
    for n in sizes:
        reps = [torch.randperm(n, generator=generator) for _ in range((longest + n - 1) // n)]
        perms.append(torch.cat(reps)[:longest])
    return [(d, int(perms[d][i])) for i in range(longest) for d in range(len(sizes))]


@torch.no_grad()
def predict_probs(head, image, text, batch_size=1024):
    """{task: (N, C) probabilities} of the head in eval mode."""
    head.eval()
    outs = [head.predict_proba(image[i:i + batch_size], text[i:i + batch_size])
            for i in range(0, len(image), batch_size)]
    return {k: torch.cat([o[k] for o in outs]).numpy() for k in outs[0]} if outs else {}


def task_metrics(probs, targets, tasks):
    """{task: metrics} over the rows that have the task's label."""
    out = {}
    for t in tasks:
        y = targets[t.name].numpy()
        if t.kind == MULTICLASS:
            keep = y >= 0
            if keep.any():
                out[t.name] = multiclass_metrics(y[keep], probs[t.name][keep])
        else:
            keep = ~np.isnan(y).any(-1)
            if keep.any():
                out[t.name] = multilabel_metrics(y[keep].astype(int), probs[t.name][keep])
    return out


def warning_truth_and_scores(probs, targets, task, rule):
    """(y, score) of a warning rule over the rows labelled for its task: y = one of its labels
    holds; the score is `simclip.score_warning_rule`'s, the one the server applies."""
    idx = [task.labels.index(lbl) for lbl in rule["labels"]]
    y = targets[task.name].numpy()
    if task.kind == MULTICLASS:
        keep = y >= 0
        truth = np.isin(y[keep], idx).astype(int)
    else:
        keep = ~np.isnan(y).any(-1)
        truth = (y[keep][:, idx].max(1) > 0).astype(int)
    score = score_warning_rule(torch.from_numpy(probs[task.name][keep]), task, rule["labels"])
    return truth, score.numpy()


def clean_floats(obj):
    """Round floats and turn NaN into None, so metadata is strict JSON."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, 6)
    if isinstance(obj, dict):
        return {k: clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_floats(v) for v in obj]
    return obj


def selection_score(metrics, selection_tasks):
    """The early-stopping score: mean macro-F1 over the selection (primary) tasks that have
    validation labels (0 when none has)."""
    values = [metrics[t]["macro_f1"] for t in selection_tasks if t in metrics]
    return float(np.mean(values)) if values else 0.0


def get_selection_tasks(specs):
    """The datasets' primary tasks, each once, in order."""
    out = []
    for spec in specs:
        out += [t for t in spec.primary_tasks if t not in out]
    return out


def _fit(cfg, config, tasks, train_parts, val, weights, selection_tasks, on_epoch=None):
    """The training loop with early stopping on `selection_tasks`; returns (best head, score,
    epoch, history). `on_epoch(epoch, epochs)` is called after each epoch (setup's progress)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        head = SimCLIPHead(config)
        opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sizes = [len(p["image"]) for p in train_parts]
        steps_per_epoch = math.ceil(max(sizes) * len(sizes) / cfg.train_batch_size)
        warmup = max(1, round(cfg.warmup * steps_per_epoch * cfg.epochs))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
        best, best_score, best_loss, best_epoch, bad, history = None, -1.0, math.inf, 0, 0, []
        for epoch in range(1, cfg.epochs + 1):
            head.train()
            order = interleave(sizes, gen)
            for i in range(0, len(order), cfg.train_batch_size):
                batch = order[i:i + cfg.train_batch_size]
                img, txt, tgt = [], [], {t.name: [] for t in tasks}
                for d, r in batch:
                    part = train_parts[d]
                    if "image_aug" in part:  # view 0 is the original image
                        v = int(torch.randint(part["image_aug"].shape[1] + 1, (1,),
                                              generator=gen))
                        img.append(part["image"][r] if v == 0 else part["image_aug"][r, v - 1])
                    else:
                        img.append(part["image"][r])
                    txt.append(part["text"][r])
                    for t in tasks:
                        tgt[t.name].append(part["targets"][t.name][r])
                logits = head(torch.stack(img), torch.stack(txt))  # {task: (B, C)}
                loss = simclip_loss(logits, {k: torch.stack(v) for k, v in tgt.items()},
                                    tasks, weights)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            metrics = task_metrics(predict_probs(head, val["image"], val["text"]),
                                   val["targets"], tasks)
            score = selection_score(metrics, selection_tasks)
            with torch.no_grad():
                val_loss = float(simclip_loss(head(val["image"], val["text"]), val["targets"],
                                              tasks, weights))
            history.append(round(score, 6))
            if on_epoch is not None:
                on_epoch(epoch, cfg.epochs)
            if (score, -val_loss) > (best_score, -best_loss):
                best, best_score, best_loss, best_epoch, bad = (copy.deepcopy(head.state_dict()),
                                                                score, val_loss, epoch, 0)
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
    head.load_state_dict(best)
    head.eval()
    return head, best_score, best_epoch, history


def _threshold_cache(cfg, cache, progress):
    """The cache of the validation embeddings the thresholds are tuned on: `cache` itself, or
    one of another text source (`cfg.threshold_text`)."""
    text = cfg.embed.text if cfg.threshold_text == "same" else cfg.threshold_text
    if text == cache.text:
        return cache
    embed = dataclasses.replace(cfg.embed, text=text, augment=0)
    return EmbeddingCache.from_config(embed, seed=cfg.seed, progress=progress)


def _split_record(part):
    """What the checkpoint metadata says about one dataset split: size, fingerprint, and what
    the reader and the decoder left out or adjusted."""
    meta = part["meta"]
    out = {"n": len(part["image"]), "fingerprint": meta["fingerprint"]}
    read = part.get("read_stats") or {}
    if read.get("skipped") or read.get("adjusted"):
        out["read"] = {k: read[k] for k in ("rows", "read", "skipped", "adjusted")}
    if meta.get("truncated_images"):
        out["truncated_images"] = len(meta["truncated_images"])
    if meta.get("skipped_images"):
        out["skipped_images"] = len(meta["skipped_images"])
    return out


def train(cfg: TrainConfig, cache: EmbeddingCache | None = None, progress: bool = True,
          on_epoch=None):
    """Train a head as `cfg` says; return (SimCLIPHead in eval mode, checkpoint metadata).

    `on_epoch(epoch, epochs)` is called after each epoch (it may raise to stop the run).

    Reads only the train and validation splits. `cache` defaults to one built from `cfg.embed`.
    Raises ValueError for unknown datasets or tasks that conflict, DatasetFormatError for bad
    dataset files.
    """
    specs = [get_dataset(name) for name in cfg.datasets]
    for spec in specs:  # all of them, before the first is embedded (hours on a CPU)
        check_dataset(cfg.embed.data_dir, spec.key, ("train", "val"))
    tasks = merge_tasks(specs)
    selection_tasks = get_selection_tasks(specs)
    cache = cache or EmbeddingCache.from_config(cfg.embed, seed=cfg.seed, progress=progress)
    train_parts = [load_split(cache, s, "train", tasks) for s in specs]
    val_parts = [load_split(cache, s, "val", tasks) for s in specs]
    val = concat_splits(val_parts, tasks)
    embed_dim = train_parts[0]["image"].shape[1]
    backbone_info = train_parts[0]["meta"]["backbone_info"]
    all_train_targets = concat_splits(train_parts, tasks)["targets"]
    weights = class_weights(all_train_targets, tasks)

    config = HeadConfig(embed_dim=embed_dim, proj_dim=cfg.proj_dim, hidden_dim=cfg.hidden_dim,
                        depth=cfg.depth, dropout=cfg.dropout, tasks=tasks)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is fastest, and immune to contention
    try:
        head, best_score, best_epoch, history = _fit(cfg, config, tasks, train_parts, val,
                                                     weights, selection_tasks, on_epoch)
    finally:
        torch.set_num_threads(threads)
    logger.info("best validation mean macro-F1 over %s: %.4f at epoch %d of %d",
                ", ".join(selection_tasks), best_score, best_epoch, len(history))

    probs = predict_probs(head, val["image"], val["text"])
    val_metrics = task_metrics(probs, val["targets"], tasks)
    tcache = _threshold_cache(cfg, cache, progress)
    if tcache is cache:
        tval, tprobs = val, probs
    else:
        tval = concat_splits([load_split(tcache, s, "val", tasks) for s in specs], tasks)
        tprobs = predict_probs(head, tval["image"], tval["text"])
    rules, rule_metrics = [], {}
    by_name = {t.name: t for t in tasks}
    for w in merge_warning_rules(specs):
        truth, score = warning_truth_and_scores(tprobs, tval["targets"], by_name[w["task"]], w)
        threshold = tune_threshold(truth, score) if len(truth) else DEFAULT_THRESHOLD
        rules.append({**w, "threshold": round(threshold, 6)})
        rule_metrics[f"{w['category']}/{w['task']}"] = binary_metrics(truth, score, threshold)

    training = {
        "tool": "simclip train",
        "datasets": [{"name": s.key, "train": _split_record(p), "val": _split_record(v)}
                     for s, p, v in zip(specs, train_parts, val_parts)],
        "text": cache.text_source, "threshold_text": tcache.text_source,
        "augment": cache.augment, "seed": cfg.seed,
        "epochs": cfg.epochs, "epochs_run": len(history), "best_epoch": best_epoch,
        "batch_size": cfg.train_batch_size, "lr": cfg.lr, "weight_decay": cfg.weight_decay,
        "warmup": cfg.warmup, "patience": cfg.patience,
        "selection_tasks": selection_tasks,
        "early_stopping": "validation mean macro-F1 over the primary tasks "
                          f"({', '.join(selection_tasks)}), ties broken by validation loss",
        "thresholds": f"tuned on validation, {tcache.text_source} text",
        "val_mean_macro_f1_history": history,
    }
    if cache.augment:
        training["augment_recipe"] = get_augment_recipe(cache.augment)
    metrics = {"val": {"tasks": val_metrics, "mean_macro_f1": best_score,
                       "selection_tasks": selection_tasks, "warnings": rule_metrics,
                       "warnings_text": tcache.text_source}}
    meta = make_metadata(config, BackboneInfo(**backbone_info), rules,
                         training=clean_floats(training), metrics=clean_floats(metrics))
    return head, meta


def add_train_args(p):
    """Training hyper-parameters; defaults from `TrainConfig` (the paper's)."""
    d = TrainConfig
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum epochs (default {d.epochs})")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many epochs without a better validation score")
    p.add_argument("--train-batch-size", dest="train_batch_size", type=int,
                   default=d.train_batch_size,
                   help=f"head training batch size (default {d.train_batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    p.add_argument("--warmup", type=float, default=d.warmup,
                   help=f"fraction of steps with a linear warm-up (default {d.warmup})")
    p.add_argument("--proj-dim", type=int, default=d.proj_dim, help="siamese projection size")
    p.add_argument("--hidden-dim", type=int, default=d.hidden_dim, help="task MLP width")
    p.add_argument("--depth", type=int, default=d.depth, help="task MLP blocks")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout")
    p.add_argument("--threshold-text", dest="threshold_text", choices=THRESHOLD_TEXTS,
                   default=d.threshold_text,
                   help="tune the warning thresholds on validation embeddings of this caption "
                        "source: 'same' as training, or 'ocr' (what the server sees) "
                        "(default %(default)s)")


def parse_args(argv):
    """Arguments of `simclip train`."""
    p = argparse.ArgumentParser(prog="simclip train",
                                description="train a SimCLIP head on cached embeddings")
    p.add_argument("--dataset", action="append", required=True,
                   help="NAME[:setting], repeatable for multi-task training "
                        "(e.g. --dataset harmeme-c --dataset mami:a)")
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    add_train_args(p)
    add_cache_args(p)
    ClassifierOptions.add_arguments(p, calibration=False)
    return p.parse_args(argv)


def run(cfg: TrainConfig, out, progress: bool = True):
    """Train and save the checkpoint to `out`; return (path, metadata)."""
    head, meta = train(cfg, progress=progress)
    return save_checkpoint(out, head, meta), meta


def main(argv=None):
    """`simclip train --dataset NAME --data-dir D --out CKPT`: train, tune, save."""
    args = parse_args(argv)
    try:
        path, meta = run(train_config_from_args(args), args.out)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"simclip train: {e}", file=sys.stderr)
        return 2
    val = meta["metrics"]["val"]
    print(f"wrote {path}")
    print(f"validation mean macro-F1 of {', '.join(val['selection_tasks'])} "
          f"{val['mean_macro_f1']:.4f} "
          f"(best epoch {meta['training']['best_epoch']} of {meta['training']['epochs_run']})")
    for w in meta["warnings"]:
        print(f"  {w['category']:<11} threshold {w['threshold']:.3f} (from {w['task']}, tuned "
              f"on {meta['training']['threshold_text']} text)")
    print(f"use it: {get_serve_command(path, meta)}")
    warning = random_weights_warning(get_trained_backbone(meta).id)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def get_serve_command(path, meta):
    """The `simclip-server` line that serves checkpoint `path` (metadata `meta`): a head on
    random weights needs --pretrained none said out loud, as the server refuses it otherwise."""
    bb = meta["backbone"]
    extra = f" --model {bb['model']} --pretrained none" if bb["pretrained"] == "random" else ""
    return f"simclip-server --checkpoint {path}{extra}"
