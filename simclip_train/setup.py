"""`simclip setup`: one step from a fresh install to a trained head the server serves.

    simclip setup                 # ask the running server to set up, follow its progress
    simclip setup --status        # the same report as the extension's popup
    simclip setup --cancel        # stop a running setup (it resumes from its work on the next start)

The work runs inside the server's process tree: `simclip-server` starts `python -m
simclip_train.setup run ...` (this module) as a child process on POST /v1/setup (the server
never imports the training package), reads the progress it writes to
`<user cache>/setup/<backbone>/state.json`, and once the child has validated the new head,
swaps it in without a restart. Stages:

    weights    the CLIP weights: cached (the server fetched them at its start) or downloaded
               (resumable, verified: `simclip.backbone.download_weights`), then the backbone
    dataset    fetch Harm-C (resumable, `download.fetch_harmeme_c`; $SIMCLIP_DATASETS_BASE_URL)
    embed      the frozen encoders over train + val (resumable by shards, `embed.EmbeddingCache`)
    train      the binary harmful head, the paper's protocol (`train.train`); recipe by device
    calibrate  the zero-shot scores of the categories with labelled data (`calibrate.calibrate`)
    validate   load the written head again and check it on the validation split

Progress comes from the work itself: the download and embedding loops' tqdm bars (hooked, not
re-implemented) and the training loop's epochs. A SIGTERM (DELETE /v1/setup) stops at the next
unit of work; the state says "cancelled". The child exits when its server dies (the next server
resumes it), and holds a lock on its folder so two never write it at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from simclip import (
    WARNING_CATEGORIES,
    SimCLIPError,
    get_user_cache_dir,
    load_checkpoint,
    random_weights_warning,
    save_checkpoint,
)
from simclip.backbone import download_weights
from simclip.zeroshot import get_calibration_path

from . import download as download_module
from . import embed as embed_module
from .calibrate import calibrate
from .config import RECOMMENDED_AUGMENT, EmbedConfig, TrainConfig
from .datasets import (
    DatasetFormatError,
    DatasetNotFoundError,
    check_dataset,
    get_dataset,
    get_dataset_root,
    read_split,
)
from .embed import EmbeddingCache
from .train import concat_splits, load_split, predict_probs, task_metrics
from .train import train as train_head

logger = logging.getLogger(__name__)

STAGES = ("weights", "dataset", "embed", "train", "calibrate", "validate")
STATE_FILE = "state.json"
HEAD_FILE = "head.safetensors"
DATASET = "harmeme-c:binary"  # the public dataset (fetched): the server's "Harmful" warning
# Datasets a user can request and put in the data folder by hand (`simclip datasets info NAME`
# says where), per warning category: setup trains on each one it finds there, with Harm-C.
OPTIONAL_DATASETS = {"misogynous": "mami:a", "hateful": "hateful-memes:seen",
                     "offensive": "multioff:binary"}
DATASET_TITLES = {"harmeme-c": "HarMeme", "mami": "MAMI", "hateful-memes": "Hateful Memes",
                  "multioff": "MultiOFF"}
# Recipes: the paper's on a GPU; on a CPU the same protocol without the augmentation views
# (the image encoder runs once per meme instead of 9 times), which a laptop finishes in well
# under an hour with ViT-L-14-336.
RECIPES = {
    "paper": {"name": "paper", "augment": RECOMMENDED_AUGMENT, "epochs": TrainConfig.epochs,
              "patience": TrainConfig.patience, "text": "dataset", "threshold_text": "ocr"},
    "cpu": {"name": "cpu", "augment": 0, "epochs": TrainConfig.epochs,
            "patience": TrainConfig.patience, "text": "dataset", "threshold_text": "ocr"},
}
HARMEME_C_BYTES = 430 * 1024 ** 2  # the published download, about 430 MB
DISK_MARGIN_BYTES = 200 * 1024 ** 2  # kept free beyond the plan's estimate
WRITE_INTERVAL_S = 0.25  # the state file is rewritten at most this often (and at each stage)
# A cancelled job that has not reached its next unit of work by then exits at once: every file it
# writes is written whole (a temporary file, then a rename), so only the unit in progress is lost
# (an encoder batch of OCR can take half a minute on a busy CPU).
CANCEL_GRACE_S = 2.0
MEASURE_BATCH = 4  # memes timed through the encoders to plan
DECODE_S = 0.05  # seconds to read and decode one Harm-C PNG (measured: 2-vCPU machine, loaded)


class SetupError(SimCLIPError):
    """A setup failure with a typed code (`insufficient_disk`, `offline`, ...)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Cancelled(Exception):
    """The job was asked to stop (SIGTERM)."""


