"""`simclip embed`: run the frozen encoders once over a dataset and cache the embeddings.

One safetensors file per (dataset, backbone, encoder precision, text source, split[, augmentation]):

    CACHE/<dataset>/<backbone id>/<precision>/<text source>/<split>[-aug<N>].safetensors

Embeddings of different encoder precisions (int8, fp32, fp16, bf16: `load_backbone`) are never
mixed: an int8 run never reuses an fp32 cache, nor the reverse. The precision is in the path and
the metadata, and a file whose recorded precision differs is recomputed.

holding `image` (N, D), `text` (N, D) and, with augmentation, `image_aug` (N, A, D), plus
metadata: the backbone, the example ids and texts, a fingerprint of the split (size, mtime
and sha256 of its annotation files, size and mtime of every image) and, with augmentation, the
RandAugment recipe. A cache whose fingerprint or recipe no longer matches is recomputed, with a
warning, never reused.

Augmentation views follow the authors' recipe: torchvision's RandAugment with 6 operations at
magnitude 9 (`RANDAUGMENT` in config.py); view 0 is always the original image.

Dataset images are local files, decoded leniently as the authors did (PIL's
LOAD_TRUNCATED_IMAGES): a truncated file is decoded as far as it goes and counted
(`truncated_images` in the cache metadata, and the log); a file that does not decode even so is
left out of the cache and counted (`skipped_images`), so one bad file never aborts a run.

Work is written in shards (CACHE/.../<split>.parts/shard-NNNNN.safetensors, each atomically),
so a killed run resumes where it stopped; the shards are merged into the final file at the end.
"""

import argparse
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from simclip import DECODE_VERSION, ClassifierOptions, ImageError, get_ocr_engine, load_backbone, random_weights_warning
from simclip.backbone import get_backbone_id, get_precision
from simclip.ocr import is_rapidocr_available

from .config import RANDAUGMENT, RECOMMENDED_AUGMENT, TEXT_SOURCES, EmbedConfig, embed_config_from_args
from .datasets import (
    ReadStats,
    check_dataset,
    decode_dataset_image,
    get_dataset,
    get_dataset_root,
    get_split_paths,
    read_split,
)

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def get_text_source(text, ocr_name=None):
    """'dataset', or 'ocr-<engine>' (each OCR engine gets its own cache)."""
    if text not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {text!r}; available: {', '.join(TEXT_SOURCES)}")
    return "dataset" if text == "dataset" else f"ocr-{ocr_name}"


def get_cache_path(cache_dir, dataset, backbone_id, text_source, split, augment=0,
                   precision="fp32"):
    """Where the embeddings of one split live (`precision`: the encoders', see load_backbone)."""
    suffix = f"-aug{augment}" if augment else ""
    return (Path(cache_dir) / _slug(dataset.partition(":")[0]) / _slug(backbone_id) /
            _slug(precision) / _slug(text_source) / f"{split}{suffix}.safetensors")


def get_augment_recipe(augment):
    """The augmentation recipe a cache with `augment` views is made with (None without views);
    part of the cache identity, so views made another way are never reused."""
    if not augment:
        return None
    return f"torchvision.RandAugment(num_ops={RANDAUGMENT['num_ops']}, " \
           f"magnitude={RANDAUGMENT['magnitude']})"


def fingerprint_split(spec, root, split, examples):
    """A digest of everything the embeddings depend on: the split's files and its images."""
    h = hashlib.sha256()
    for path in get_split_paths(spec, root, split):
        h.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    h.update(split.encode())
    for ex in examples:
        try:
            st = ex.image.stat()
            h.update(f"{ex.id}|{ex.image.name}|{st.st_size}|{st.st_mtime_ns}|{ex.text}\n".encode())
        except OSError:
            h.update(f"{ex.id}|{ex.image.name}|missing\n".encode())
    return h.hexdigest()


