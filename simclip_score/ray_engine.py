"""The Ray engine: the same stages on a Ray cluster, through Ray Data (the sole importer of ray).

    inputs (ids + where the bytes are) ──> ray.data.from_items
      1. hash    map_batches, CPU tasks: read the bytes, sha256           ──> driver: one
                 representative per sha256, its duplicates listed beside it (computed once)
      2. read    map_batches, CPU tasks over the cluster's cores: read, decode with the
                 Predictor's safe decoder, OCR; pictures travel as raw RGB (Arrow binary)
      3. encode  map_batches, an actor pool holding the model: one actor per GPU (or CPU
                 actors), `batch_size` pictures per call; one row per input, duplicates too
      4. write   Dataset.write_parquet (a folder of part files), or rows streamed to the
                 driver for JSONL
    Ray Data streams between the stages with backpressure: decoded pictures never pile up
    faster than the encoders take them.

Step 2 reads each representative's bytes a second time (cheap for files; an URL is fetched
twice): the first pass keeps only hashes, so the driver never holds the corpus.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .output import is_jsonl, rows_to_table
from .sources import Item, SourceError
from .work import (
    Reader,
    ScoreConfig,
    StageError,
    classify_batch,
    decode_and_read,
    make_row,
    pack_picture,
    read_and_hash,
    source_error,
    unpack_picture,
)

logger = logging.getLogger(__name__)

_READERS: dict[str, Reader] = {}  # per worker process: OCR spec -> Reader (built once)


def _get_reader(ocr_spec: str) -> Reader:
    if ocr_spec not in _READERS:
        from .ocr import build_ocr_engine

        _READERS[ocr_spec] = Reader(build_ocr_engine(ocr_spec))
    return _READERS[ocr_spec]


def _item(row: dict[str, Any]) -> Item:
    return Item(row["id"], path=row["path"], url=row["url"], tar=row["tar"],
                member=row["member"], data=row["data"])


def hash_batch(batch: Any) -> Any:
    """Stage 1: id, sha256 (null when unreadable), error, error_message."""
    import pyarrow as pa

    out: dict[str, list[Any]] = {"id": [], "sha256": [], "error": [], "error_message": []}
    for row in batch.to_pylist():
        sha256 = code = message = None
        try:
            _, sha256 = read_and_hash(_item(row))
        except SourceError as e:
            code, message = e.code, str(e)
        out["id"].append(row["id"])
        out["sha256"].append(sha256)
        out["error"].append(code)
        out["error_message"].append(message)
    return pa.table(out)


PREPARED_SCHEMA_FIELDS = (("id", "string"), ("sha256", "string"), ("text", "string"),
                          ("error", "string"), ("error_message", "string"))


def prepare_batch(batch: Any, ocr_spec: str) -> Any:
    """Stage 2: read, decode, OCR; a picture as raw RGB bytes + sizes, or an error."""
    import pyarrow as pa

    reader = _get_reader(ocr_spec)
    cols: dict[str, list[Any]] = {k: [] for k in ("id", "sha256", "dups", "text", "pixels",
                                                  "sizes", "error", "error_message")}
    for row in batch.to_pylist():
        sha256, text, pixels, sizes = row["sha256"], None, None, None
        code, message = row["error"], row["error_message"]
        if code is None:
            try:
                try:
                    data, sha256 = read_and_hash(_item(row))
                except SourceError as e:
                    raise source_error(e) from e
                image, text = decode_and_read(reader, data)
                pixels, sizes = pack_picture(image)
            except StageError as e:
                code, message = e.code, str(e)
        for key, value in (("id", row["id"]), ("sha256", sha256), ("dups", row["dups"]),
                           ("text", text), ("pixels", pixels), ("sizes", sizes),
                           ("error", code), ("error_message", message)):
            cols[key].append(value)
    return pa.table({**cols, "dups": pa.array(cols["dups"], pa.list_(pa.string())),
                     "pixels": pa.array(cols["pixels"], pa.large_binary()),
                     "sizes": pa.array(cols["sizes"], pa.list_(pa.int32()))})


class _TextGiven:
    """The encoder actors' OCR engine: none (the text comes from stage 2), under the identity
    of the run's engine, so the actor's Predictor.identity is the driver's."""

    name = "none"

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def __call__(self, image: Any) -> str:
        return ""


class EncoderStage:
    """Stage 3 (a Ray actor): holds the model; prepared pictures -> output rows."""

    def __init__(self, config: dict[str, Any], ocr_identity: str, categories: list[str],
                 model: str, identity: str) -> None:
        self.predictor = ScoreConfig(**config).load_predictor(ocr=_TextGiven(ocr_identity))
        self.categories = categories
        self.model = model
        self.identity = identity
        if self.predictor.identity != identity:
            raise RuntimeError(f"the encoder actor's model ({self.predictor.identity}) is not "
                               f"the driver's ({identity}): other weights on this node?")

    def __call__(self, batch: Any) -> Any:
        """Prepared rows -> output rows (a pyarrow Table), one per input, duplicates too."""
        rows = batch.to_pylist()
        ok = [i for i, r in enumerate(rows) if r["error"] is None]
        outcomes: dict[int, Any] = {}
        if ok:
            images = [unpack_picture(rows[i]["pixels"], rows[i]["sizes"]) for i in ok]
            results = classify_batch(self.predictor, images, [rows[i]["text"] for i in ok])
            for k, i in enumerate(ok):
                outcomes[i] = results if isinstance(results, StageError) else results[k]
        out = []
        for i, r in enumerate(rows):
            outcome = outcomes.get(i) or StageError(r["error"], r["error_message"] or "")
            for item_id in [r["id"], *(r["dups"] or [])]:
                out.append(make_row(item_id, r["sha256"], outcome, self.model, self.identity))
        return rows_to_table(out, self.categories)