def get_setup_root():
    """Where every setup lives: <user cache>/setup (one folder per backbone)."""
    return get_user_cache_dir() / "setup"


def write_json_atomic(path, data):
    """Write `data` as JSON to `path` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def read_state(state_dir):
    """The state file of a setup folder, or None."""
    try:
        return json.loads((Path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


class Reporter:
    """Keeps the setup state and writes it to the state file as the work advances.

    `advance` is the checkpoint of work: it raises Cancelled once a stop was asked.
    """

    def __init__(self, state_dir, state):
        self.path = Path(state_dir) / STATE_FILE
        self.state = state
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self._written = 0.0
        self._stage_t0 = time.monotonic()
        self._stage_done0 = 0

    def set(self, **fields):
        """Update fields and write the file now."""
        with self._lock:
            self.state.update(fields)
            self._write()

    def stage(self, name, total=None, unit=None, done=0):
        """Enter stage `name` with `total` `unit`s to do."""
        with self._lock:
            self.state.update(state="running", stage=name, done=done, total=total, unit=unit)
            self._stage_t0, self._stage_done0 = time.monotonic(), done
            self._write()

    def set_total(self, total, unit=None):
        """The current stage's total, once known."""
        with self._lock:
            self.state["total"] = total
            if unit:
                self.state["unit"] = unit
            self._write()

    def advance(self, n=1):
        """`n` more units of the current stage done; raises Cancelled after a stop request."""
        with self._lock:
            self.state["done"] = self.state["done"] + n
            if time.monotonic() - self._written >= WRITE_INTERVAL_S:
                self._write()
        if self.cancel.is_set():
            raise Cancelled()

    def check(self):
        """Raise Cancelled after a stop request."""
        if self.cancel.is_set():
            raise Cancelled()

    def _eta(self):
        """Seconds left: the current stage at its measured rate, the later ones as planned."""
        s = self.state
        plan = s.get("plan") or {}
        planned = plan.get("stages_s") or {}
        if s.get("stage") not in STAGES:
            return None
        idx = STAGES.index(s["stage"])
        later = sum(planned.get(name, 0.0) for name in STAGES[idx + 1:])
        done, total = s.get("done") or 0, s.get("total")
        elapsed = time.monotonic() - self._stage_t0
        progressed = done - self._stage_done0
        if total and progressed > 0 and elapsed > 0:
            current = (total - done) * elapsed / progressed
        else:
            current = max(0.0, planned.get(s["stage"], 0.0) - elapsed)
        return round(current + later, 1)

    def _write(self):
        self.state["eta_s"] = self._eta()
        self.state["updated"] = time.time()
        write_json_atomic(self.path, self.state)
        self._written = time.monotonic()


def _reporting_tqdm(reporter, sets_total):
    """A tqdm class that also reports its updates to `reporter` (hooked into the download and
    embedding loops, whose bars count files and memes)."""

    class ReportingTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if sets_total and self.total is not None:
                reporter.set_total(int(self.total), "files")

        def update(self, n=1):
            out = super().update(n)
            reporter.advance(n)
            return out

    return ReportingTqdm


@contextlib.contextmanager
def hooked(module, reporter, sets_total=False):
    """`module.tqdm` reports to `reporter` inside the block."""
    original = module.tqdm
    module.tqdm = _reporting_tqdm(reporter, sets_total)
    try:
        yield
    finally:
        module.tqdm = original


def measure_encoder(backbone, n=MEASURE_BATCH):
    """Seconds per meme (image + text) through the frozen encoders, on a short timed batch."""
    images = []
    for i in range(n):
        im = Image.new("RGB", (320, 320), (40 * i, 120, 200))
        ImageDraw.Draw(im).text((10, 10), f"when the meme {i}", fill=(255, 255, 255))
        images.append(im)
    texts = [f"when the meme {i} is measured" for i in range(n)]
    backbone.encode_images(images[:1])  # lazy initialisation is not the cost of a meme
    t0 = time.perf_counter()
    backbone.encode_images(images)
    backbone.encode_texts(texts)
    return (time.perf_counter() - t0) / n