def read_cache_metadata(path):
    """The metadata dict of a cache file (None when unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("simclip_cache", "null"))
    except (OSError, ValueError):
        return None


def load_cache(path):
    """Tensors and metadata of a cache file: {'image', 'text', ['image_aug'], 'meta'}."""
    out = dict(load_file(str(path)))
    out["meta"] = read_cache_metadata(path)
    return out


def _save_atomic(tensors, path, meta):
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"simclip_cache": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)


def _augment_views(image, n, seed):
    """`n` RandAugment views of a PIL image (the authors' recipe, `RANDAUGMENT`), seeded so a
    resumed run draws the same views."""
    from torchvision.transforms import RandAugment

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        aug = RandAugment(**RANDAUGMENT)
        return [aug(image) for _ in range(n)]


def _open_parts(path, state):
    """The folder of `path`'s finished shards, ready to resume: emptied when its progress file
    records other settings (`state`), then stamped with `state`."""
    parts = path.with_name(path.name.removesuffix(".safetensors") + ".parts")
    progress_file = parts / "progress.json"
    if parts.is_dir():
        try:
            old = json.loads(progress_file.read_text())
        except (OSError, ValueError):
            old = None
        if old != state:
            logger.warning("discarding partial embeddings in %s: made for another dataset "
                           "version or settings", parts)
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    tmp = progress_file.with_name("progress.json.tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    tmp.replace(progress_file)
    return parts


def _shard_path(parts, k):
    return parts / f"shard-{k:05d}.safetensors"


def _embed_shard(backbone, chunk, start, ocr, batch_size, augment, seed, bar):
    """Embed one shard's examples (`start`: the position of its first in the split, which
    seeds its augmentation views) -> (tensors, shard metadata)."""
    img, txt, aug, texts, ids = [], [], [], [], []
    truncated, skipped = [], []
    for i in range(0, len(chunk), batch_size):
        batch, images, positions = [], [], []
        for j, ex in enumerate(chunk[i:i + batch_size]):
            try:
                image, was_truncated = decode_dataset_image(ex.image)
            except (ImageError, OSError) as e:
                logger.warning("%s: left out, the image does not decode (%s)", ex.image, e)
                skipped.append({"id": ex.id, "image": ex.image.name, "error": str(e)})
                continue
            if was_truncated:
                logger.warning("%s: truncated file, decoded leniently", ex.image)
                truncated.append(ex.id)
            batch.append(ex)
            images.append(image)
            positions.append(start + i + j)
        bar.update(len(chunk[i:i + batch_size]))
        if not batch:
            continue
        batch_texts = [ocr(im) if ocr is not None else ex.text
                       for ex, im in zip(batch, images)]
        img.append(backbone.encode_images(images))  # (b, D)
        txt.append(backbone.encode_texts(batch_texts))  # (b, D)
        if augment:
            views = [backbone.encode_images(_augment_views(im, augment, seed * 1_000_003 + pos))
                     for pos, im in zip(positions, images)]
            aug.append(torch.stack(views))  # (b, A, D)
        texts += batch_texts
        ids += [ex.id for ex in batch]
    dim = backbone.info.embed_dim
    tensors = {"image": torch.cat(img) if img else torch.zeros(0, dim),
               "text": torch.cat(txt) if txt else torch.zeros(0, dim)}
    if augment:
        tensors["image_aug"] = torch.cat(aug) if aug else torch.zeros(0, augment, dim)
    return tensors, {"texts": texts, "ids": ids, "truncated": truncated, "skipped": skipped}


def _merge_shards(parts, n_shards, dim):
    """The shards' tensors concatenated in order, and their metadata lists joined ->
    (tensors, {"texts", "ids", "truncated", "skipped"})."""
    merged, lists = {}, {"texts": [], "ids": [], "truncated": [], "skipped": []}
    for k in range(n_shards):
        shard = _shard_path(parts, k)
        for key, value in load_file(str(shard)).items():
            merged.setdefault(key, []).append(value)
        shard_meta = read_cache_metadata(shard)
        for key, values in lists.items():
            values += shard_meta[key]
    tensors = {key: torch.cat(v) for key, v in merged.items()}
    if not tensors:
        tensors = {"image": torch.zeros(0, dim), "text": torch.zeros(0, dim)}
    return tensors, lists


def embed_split(backbone, examples, path, fingerprint, text_source, ocr=None,
                batch_size=EmbedConfig.batch_size, shard_size=EmbedConfig.shard_size, augment=0,
                seed=0, progress=True, on_shard=None):
    """Embed `examples` into the cache file `path`, resuming from finished shards.

    Args:
        backbone: a loaded `Backbone`.
        examples: the split's `Example` list.
        path: the cache file to write.
        fingerprint: `fingerprint_split(...)` of the split; shards of another fingerprint are
            discarded.
        text_source: 'dataset' (the examples' text) or 'ocr-<engine>' (`ocr(image)`).
        ocr: the OCR engine when text_source is OCR.
        augment: RandAugment views per image (0: none).
        on_shard: optional callback(shard_index) after each shard is written (tests use it
            to simulate an interruption).

    An image that decodes only leniently is embedded and listed in the metadata's
    `truncated_images`; one that does not decode is left out (`skipped_images`, with the
    error), so the cache's `ids` are the examples it holds, in order.

    Returns:
        {'computed': examples encoded now, 'reused': examples taken from earlier shards}.
    """
    path = Path(path)
    state = {"version": CACHE_VERSION, "decode_version": DECODE_VERSION,
             "fingerprint": fingerprint, "backbone": backbone.info.id,
             "precision": backbone.info.precision,
             "text_source": text_source, "augment": augment,
             "augment_recipe": get_augment_recipe(augment), "shard_size": shard_size,
             "seed": seed}
    parts = _open_parts(path, state)
    n_shards = (len(examples) + shard_size - 1) // shard_size
    stats = {"computed": 0, "reused": 0}
    bar = tqdm(total=len(examples), desc=f"embed {path.parent.name}/{path.stem}", unit="meme",
               disable=not progress, file=sys.stderr)
    for k in range(n_shards):
        chunk = examples[k * shard_size:(k + 1) * shard_size]
        shard = _shard_path(parts, k)
        if shard.is_file():
            stats["reused"] += len(chunk)
            bar.update(len(chunk))
            continue
        tensors, shard_meta = _embed_shard(backbone, chunk, k * shard_size, ocr, batch_size,
                                           augment, seed, bar)
        _save_atomic(tensors, shard, shard_meta)
        stats["computed"] += len(chunk)
        if on_shard is not None:
            on_shard(k)
    bar.close()

    tensors, lists = _merge_shards(parts, n_shards, backbone.info.embed_dim)
    truncated, skipped = lists["truncated"], lists["skipped"]
    meta = {**state, "ids": lists["ids"], "texts": lists["texts"], "truncated_images": truncated,
            "skipped_images": skipped,
            "backbone_info": {"model": backbone.info.model, "pretrained": backbone.info.pretrained,
                              "embed_dim": backbone.info.embed_dim,
                              "activation": backbone.info.activation,
                              "precision": backbone.info.precision},
            "random_weights": backbone.info.random_weights}
    _save_atomic(tensors, path, meta)
    shutil.rmtree(parts)
    if truncated or skipped:
        logger.warning("%s: %d truncated image(s) decoded leniently, %d undecodable image(s) "
                       "left out", path, len(truncated), len(skipped))
    return stats


class EmbeddingCache:
    """Finds or computes the cached embeddings of dataset splits for one backbone and text source.

    The backbone and OCR engine are built only if some split has to be (re)computed.
    `cache_dir` None means DATA_DIR/embeddings.
    """

    def __init__(self, cache_dir, data_dir, model=None, pretrained=None, device=None,
                 ocr=EmbedConfig.ocr, text=EmbedConfig.text, augment=EmbedConfig.augment,
                 batch_size=EmbedConfig.batch_size, shard_size=EmbedConfig.shard_size, seed=0,
                 weights_cache_dir=None, progress=True, quick_gelu=EmbedConfig.quick_gelu,
                 precision=None):
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir) if cache_dir else self.data_dir / "embeddings"
        self.model, self.pretrained, self.device = model, pretrained, device
        self.weights_cache_dir = weights_cache_dir
        self.quick_gelu = quick_gelu
        self.backbone_id = get_backbone_id(model, pretrained, quick_gelu=quick_gelu)
        self.precision = get_precision(precision, device)  # None: the device's default
        self.text, self.ocr_name = text, ocr
        self._ocr_engine = None
        self.augment, self.batch_size, self.shard_size = augment, batch_size, shard_size
        self.seed, self.progress = seed, progress
        self._backbone = None

    @classmethod
    def from_config(cls, cfg: EmbedConfig, seed=0, progress=True):
        """The cache an EmbedConfig describes; `seed` picks the augmentation views."""
        return cls(cfg.cache_dir, cfg.data_dir, model=cfg.model, pretrained=cfg.pretrained,
                   device=cfg.device, ocr=cfg.ocr, text=cfg.text, augment=cfg.augment,
                   batch_size=cfg.batch_size, shard_size=cfg.shard_size, seed=seed,
                   weights_cache_dir=cfg.weights_cache_dir, progress=progress,
                   quick_gelu=cfg.quick_gelu, precision=cfg.precision)

    def get_backbone(self):
        """The frozen backbone (built on first use)."""
        if self._backbone is None:
            self._backbone = load_backbone(self.model, self.pretrained,
                                           device=self.device, cache_dir=self.weights_cache_dir,
                                           quick_gelu=self.quick_gelu, precision=self.precision)
            if self._backbone.info.id != self.backbone_id:
                self.backbone_id = self._backbone.info.id
        return self._backbone

    def get_ocr(self):
        """The OCR engine (built on first use)."""
        if self._ocr_engine is None:
            self._ocr_engine = get_ocr_engine(self.ocr_name)
        return self._ocr_engine

    @property
    def text_source(self):
        """The cache's text source name ('dataset' or 'ocr-<engine>')."""
        if self.text == "dataset":
            return "dataset"
        name = self.ocr_name
        if name == "auto":
            name = "rapidocr" if is_rapidocr_available() else "tesseract"
        return get_text_source("ocr", name)

    def get(self, name, split, augment=None, force=False, on_shard=None):
        """(examples, cache dict) of one split, computing the cache if missing or stale.

        The examples are those the cache holds (an image that does not decode is left out);
        the cache dict's 'read_stats' is the reader's `ReadStats.to_dict()` (rows read,
        skipped, adjusted) and its 'meta' lists truncated and skipped images.
        """
        augment = self.augment if augment is None else augment
        if split != "train":
            augment = 0
        spec = get_dataset(name)
        check_dataset(self.data_dir, name, (split,))  # the fetch command, not a bare path
        root = get_dataset_root(self.data_dir, name)
        read_stats = ReadStats()
        examples = read_split(name, root, split, stats=read_stats)
        fp = fingerprint_split(spec, root, split, examples)
        path = get_cache_path(self.cache_dir, spec.name, self.backbone_id, self.text_source,
                              split, augment, precision=self.precision)
        meta = read_cache_metadata(path) if path.is_file() else None
        if meta is not None and not force:
            why = self._stale_reason(meta, fp, augment, self.precision)
            if why is None:
                cache = load_cache(path)
                cache["read_stats"] = read_stats.to_dict()
                return self._held(examples, cache), cache
            logger.warning("embedding cache %s is stale (%s); recomputing", path, why)
        path.parent.mkdir(parents=True, exist_ok=True)
        if force and path.is_file():
            path.unlink()
        ocr = self.get_ocr() if self.text == "ocr" else None
        stats = embed_split(self.get_backbone(), examples, path, fp, self.text_source, ocr=ocr,
                            batch_size=self.batch_size, shard_size=self.shard_size,
                            augment=augment, seed=self.seed, progress=self.progress,
                            on_shard=on_shard)
        logger.info("%s %s: embedded %d, resumed %d -> %s", name, split, stats["computed"],
                    stats["reused"], path)
        cache = load_cache(path)
        cache["stats"] = stats
        cache["read_stats"] = read_stats.to_dict()
        return self._held(examples, cache), cache

    @staticmethod
    def _stale_reason(meta, fingerprint, augment, precision):
        """Why a cache file cannot be reused (None: it can)."""
        if meta.get("version") != CACHE_VERSION:
            return f"cache format {meta.get('version')}, this version writes {CACHE_VERSION}"
        if meta.get("decode_version") != DECODE_VERSION:
            return (f"pictures decoded by rules {meta.get('decode_version') or 1}, this version "
                    f"decodes by rules {DECODE_VERSION} (orientation, colour)")
        if meta.get("precision") != precision:
            return (f"embedded at {meta.get('precision') or 'an unrecorded precision'}, the "
                    f"encoders now run at {precision}")
        if meta.get("fingerprint") != fingerprint:
            return "the dataset files changed"
        if meta.get("augment_recipe") != get_augment_recipe(augment):
            return (f"augmentation views made with {meta.get('augment_recipe') or 'an older recipe'}"
                    f", the recipe is now {get_augment_recipe(augment)}")
        return None

    @staticmethod
    def _held(examples, cache):
        """The examples the cache holds, in its order (undecodable images are left out)."""
        ids = cache["meta"]["ids"]
        if len(ids) == len(examples):
            return examples
        by_id = {ex.id: ex for ex in examples}
        return [by_id[i] for i in ids if i in by_id]


def add_cache_args(parser):
    """--data-dir, --cache-dir, --text, --augment, --batch-size: shared by embed, train and
    quickstart; defaults from `EmbedConfig`."""
    d = EmbedConfig
    parser.add_argument("--data-dir", required=True,
                        help="folder holding one sub-folder per dataset (see docs/reproduce.md)")
    parser.add_argument("--cache-dir", default=d.cache_dir,
                        help="embedding cache (default: DATA_DIR/embeddings)")
    parser.add_argument("--text", choices=TEXT_SOURCES, default=d.text,
                        help="caption source: 'dataset', the dataset's transcription (as the "
                             "paper), or 'ocr', our OCR (what the server sees); default %(default)s")
    parser.add_argument("--augment", type=int, default=d.augment,
                        help=f"RandAugment views (6 ops, magnitude 9, as the authors) cached per "
                             f"training image (default {d.augment}; {RECOMMENDED_AUGMENT} "
                             f"recommended, see docs/reproduce.md)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size,
                        help=f"encoder batch size (default {d.batch_size})")


def parse_args(argv):
    """Arguments of `simclip embed`."""
    p = argparse.ArgumentParser(prog="simclip embed",
                                description="cache frozen-encoder embeddings of a dataset")
    p.add_argument("dataset", help="dataset name, e.g. harmeme-c (see `simclip datasets list`)")
    p.add_argument("--splits", default="train,val,test", help="comma-separated splits")
    p.add_argument("--shard-size", type=int, default=EmbedConfig.shard_size,
                   help=f"memes per resumable shard (default {EmbedConfig.shard_size})")
    p.add_argument("--force", action="store_true", help="recompute even a valid cache")
    add_cache_args(p)
    ClassifierOptions.add_arguments(p, calibration=False)
    return p.parse_args(argv)


def main(argv=None):
    """`simclip embed DATASET --data-dir D`: write the embedding cache of every split."""
    args = parse_args(argv)
    try:  # every split is there before the backbone is built (minutes for ViT-L)
        check_dataset(args.data_dir, args.dataset, args.splits.split(","))
    except ValueError as e:
        print(f"simclip embed: {e}", file=sys.stderr)
        return 2
    cache = EmbeddingCache.from_config(embed_config_from_args(args))
    for split in args.splits.split(","):
        try:
            _, c = cache.get(args.dataset, split, force=args.force)
        except (ValueError, OSError) as e:
            print(f"simclip embed: {e}", file=sys.stderr)
            return 2
        print(f"{args.dataset} {split}: {c['image'].shape[0]} memes, "
              f"{cache.backbone_id}, text={cache.text_source}")
        for line in describe_losses(c):
            print(f"  {line}")
    warning = random_weights_warning(cache.backbone_id)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def describe_losses(cache):
    """Lines saying which rows the reader skipped or adjusted and which images were truncated
    or left out (nothing when every row and image was used as is)."""
    read, meta = cache.get("read_stats") or {}, cache.get("meta") or {}
    lines = []
    for why, n in (read.get("skipped") or {}).items():
        lines.append(f"skipped {n} row(s): {why} ({', '.join(read['skipped_lines'][:10])})")
    for what, n in (read.get("adjusted") or {}).items():
        lines.append(f"read {n} row(s) with an adjustment: {what}")
    if meta.get("truncated_images"):
        lines.append(f"{len(meta['truncated_images'])} truncated image(s) decoded leniently: "
                     f"{', '.join(meta['truncated_images'][:10])}")
    if meta.get("skipped_images"):
        lines.append(f"{len(meta['skipped_images'])} image(s) left out, they do not decode: "
                     f"{', '.join(s['image'] for s in meta['skipped_images'][:10])}")
    return lines