def init_ray(address: str | None) -> Any:
    """Connect to the cluster at `address`, or start Ray on this machine; reuse a connection."""
    import ray
    import ray.data  # noqa: F401 (ray.data.* below)

    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING)
    return ray


def _count_gpus(ray: Any) -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def run_ray(config: ScoreConfig, items: list[Item], out: str, categories: list[str], model: str,
            identity: str, ocr_identity: str, ray_address: str | None = None, encoders: int = 0,
            cpu_batch: int = 16, encoder_cpus: float | None = None,
            emit_jsonl: Any = None) -> list[dict[str, Any]]:
    """Score `items` on Ray and write them to `out`; returns the rows written in this run.

    Args:
        config: the run's options (rebuilt in every actor).
        items: the inputs not yet in `out`.
        out: a Parquet dataset folder (Ray's writer) or a .jsonl file (rows go to `emit_jsonl`).
        categories, model, identity: the driver's Predictor's (the schema and two columns).
        ocr_identity: the driver's OCR engine's identity (the actors run no OCR).
        ray_address: an existing cluster ('auto', 'ray://host:10001'...); None starts Ray here.
        encoders: encoder actors; 0: one per GPU in the cluster, or 1 without GPUs.
        cpu_batch: inputs per decode + OCR task.
        encoder_cpus: CPUs reserved per encoder actor (default: 1 with GPUs, else 0, as the
            local engine's encoder thread shares the cores with OCR).
        emit_jsonl: for a .jsonl `out`, called with each list of rows.
    """
    ray = init_ray(ray_address)
    if not items:
        return []
    gpus = _count_gpus(ray) if config.device in (None, "cuda") else 0
    use_gpu = gpus > 0 and config.device != "cpu"
    n_encoders = encoders or (gpus if use_gpu else 1)
    if encoder_cpus is None:
        encoder_cpus = 1.0 if use_gpu else 0.0
    if use_gpu and config.device is None:
        config = ScoreConfig(**{**config.as_dict(), "device": "cuda"})
    records = [item.to_record() for item in items]
    blocks = max(1, min(len(records) // max(1, cpu_batch), 4096))

    # 1. hash, then one representative per sha256
    hashed = ray.data.from_items(records, override_num_blocks=blocks).map_batches(
        hash_batch, batch_size=cpu_batch * 4, batch_format="pyarrow", num_cpus=1)
    plan = hashed.to_arrow_refs()
    reps: dict[str, dict[str, Any]] = {}
    by_id = {r["id"]: r for r in records}
    work = []
    for table in ray.get(plan):
        for h in table.to_pylist():
            record = {**by_id[h["id"]], "sha256": h["sha256"], "error": h["error"],
                      "error_message": h["error_message"], "dups": []}
            if h["sha256"] is not None and h["sha256"] in reps:
                reps[h["sha256"]]["dups"].append(h["id"])
                continue
            if h["sha256"] is not None:
                reps[h["sha256"]] = record
            work.append(record)
    del by_id

    # 2. decode + OCR on CPU tasks, 3. encoders on actors
    prepared = ray.data.from_items(work, override_num_blocks=max(1, min(len(work) // max(1, cpu_batch), 4096)))
    prepared = prepared.map_batches(prepare_batch, batch_size=cpu_batch, batch_format="pyarrow",
                                    fn_kwargs={"ocr_spec": config.ocr}, num_cpus=1)
    scored = prepared.map_batches(
        EncoderStage, batch_size=config.batch_size, batch_format="pyarrow",
        fn_constructor_kwargs={"config": config.as_dict(), "ocr_identity": ocr_identity,
                               "categories": categories,
                               "model": model, "identity": identity},
        compute=ray.data.ActorPoolStrategy(size=n_encoders),
        num_gpus=1 if use_gpu else 0, num_cpus=encoder_cpus)

    # 4. write
    if is_jsonl(out):
        written = []
        for table in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            rows = table.to_pylist()
            emit_jsonl(rows)
            written.extend(rows)
    else:
        import pyarrow.parquet as pq

        folder = Path(out)
        before = set(folder.rglob("*.parquet")) if folder.exists() else set()
        scored.write_parquet(str(folder))
        written = []
        for path in sorted(set(folder.rglob("*.parquet")) - before):
            written.extend(pq.read_table(path).to_pylist())
    logger.info("Ray Data stats (tasks per node, throughput per stage):\n%s", scored.stats())
    return written