def find_datasets(data_dir):
    """The datasets setup trains on: Harm-C, then each of OPTIONAL_DATASETS whose train and
    validation files are in `data_dir` and read without error.

    Returns:
        (names, skipped): the NAME:setting list, Harm-C first; {name: why} for an optional
        dataset that is there but cannot be read (a broken file does not stop setup: the other
        datasets are trained on, and the report says what is wrong with it).
    """
    names, skipped = [DATASET], {}
    for name in OPTIONAL_DATASETS.values():
        try:
            check_dataset(data_dir, name, ("train", "val"))
        except DatasetNotFoundError:
            continue
        try:
            root = get_dataset_root(data_dir, name)
            if not all(read_split(name, root, split) for split in ("train", "val")):
                raise DatasetFormatError(f"{name} has an empty train or validation split")
        except (DatasetFormatError, OSError) as e:
            logger.warning("setup skips %s: %s", name, e)
            skipped[name.partition(":")[0]] = str(e)
            continue
        names.append(name)
    return names, skipped


def count_examples(data_dir, datasets):
    """{NAME: {"train": n, "val": n}} of `datasets` in `data_dir`; Harm-C's published sizes
    while it is not downloaded yet."""
    counts = {}
    for name in datasets:
        try:
            check_dataset(data_dir, name, ("train", "val"))
        except DatasetNotFoundError:
            counts[name] = {k: download_module.HARMEME_C_COUNTS[k] for k in ("train", "val")}
            continue
        root = get_dataset_root(data_dir, name)
        counts[name] = {split: len(read_split(name, root, split)) for split in ("train", "val")}
    return counts


def make_plan(encoder_s, embed_dim, device, data_dir, recipe, ocr_s_per_meme, counts):
    """How long the setup will take, how much it downloads and stores.

    Args:
        encoder_s: seconds per meme (image + text) through the frozen encoders on `device`
            (`measure_encoder`, or the server's measured cost before the backbone is built).
        embed_dim: the backbone's embedding size (bytes stored per embedding: 4 x embed_dim).
        device: where the encoders run ('cpu', 'cuda', ...).
        data_dir: where the datasets and the embeddings go.
        recipe: one of RECIPES.
        ocr_s_per_meme: seconds of OCR per meme (0 without OCR).
        counts: {NAME: {"train": n, "val": n}} per dataset (`count_examples`).

    Returns:
        {"device", "recipe", "estimate_s", "download_bytes", "store_bytes", "stages_s",
         "encoder_s_per_meme", "memes", "datasets"}.
    """
    have_harmeme = (Path(data_dir) / "harmeme-c" / "MANIFEST.json").is_file()
    download_bytes = 0 if have_harmeme else HARMEME_C_BYTES
    n_train = sum(c["train"] for c in counts.values())
    n_val = sum(c["val"] for c in counts.values())
    views = 1 + recipe["augment"]
    embed_s = (n_train * views + 2 * n_val) * encoder_s + (n_train + 2 * n_val) * DECODE_S \
        + n_val * ocr_s_per_meme
    store = download_bytes + 4 * embed_dim * (n_train * (views + 1) + 4 * n_val) + 2 ** 20
    stages = {"weights": 0.0, "dataset": download_bytes / (5 * 1024 ** 2), "embed": embed_s,
              "train": 0.002 * recipe["epochs"] * (n_train + n_val) ** 0.5 + 5.0,
              "calibrate": 2.0, "validate": 1.0}
    return {"device": str(device), "recipe": recipe,
            "estimate_s": round(sum(stages.values()), 1), "download_bytes": download_bytes,
            "store_bytes": store, "stages_s": {k: round(v, 1) for k, v in stages.items()},
            "encoder_s_per_meme": round(encoder_s, 5), "memes": n_train + n_val,
            "datasets": {name.partition(":")[0]: c for name, c in counts.items()}}


def check_disk(path, plan):
    """Refuse (SetupError `insufficient_disk`) when `path`'s filesystem lacks the plan's bytes."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = plan["store_bytes"] + DISK_MARGIN_BYTES
    if free < need:
        raise SetupError("insufficient_disk",
                         f"setup needs about {need / 1e9:.1f} GB free in {path}, "
                         f"{free / 1e9:.1f} GB are: free some space (or set XDG_CACHE_HOME to "
                         f"a larger disk) and start it again")


def get_how_to_improve(category, data_dir, skipped=None):
    """What would train `category` (None for Harm-C's, which setup always trains): the dataset
    to request and the folder setup reads it from, or why the one there was skipped."""
    name = OPTIONAL_DATASETS.get(category, "").partition(":")[0]
    if not name:
        return None
    title, folder = DATASET_TITLES[name], Path(data_dir) / name
    if skipped and name in skipped:
        return f"{title} in {folder} cannot be read: {skipped[name]}"
    return (f"needs {title}: simclip datasets info {name} says how to get it; put it in "
            f"{folder} and run setup again")


def summarize(meta, calibration, trained_on, data_dir, skipped=None):
    """The per-category report: what the new head gives, and what would improve the others.

    Args:
        meta: the head's checkpoint metadata (its warnings and validation metrics).
        calibration: the zero-shot Calibration fitted by setup, or None.
        trained_on: {category: (dataset name, training examples)} of the head's datasets.
        data_dir: the folder setup reads the datasets from (named in the advice).
        skipped: {dataset name: why} for datasets found but not readable.
    """
    val = (meta.get("metrics") or {}).get("val") or {}
    warn = val.get("warnings") or {}
    trained = {w["category"] for w in meta.get("warnings", [])}
    out = []
    for cid, info in WARNING_CATEGORIES.items():
        name = info["name"]
        if cid in trained:
            dataset, n = trained_on.get(cid, ("harmeme-c", None))
            f1 = next((m.get("macro_f1") for k, m in warn.items() if k.startswith(cid + "/")),
                      None)
            f1_text = f", validation macro-F1 {f1:.2f}" if f1 is not None else ""
            count = f"{n:,} " if n is not None else ""
            out.append({"id": cid, "name": name, "status": "trained", "calibrated": True,
                        "served": True, "examples": n, "dataset": dataset, "val_macro_f1": f1,
                        "text": f"{name}: trained on {count}{DATASET_TITLES.get(dataset, dataset)}"
                                f" memes{f1_text}",
                        "how_to_improve": None})
            continue
        calibrated = calibration is not None and cid in calibration.categories
        how = get_how_to_improve(cid, data_dir, skipped)
        text = f"{name}: zero-shot, {'calibrated' if calibrated else 'uncalibrated'}" + \
            (f" ({how})" if how else "")
        out.append({"id": cid, "name": name, "status": "zero-shot", "calibrated": calibrated,
                    "served": True, "examples": None, "dataset": None, "val_macro_f1": None,
                    "text": text, "how_to_improve": how})
    return {"categories": out, "skipped": dict(skipped or {})}


def _text_cache(base, text, augment=0):
    return EmbeddingCache.from_config(dataclasses.replace(base, text=text, augment=augment),
                                      progress=False)


def run_job(args, reporter):
    """The six stages; returns the path of the validated head."""
    recipe = dict(RECIPES[args.recipe])
    data_dir = Path(args.data_dir)
    base = EmbedConfig(data_dir=str(data_dir), text=recipe["text"], augment=recipe["augment"],
                       model=args.model, pretrained=args.pretrained, device=args.device,
                       ocr=args.ocr, weights_cache_dir=args.weights_cache_dir,
                       quick_gelu=args.quick_gelu, shard_size=args.shard_size,
                       precision=args.precision or None)
    cache = _text_cache(base, recipe["text"], recipe["augment"])
    ocr_cache = _text_cache(base, "ocr")
    ocr_s = 0.0 if args.ocr == "none" else (args.ocr_ms / 1000.0 if args.ocr_ms else 0.5)
    datasets, skipped = find_datasets(data_dir)
    reporter.set(datasets=[name.partition(":")[0] for name in datasets], skipped=skipped)
    counts = count_examples(data_dir, datasets)  # Harm-C's published sizes until it is fetched

    # the plan before anything is downloaded, from the server's measured cost per picture
    if args.encoder_ms and args.embed_dim:
        plan = make_plan(args.encoder_ms / 1000.0, args.embed_dim, args.device, data_dir, recipe,
                         ocr_s, counts)
        check_disk(data_dir, plan)
        reporter.set(plan=plan)

    # weights: the served backbone's CLIP weights, found in the cache (the server fetched them
    # at its start) or downloaded (resumable, verified), then the backbone built from them
    reporter.stage("weights", total=None, unit="bytes")

    def on_weights(done, total):
        if total is not None and reporter.state["total"] != total:
            reporter.set_total(total, "bytes")
        reporter.advance(done - reporter.state["done"])

    if download_weights(args.model, args.pretrained, args.weights_cache_dir,
                        progress=on_weights) is None:  # nothing to fetch (random, a file)
        reporter.set(total=1, unit="files")
    backbone = cache.get_backbone()
    ocr_cache._backbone = backbone  # one backbone for both text sources
    reporter.set(done=reporter.state["total"])
    encoder_s = measure_encoder(backbone)
    plan = make_plan(encoder_s, backbone.info.embed_dim, backbone.device, data_dir, recipe, ocr_s,
                     counts)
    check_disk(data_dir, plan)
    reporter.set(plan=plan, backbone=backbone.info.id)

    # dataset
    reporter.stage("dataset", total=None, unit="files")
    with hooked(download_module, reporter, sets_total=True):
        download_module.fetch_harmeme_c(data_dir, progress=False)
    counts = count_examples(data_dir, datasets)
    if reporter.state["total"] is None:  # complete from an earlier run
        reporter.set_total(1, "files")
        reporter.advance(1)
    first = plan
    plan = make_plan(encoder_s, backbone.info.embed_dim, backbone.device, data_dir, recipe, ocr_s,
                     counts)
    plan["download_bytes"] = first["download_bytes"]  # what this setup fetched
    reporter.set(plan=plan)

    # embed: train + val with the training text, val with OCR text (thresholds, calibration)
    total = sum(c["train"] + 2 * c["val"] for c in counts.values())
    reporter.stage("embed", total=total, unit="memes")
    computed = reused = 0
    with hooked(embed_module, reporter):
        for name in datasets:
            for c, split in ((cache, "train"), (cache, "val"), (ocr_cache, "val")):
                _, result = c.get(name, split)
                stats = result.get("stats")
                if stats is None:  # a complete cache from an earlier run
                    n = len(result["meta"]["ids"])
                    reused += n
                    reporter.advance(n)
                    continue
                computed += stats["computed"]
                reused += stats["reused"]
                reporter.set(embedded={"computed": computed, "reused": reused})
    reporter.set(embedded={"computed": computed, "reused": reused},
                 done=reporter.state["total"])

    # train: one head over every dataset found, a task (and a warning) per dataset
    reporter.stage("train", total=recipe["epochs"], unit="epochs")
    cfg = TrainConfig(datasets=list(datasets), embed=base, epochs=recipe["epochs"],
                      patience=recipe["patience"], threshold_text=recipe["threshold_text"])

    def on_epoch(epoch, epochs):
        reporter.advance(1)

    head, meta = train_head(cfg, cache=cache, progress=False, on_epoch=on_epoch)
    meta["training"]["recipe"] = recipe
    meta["training"]["tool"] = "simclip setup"
    head_path = save_checkpoint(Path(args.state_dir) / HEAD_FILE, head, meta)
    reporter.set(done=recipe["epochs"])

    # calibrate the zero-shot categories that have labelled data
    reporter.stage("calibrate", total=1, unit=None)
    calibration = calibrate(ocr_cache, list(datasets), "val")
    calibration.save(get_calibration_path(calibration.backbone))
    reporter.advance(1)

    # validate: the file as written, on the validation splits
    reporter.stage("validate", total=1, unit=None)
    loaded, loaded_meta = load_checkpoint(head_path, backbone.info)
    specs = [get_dataset(name) for name in datasets]
    tasks = loaded.config.tasks
    val = concat_splits([load_split(cache, spec, "val", tasks) for spec in specs], tasks)
    probs = predict_probs(loaded, val["image"], val["text"])
    metrics = task_metrics(probs, val["targets"], tasks)
    for name, m in metrics.items():
        expected = meta["metrics"]["val"]["tasks"][name]["macro_f1"]
        if expected is not None and not math.isclose(m["macro_f1"], expected, abs_tol=1e-4):
            raise SetupError("validation_failed",
                             f"the written head scores macro-F1 {m['macro_f1']:.4f} on {name}, "
                             f"training measured {expected:.4f}: the file is not the head trained")
    if not all(torch.isfinite(torch.as_tensor(p)).all() for p in probs.values()):
        raise SetupError("validation_failed", "the written head gives non-finite scores")
    trained_on = {w["category"]: (spec.name, counts[name]["train"])
                  for name, spec in zip(datasets, specs) for w in spec.warning_rules}
    summary = summarize(loaded_meta, calibration, trained_on, data_dir, skipped)
    reporter.set(summary=summary, head=str(head_path), done=1, eta_s=0)
    return head_path


def _watch_parent(parent_pid, reporter):
    """Exit when the server that started us is gone (the next server resumes the job), and
    exit at once when a cancelled job has not stopped within CANCEL_GRACE_S."""
    cancelled_at = None
    while True:
        time.sleep(0.2)
        if parent_pid and os.getppid() != parent_pid:
            os._exit(3)
        if reporter.cancel.is_set():
            cancelled_at = cancelled_at or time.monotonic()
            if time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                reporter.set(state="cancelled", eta_s=None)
                os._exit(0)


def _lock(state_dir, timeout_s=30.0):
    """Hold an exclusive lock on the setup folder (an orphan from a killed server may still be
    stopping); returns the open file (kept for the process's life), None where unsupported."""
    try:
        import fcntl
    except ImportError:  # Windows: one server per user cache is the rule there
        return None
    f = open(Path(state_dir) / "lock", "w")  # noqa: SIM115 (held until exit)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise SetupError("setup_running", f"another setup holds {state_dir}") from None
            time.sleep(0.1)


def run_main(args):
    """`python -m simclip_train.setup run`: the job the server starts."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state = read_state(state_dir) or {}
    state.update(state="running", stages=list(STAGES), error=None, pid=os.getpid(),
                 summary=None, head=None)
    state.setdefault("plan", None)
    reporter = Reporter(state_dir, state)
    signal.signal(signal.SIGTERM, lambda *_: reporter.cancel.set())
    try:
        lock = _lock(state_dir)
    except SetupError as e:
        print(f"simclip setup: {e}", file=sys.stderr)
        return 2
    threading.Thread(target=_watch_parent, args=(args.parent_pid, reporter), daemon=True).start()
    try:
        run_job(args, reporter)
    except Cancelled:
        reporter.set(state="cancelled", eta_s=None)
        return 0
    except (SetupError, download_module.DownloadError) as e:
        reporter.set(state="failed", eta_s=None,
                     error={"code": getattr(e, "code", "setup_failed"), "message": str(e)})
        return 1
    except (SimCLIPError, ValueError, RuntimeError, OSError) as e:
        logger.exception("setup failed")
        reporter.set(state="failed", eta_s=None,
                     error={"code": getattr(e, "code", None) or "setup_failed",
                            "message": f"{type(e).__name__}: {e}"})
        return 1
    finally:
        if lock is not None:
            lock.close()
    return 0


# ---- the command a person types: it asks the running server --------------------------------

def _server_url(args):
    return f"http://{args.host}:{args.port}/v1/setup"


def _request(method, args, token):
    """(status, JSON body) of one call to the server's /v1/setup; SetupError when unreachable."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(_server_url(args), method=method,
                                 headers={"X-Auth-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read())
        except ValueError:
            return e.code, {"error": {"code": "http_error", "message": str(e)}}
    except (urllib.error.URLError, OSError) as e:
        raise SetupError("server_not_running",
                         f"no simclip-server answers on {args.host}:{args.port} "
                         f"({getattr(e, 'reason', e)}). Start it with `simclip-server`, then "
                         f"run `simclip setup` again; if your server listens on another port, "
                         f"give it to both: `simclip-server --port PORT`, "
                         f"`simclip setup --port PORT`") from None


def format_report(body):
    """The popup's report as text lines: state, stage, progress, time left, per category."""
    lines = [f"setup: {body['state']}"]
    if body.get("stage"):
        done, total, unit = body.get("done"), body.get("total"), body.get("unit") or ""
        progress = f"{done:,}/{total:,} {unit}" if total else f"{done:,} {unit}"
        n = STAGES.index(body["stage"]) + 1 if body["stage"] in STAGES else 0
        lines.append(f"stage {n}/{len(STAGES)}: {body['stage']}, {progress}".rstrip())
    if body.get("eta_s") is not None and body["state"] == "running":
        lines.append(f"time left: about {_duration(body['eta_s'])}")
    plan = body.get("plan")
    if plan:
        lines.append(f"plan: {plan['recipe']['name']} recipe on {plan['device']}, about "
                     f"{_duration(plan['estimate_s'])}, download {plan['download_bytes'] / 1e6:,.0f}"
                     f" MB, store {plan['store_bytes'] / 1e6:,.0f} MB")
    if body.get("error"):
        lines.append(f"error ({body['error']['code']}): {body['error']['message']}")
    for c in (body.get("summary") or {}).get("categories", []):
        lines.append(f"  {c['text']}")
    return lines


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def follow(args, token, interval_s=0.5):
    """Poll GET /v1/setup with a progress bar until the setup ends; returns the last body."""
    bar, stage = None, None
    while True:
        status, body = _request("GET", args, token)
        if status != 200:
            return body
        if body.get("stage") != stage:
            if bar is not None:
                bar.close()
            stage = body.get("stage")
            bar = tqdm(total=body.get("total"), desc=stage or "starting", unit=body.get("unit") or "it",
                       file=sys.stderr, dynamic_ncols=True)
        if bar is not None:
            if body.get("total") != bar.total:
                bar.total = body.get("total")
            bar.n = body.get("done") or 0
            bar.set_postfix_str(f"eta {_duration(body['eta_s'])}" if body.get("eta_s") else "")
            bar.refresh()
        if body["state"] != "running":
            if bar is not None:
                bar.close()
            return body
        time.sleep(interval_s)


def parse_args(argv):
    """Arguments of `simclip setup` (and of its `run` job)."""
    from simclip import DEFAULT_PORT, ClassifierOptions

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "run":
        p = argparse.ArgumentParser(prog="python -m simclip_train.setup run",
                                    description="the setup job (started by simclip-server)")
        p.add_argument("run")
        p.add_argument("--state-dir", required=True)
        p.add_argument("--data-dir", required=True)
        p.add_argument("--recipe", choices=sorted(RECIPES), required=True)
        p.add_argument("--parent-pid", type=int, default=0)
        p.add_argument("--shard-size", type=int, default=EmbedConfig.shard_size,
                       help="memes per resumable embedding shard")
        p.add_argument("--encoder-ms", type=float, default=None,
                       help="the server's measured encoder cost per meme (plans before the "
                            "backbone is built)")
        p.add_argument("--ocr-ms", type=float, default=None,
                       help="the server's measured OCR cost per meme")
        p.add_argument("--embed-dim", type=int, default=None, help="the backbone's embedding size")
        ClassifierOptions.add_arguments(p, calibration=False)
        return p.parse_args(argv)
    p = argparse.ArgumentParser(prog="simclip setup",
                                description="set up protection: the running server fetches "
                                            "Harm-C, trains the harmful head and serves it")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="print the setup report and exit")
    action.add_argument("--cancel", action="store_true", help="stop a running setup")
    p.add_argument("--host", default="127.0.0.1", help="the server's address")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="the server's port")
    p.add_argument("--config-dir", help="where the pairing token lives "
                                        "(default $XDG_CONFIG_HOME/simclip)")
    p.add_argument("--no-follow", action="store_true",
                   help="start it and return (follow with --status)")
    return p.parse_args(argv)


def _read_token(config_dir):
    base = config_dir or (Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
                          / "simclip")
    path = Path(base) / "token"
    try:
        return path.read_text().strip()
    except OSError:
        raise SetupError("no_token", f"no pairing token in {path}: start `simclip-server` once "
                                     f"(it creates it), then run `simclip setup` again") from None


def main(argv=None):
    """`simclip setup [--status | --cancel]`."""
    args = parse_args(argv)
    if getattr(args, "run", None) == "run":
        return run_main(args)
    try:
        token = _read_token(args.config_dir)
        if args.status:
            _, body = _request("GET", args, token)
        elif args.cancel:
            status, body = _request("DELETE", args, token)
        else:
            status, body = _request("POST", args, token)
            if status == 409:
                print("a setup is already running; following it", file=sys.stderr)
            if status in (200, 202, 409):  # started, or one runs already: follow it
                body = body if args.no_follow else follow(args, token)
    except SetupError as e:
        print(f"simclip setup: {e}", file=sys.stderr)
        return 2
    if set(body) == {"error"}:
        print(f"simclip setup: {body['error']['message']} ({body['error']['code']})",
              file=sys.stderr)
        return 1
    print("\n".join(format_report(body)))
    warning = random_weights_warning(body.get("backbone") or "")
    if warning:
        print(warning, file=sys.stderr)
    return 1 if body.get("state") == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
