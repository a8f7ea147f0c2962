"""The Ray engine: the same stages on a Ray cluster, through Ray Data (the sole importer of ray).

    units (sources, a table's row groups) ──> ray.data.read_datasource(ScoreDatasource)
      0. list    read tasks (a unit that lists many inputs alone, runs of one-input units
                 such as file arguments together; a few at a time) stream the inputs (ids +
                 where the bytes are, or the bytes of a table cell or a shard member) in
                 blocks of `cpu_batch`, one reader call each; the ids already in --out or met
                 before are left out at the registry; each unit's counts (inputs, skipped
                 members, unreadable parts) go to the registry
      1. read    map_batches, an actor pool over the cluster's cores (one reader per CPU,
                 each holding its OCR engine): read the bytes, sha256; the first input with a
                 sha256 claims it at the dedup registry (one small actor, one call per batch)
                 and is decoded with the Predictor's safe decoder and OCR-read; a later one is
                 only noted there. Pictures travel as raw RGB.
      2. encode  map_batches, an actor pool holding the model: one actor per GPU (or CPU
                 actors), about `batch_size` pictures per call; one row per claimed input
      3. write   Dataset.write_parquet (a folder of part files, one per encoder call), or rows
                 streamed to the driver for JSONL
      4. copies  the driver writes the rows of the duplicates the registry noted, copied from
                 their first input's row (one more part file, or JSONL lines, a round)
    Ray Data streams between the stages with backpressure: inputs are listed and decoded
    pictures pile up no faster than the encoders take them. The driver holds the units, the
    ids of --out (resume) and counts, never the inputs or the rows. One pass: every input is
    read once, and identical images are decoded, read and encoded once.

    Rounds: Ray Data keeps one stats record per block in the driver until its dataset ends
    (ray-project/ray#66016), a few KB per `cpu_batch` inputs. A run is therefore a row of
    datasets of about `round_inputs` inputs each (`plan_round`: units by their estimated
    inputs, a big one cut into windows), with one dedup registry across them: the driver's
    memory is bounded by one round's records, whatever the corpus. Each round starts its
    actor pools again (the model loads once a round).

    Blocks: between the stages a Ray Data row is a packed batch (`pack`: one list<struct>
    cell holding a listing block's inputs, a reader call's pictures or an encoder call's
    rows), and the run's target block size is one byte, so that each packed row is a block of
    its own: Ray Data neither joins a folder's inputs into one block for one reader nor slices
    a call's output into one block per row. The driver keeps stats for every block an operator
    outputs (Ray 2.60 has no per-operator block size in its public API); one block per
    `cpu_batch` inputs and per call keeps that small (docs/bench.md, issue 18).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import uuid
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from simclip import trim_heap

from .dedup import DedupRegistry
from .output import is_jsonl, read_rows, rows_to_table
from .sources import Item, SourceError, SourceStats, Unit, estimate_inputs, expand_window
from .work import (
    Reader,
    ScoreConfig,
    StageError,
    classify_batch,
    decode_and_read,
    deferred_signals,
    internal_error,
    make_row,
    pack_picture,
    read_and_hash,
    source_error,
    unpack_picture,
)

logger = logging.getLogger(__name__)

BLOCK_BYTES = 16 * 1024 * 1024  # a block ends early once its bytes (table cells, members) reach this
ONE_INPUT_KINDS = ("file", "url", "error")  # units that are one input (or one error row) each
UNITS_PER_TASK = 256  # one-input units per read task
ROW_BLOCKS = 1  # bytes: the run's Ray Data target block size: every (packed) row is a block
PACKED = "batch"  # the one column of a packed block
ROUND_INPUTS = 50_000  # inputs per Ray Data dataset (`plan_round`): the driver's memory bound


def pack(table: Any) -> Any:
    """A pyarrow Table's rows as one row: a Table of one row whose one column, PACKED, is a
    large_list<struct> cell holding the rows (zero copies). An empty Table gives a Table of no
    rows, so that Ray Data calls no stage for it (the column's type still names the rows')."""
    import pyarrow as pa

    rows = pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns],
                                      fields=list(table.schema))
    packed = pa.table({PACKED: pa.LargeListArray.from_arrays(
        pa.array([0, len(rows)], pa.int64()), rows)})
    return packed if table.num_rows else packed.slice(0, 0)


def unpack(packed: Any) -> Any:
    """The rows of a Table of packed rows (`pack`), in order, as one pyarrow Table."""
    import pyarrow as pa

    column = packed.column(PACKED)
    schema = pa.schema(list(column.type.value_type))
    return pa.concat_tables([pa.Table.from_struct_array(chunk.flatten())
                             for chunk in column.chunks], promote_options="none") \
        if column.num_chunks else schema.empty_table()


def _input_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("path", pa.binary()), ("url", pa.string()),
                      ("data", pa.large_binary()), ("error", pa.string()), ("code", pa.string())])


def _prepared_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("sha256", pa.string()), ("text", pa.string()),
                      ("pixels", pa.large_binary()), ("sizes", pa.list_(pa.int32())),
                      ("error", pa.string()), ("error_message", pa.string())])


def _input_block(items: list[Item], registry: Any) -> Any:
    """The new inputs among `items` (the registry leaves out --out's and repeated ids) as a
    pyarrow Table of `Item.to_record` rows."""
    import pyarrow as pa
    import ray

    keep = ray.get(registry.claim_ids.remote([i.id for i in items]))
    records = [i.to_record() for i, k in zip(items, keep) if k]
    return pa.Table.from_pylist(records, schema=_input_schema())


def group_units(units: list[Unit]) -> list[list[Unit]]:
    """The read tasks' units: a unit that lists many inputs (a folder, a list, a table's row
    group, a shard, a glob) alone, consecutive one-input units (files, URLs, error units)
    together, up to UNITS_PER_TASK each. A task per file argument would start a Ray worker
    process per file (the read tasks reserve no CPU, so Ray does not queue them)."""
    tasks: list[list[Unit]] = []
    for unit in units:
        if (unit.kind in ONE_INPUT_KINDS and tasks and tasks[-1][-1].kind in ONE_INPUT_KINDS
                and len(tasks[-1]) < UNITS_PER_TASK):
            tasks[-1].append(unit)
        else:
            tasks.append([unit])
    return tasks


def plan_round(queue: deque[tuple[Unit, int]], units: Iterator[Unit], budget: int,
               row_counts: dict[str, list[int]]) -> list[Unit]:
    """The next round's units: the cut unit left at `queue`'s head by the round before, then
    units from `units` (the run's, in order, each estimated as it is reached:
    `sources.estimate_inputs`, with the tables' footers cached in `row_counts`), until their
    estimates reach `budget` inputs. A unit that does not fit whole is cut: a window of the
    inputs left in this round (`Unit.take`), and the rest (`Unit.skip`) stays in `queue` for
    the next round. A unit's last window reads to its end, so an estimate that is off changes
    a round's size, never which inputs are read. `budget` 0: every unit, in one round, none
    estimated. [] once every unit is planned.

    Ray Data keeps one stats record per block in the driver until its dataset ends
    (ray-project/ray#66016): a run of datasets of about `budget` inputs each holds one round's
    records at a time, whatever the corpus's size."""
    if budget <= 0:
        return list(units)
    planned, left = [], budget
    while left > 0:
        if not queue:
            unit = next(units, None)
            if unit is None:
                break
            queue.append((unit, 1 if unit.kind in ONE_INPUT_KINDS
                          else estimate_inputs(unit, row_counts)))
        unit, size = queue[0]
        if size <= left:
            planned.append(unit)
            queue.popleft()
            left -= size
        else:
            planned.append(replace(unit, take=left))
            queue[0] = (replace(unit, skip=unit.skip + left), size - left)
            left = 0
    return planned


def read_units(units: list[Unit], registry: Any, block_rows: int) -> Iterator[Any]:
    """A read task: the inputs of `units` in blocks of `block_rows` (fewer once their bytes
    reach BLOCK_BYTES), each block one packed row (`pack`); inputs the registry leaves out
    make a block smaller, and a block left with none is not yielded. Each unit's counts go
    to the registry at the end, in one call."""
    import ray

    items: list[Item] = []
    size = 0
    counts = []
    yielded = False

    def flush() -> Iterator[Any]:
        nonlocal yielded
        table = _input_block(items, registry)
        if table.num_rows:
            yielded = True
            yield pack(table)

    for unit in units:
        stats = SourceStats(unit.source)
        for item in expand_window(unit, stats):
            items.append(item)
            size += len(item.data or b"")
            if len(items) >= block_rows or size >= BLOCK_BYTES:
                yield from flush()
                items, size = [], 0
        counts.append(stats.as_dict())
    if items:
        yield from flush()
    if not yielded:  # an empty block all the same, whose type names the inputs' columns
        yield pack(_input_schema().empty_table())
    ray.get(registry.note_sources.remote(counts))


def make_datasource(tasks: list[list[Unit]], registry: Any, block_rows: int) -> Any:
    """A Ray Data datasource reading the run's sources: one read task per group of units
    (`group_units`), each yielding blocks of `block_rows` inputs."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class ScoreDatasource(Datasource):
        """The SOURCE arguments of `simclip score`, read by Ray's read tasks."""

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            return [ReadTask(lambda group=group: read_units(group, registry, block_rows),
                             BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None,
                                           input_files=None))
                    for group in tasks]

    return ScoreDatasource()


class ReadStage:
    """Stage 1 (a Ray actor, one per CPU): holds the OCR engine; inputs -> prepared pictures.

    An actor, not a task, so that the OCR models load once per reader and a reader's process is
    never stopped and restarted between batches (Ray stops idle task workers above its soft
    limit of one per CPU; on a small node each restart paid the imports and the OCR model load
    again).
    """

    def __init__(self, ocr_spec: str, registry: Any) -> None:
        from .ocr import build_ocr_engine

        self.reader = Reader(build_ocr_engine(ocr_spec))
        self.registry = registry

    def __call__(self, batch: Any) -> Any:
        """Packed input rows (a listing block) -> the prepared rows, packed (one block)."""
        return pack(prepare_batch(unpack(batch), self.reader, self.registry))


def prepare_batch(batch: Any, reader: Reader, registry: Any) -> Any:
    """Read, hash, claim, decode, OCR; a picture as raw RGB bytes + sizes, or an error.
    Inputs whose bytes another input claimed are dropped (the driver copies rows)."""
    import pyarrow as pa
    import ray

    loaded = []
    for row in batch.to_pylist():
        try:
            data, sha256 = read_and_hash(Item.from_record(row))
            loaded.append((row["id"], sha256, data, None))
        except SourceError as e:
            loaded.append((row["id"], None, None, source_error(e)))
        except Exception as e:  # our bug: one error row, never a failed run (as the local engine)
            logger.exception("reading %s failed", row["id"])
            loaded.append((row["id"], None, None, internal_error(e)))
    claimed = iter(ray.get(registry.claim.remote(
        [(i, s) for i, s, _, err in loaded if err is None])))
    cols: dict[str, list[Any]] = {k: [] for k in ("id", "sha256", "text", "pixels", "sizes",
                                                  "error", "error_message")}
    for item_id, sha256, data, error in loaded:
        text = pixels = sizes = None
        if error is None:
            if not next(claimed):
                continue
            try:
                image, text = decode_and_read(reader, data)
                pixels, sizes = pack_picture(image)
            except StageError as e:
                error = e
            except Exception as e:  # our bug: one error row
                logger.exception("preparing %s failed", item_id)
                error = internal_error(e)
        for key, value in (("id", item_id), ("sha256", sha256), ("text", text),
                           ("pixels", pixels), ("sizes", sizes),
                           ("error", error.code if error else None),
                           ("error_message", str(error) if error else None)):
            cols[key].append(value)
    return pa.table(cols, schema=_prepared_schema())


class _TextGiven:
    """The encoder actors' OCR engine: none (the text comes from stage 1), under the identity
    of the run's engine, so the actor's Predictor.identity is the driver's."""

    name = "none"

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def __call__(self, image: Any) -> str:
        return ""


class EncoderStage:
    """Stage 2 (a Ray actor): holds the model; prepared pictures -> output rows."""

    def __init__(self, config: dict[str, Any], ocr_identity: str, categories: list[str],
                 model: str, identity: str) -> None:
        self.batch_size = max(1, int(config.get("batch_size") or 1))
        self.predictor = ScoreConfig(**config).load_predictor(ocr=_TextGiven(ocr_identity))
        self.categories = categories
        self.model = model
        self.identity = identity
        if self.predictor.identity != identity:
            raise RuntimeError(f"the encoder actor's model ({self.predictor.identity}) is not "
                               f"the driver's ({identity}): other weights on this node?")

    def __call__(self, batch: Any) -> Any:
        """Packed prepared rows (reader calls' outputs) -> the output rows, one per row,
        packed (one block); the model sees at most `batch_size` pictures at a time."""
        rows = unpack(batch).to_pylist()
        ok = [i for i, r in enumerate(rows) if r["error"] is None]
        outcomes: dict[int, Any] = {}
        for start in range(0, len(ok), self.batch_size):
            part = ok[start:start + self.batch_size]
            images = [unpack_picture(rows[i]["pixels"], rows[i]["sizes"]) for i in part]
            results = classify_batch(self.predictor, images, [rows[i]["text"] for i in part])
            for k, i in enumerate(part):
                outcomes[i] = results if isinstance(results, StageError) else results[k]
        out = [make_row(r["id"], r["sha256"],
                        outcomes.get(i) or StageError(r["error"], r["error_message"] or ""),
                        self.model, self.identity)
               for i, r in enumerate(rows)]
        return pack(rows_to_table(out, self.categories))


def init_ray(address: str | None) -> Any:
    """Connect to the cluster at `address` (else $RAY_ADDRESS, as in a RayJob), or start Ray on
    this machine ('local': never a cluster some other program started here); reuse a
    connection this process already has.

    Ctrl-C and SIGTERM during the start are delivered once it is done (cut in the middle, Ray
    left its dashboard and runtime-env agents running), and the process's own SIGTERM handler
    is put back: `ray.init` replaces it with one that exits at once (for `simclip score`, an
    exit without the rows' message and status 143)."""
    import ray
    import ray.data  # noqa: F401 (ray.data.* below)

    if ray.is_initialized():
        return ray
    terminated = False
    with deferred_signals(), _sigterm_handler_kept():
        try:
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or "local",
                     logging_level=logging.WARNING)
        except SystemExit as e:  # Ray's own SIGTERM handler, if a Ray release sets it elsewhere
            if e.code != signal.SIGTERM:
                raise
            terminated = True
            ray.shutdown()  # stop what the start had started
    if terminated:
        signal.raise_signal(signal.SIGTERM)  # to this process's own handler, back now
    return ray


@contextlib.contextmanager
def _sigterm_handler_kept() -> Iterator[None]:
    """`ray.init` first sets a SIGTERM handler that exits at once (`sys.exit(15)`), through
    `ray._private.utils.set_sigterm_handler`: a SIGTERM during the start then cut it and left
    Ray's dashboard and runtime-env agents running (seen). Skip that call for the start, so that
    `deferred_signals` holds the SIGTERM until Ray is up and can be stopped whole."""
    try:
        from ray._private import utils
    except ImportError:
        yield
        return
    real = getattr(utils, "set_sigterm_handler", None)
    if real is None:
        yield
        return
    utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = real


def _copy_rows(out: str, copies: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The rows of the duplicates: their first input's row (read back from `out`, keeping only
    the rows with those sha256) under their own id."""
    by_sha: dict[str, dict[str, Any]] = {}
    if copies:
        for row in read_rows(out, shas=set(copies)):
            by_sha.setdefault(row["sha256"], row)
    return [{**by_sha[sha], "path": item_id}
            for sha, ids in copies.items() if sha in by_sha for item_id in ids]


def run_ray(config: ScoreConfig, units: list[Unit], ledger: Any, out: str, categories: list[str],
            model: str, identity: str, ocr_identity: str, ray_address: str | None = None,
            encoders: int = 0, cpu_batch: int = 8, encoder_cpus: float | None = None,
            readers: int = 0, tally: Any = None, emit_jsonl: Any = None,
            round_inputs: int = ROUND_INPUTS) -> dict[str, Any]:
    """Score the inputs of `units` on Ray and write them to `out`; returns the summary's extras.

    Args:
        config: the run's options (rebuilt in every actor).
        units: the run's sources (`sources.plan_units`), read by Ray's read tasks.
        ledger: the run's `Ledger`: its ids already in --out are left out, and it gets each
            source's counts.
        out: a Parquet dataset folder (Ray's writer) or a .jsonl file (rows go to `emit_jsonl`).
        categories, model, identity: the driver's Predictor's (the schema and two columns).
        ocr_identity: the driver's OCR engine's identity (the actors run no OCR).
        ray_address: an existing cluster ('auto', 'ray://host:10001'...); None starts Ray here.
        encoders: encoder actors; 0: one per GPU in the cluster, or 1 without GPUs.
        cpu_batch: inputs per read + decode + OCR task.
        encoder_cpus: CPUs reserved per encoder actor (default: 1 with GPUs, else 0, as the
            local engine's encoder thread shares the cores with OCR).
        readers: read + decode + OCR actors, one CPU each; 0: the cluster's CPUs less those the
            encoder actors reserve (at least 1).
        tally: counts the rows written (`cli.Tally`).
        emit_jsonl: for a .jsonl `out`, called with each list of rows.
        round_inputs: about how many inputs each Ray Data dataset reads (`plan_round`): the
            run is a row of datasets, so that the driver's memory does not grow with the
            corpus; 0: one dataset.
    """
    if not units:
        return {}
    import ray

    started_here = not ray.is_initialized()  # else the caller's connection: theirs to end
    try:
        init_ray(ray_address)
        with warnings.catch_warnings():
            # A resumed run whose inputs are all in `out` already gives the readers no rows;
            # Ray Data warns that its actor pool then has nothing to do, which is right.
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors",
                                    category=UserWarning)
            return _run(ray, config, units, ledger, out, categories, model, identity,
                        ocr_identity, encoders, cpu_batch, encoder_cpus, readers, tally,
                        emit_jsonl, round_inputs)
    finally:
        if started_here:
            shutdown_ray()


def shutdown_ray() -> None:
    """End this process's Ray (stop the instance it started here, or leave the cluster), with
    Ctrl-C and SIGTERM delivered once it is done: a second Ctrl-C in Ray's own exit-time
    shutdown printed a traceback, and a cut shutdown can leave Ray's processes behind."""
    import ray

    if not ray.is_initialized():
        return
    with deferred_signals():
        logger.info("stopping Ray")
        ray.shutdown()


def _run(ray: Any, config: ScoreConfig, units: list[Unit], ledger: Any, out: str,
         categories: list[str], model: str, identity: str, ocr_identity: str, encoders: int,
         cpu_batch: int, encoder_cpus: float | None, readers: int, tally: Any,
         emit_jsonl: Any, round_inputs: int) -> dict[str, Any]:
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    use_gpu = gpus > 0 and config.device != "cpu"
    n_encoders = encoders or (gpus if use_gpu else 1)
    if encoder_cpus is None:
        encoder_cpus = 1.0 if use_gpu else 0.0
    if use_gpu and config.device is None:
        config = ScoreConfig(**{**config.as_dict(), "device": "cuda"})
    cpus = int(resources.get("CPU", 1))
    registry = ray.remote(num_cpus=0)(DedupRegistry).remote(ledger.done)
    n_readers = readers or max(1, cpus - int(n_encoders * encoder_cpus))
    stages = StagePlan(config, registry, n_readers, n_encoders, use_gpu, encoder_cpus, cpu_batch, {
        "config": config.as_dict(), "ocr_identity": ocr_identity, "categories": categories,
        "model": model, "identity": identity})
    queue: deque[tuple[Unit, int]] = deque()
    todo = iter(units)
    row_counts: dict[str, list[int]] = {}
    rounds = duplicates = 0
    while True:
        planned = plan_round(queue, todo, round_inputs, row_counts)
        if not planned:
            break
        rounds += 1
        if rounds > 1 or queue:
            logger.info("round %d: %d units (about %d inputs a round)", rounds, len(planned),
                        round_inputs)
        scored = _pipeline(ray, planned, stages)
        if is_jsonl(out):
            for table in scored.iter_batches(batch_format="pyarrow", batch_size=None):
                rows = unpack(table).to_pylist()
                emit_jsonl(rows)
                tally.add(rows)
        else:
            scored = _write_parquet(ray, scored, Path(out), tally)
        logger.info("Ray Data stats, round %d (tasks per node, throughput per stage):\n%s",
                    rounds, scored.stats())
        del scored  # its stats, one record per block (the driver's memory), go with it
        trim_heap()
        # The round's copies, from their first input's rows (this round's or an earlier one's)
        copies = _copy_rows(out, ray.get(registry.take_copies.remote()))
        if copies and is_jsonl(out):
            emit_jsonl(copies)
        elif copies:
            import pyarrow.parquet as pq

            name = f"copies-{uuid.uuid4().hex[:8]}.parquet"
            pq.write_table(rows_to_table(copies, categories), Path(out) / f".{name}.tmp")
            os.replace(Path(out) / f".{name}.tmp", Path(out) / name)
        tally.add(copies)
        duplicates += len(copies)
    sources, already_done, listed_twice = ray.get(registry.get_sources.remote())
    for stats in sources:
        ledger.add(stats)
    ledger.already_done += already_done
    ledger.listed_twice += listed_twice
    ray.kill(registry)
    return {"duplicates": duplicates, **({"Ray Data rounds": rounds} if rounds > 1 else {})}


@dataclass(frozen=True)
class StagePlan:
    """How a run's stages are laid on the cluster, the same for every round: the run's config,
    the dedup registry actor, the reader and encoder actor counts, whether the encoders take a
    GPU and how many CPUs each reserves, the inputs per decode + OCR call (`cpu_batch`), and the
    encoder actors' constructor arguments."""

    config: ScoreConfig
    registry: Any
    n_readers: int
    n_encoders: int
    use_gpu: bool
    encoder_cpus: float
    cpu_batch: int
    encoder_kwargs: dict[str, Any]


def _pipeline(ray: Any, units: list[Unit], stages: StagePlan) -> Any:
    """One round's Dataset: the units' inputs listed, read + OCR-read, encoded (lazy)."""
    tasks = group_units(units)
    n_readers = stages.n_readers
    # The listing tasks reserve no CPU: they read names, a table's cells or a shard's members
    # while the readers decode; a CPU each would take it from decode + OCR. Reserving none,
    # they are not queued by Ray: `concurrency` runs as many at a time as there are readers
    # to feed, and `override_num_blocks` (one block per task) leaves the blocks as they are.
    listed = ray.data.read_datasource(
        make_datasource(tasks, stages.registry, stages.cpu_batch), num_cpus=0,
        concurrency=min(len(tasks), n_readers), override_num_blocks=len(tasks))
    # Ray Data joins what a task yields into blocks of `target_max_block_size` (128 MiB) and
    # hands a block whole to one reader: a folder's names would be one block, read by one
    # reader after the whole folder is listed; and it slices a block larger than 1.5 x that
    # size into pieces of that many bytes. An input costs OCR time, not bytes, and the driver
    # keeps stats for every block: so each listing block, reader call and encoder call is one
    # packed row (`pack`), and with a target of one byte each packed row is its own block,
    # never joined to the next one nor sliced (a block of one row cannot be).
    listed.context.target_max_block_size = ROW_BLOCKS
    config = stages.config
    return listed.map_batches(
        ReadStage, batch_size=1, batch_format="pyarrow",  # one listing block a call
        fn_constructor_kwargs={"ocr_spec": config.ocr, "registry": stages.registry},
        compute=ray.data.ActorPoolStrategy(size=n_readers), num_cpus=1,
    ).map_batches(
        EncoderStage,
        batch_size=max(1, config.batch_size // stages.cpu_batch),  # reader calls a call
        batch_format="pyarrow", fn_constructor_kwargs=stages.encoder_kwargs,
        compute=ray.data.ActorPoolStrategy(size=stages.n_encoders),
        num_gpus=1 if stages.use_gpu else 0, num_cpus=stages.encoder_cpus)


def _write_parquet(ray: Any, scored: Any, folder: Path, tally: Any) -> Any:
    """Run a round's Dataset into part files in `folder`; count their rows. The written
    Dataset (its stats)."""
    import pyarrow.parquet as pq

    before = set(folder.rglob("*.parquet")) if folder.exists() else set()
    # The write tasks reserve no CPU: Ray Data reserves each operator's minimum, and a
    # 1-CPU write reservation on a small node halves the decode + OCR stage (measured).
    # The unpacking runs in the write tasks (fused): a part file per encoder call.
    written = scored.map_batches(unpack, batch_size=None, batch_format="pyarrow", num_cpus=0)
    written.write_parquet(str(folder), mode=ray.data.SaveMode.APPEND,  # resumes add parts
                          ray_remote_args={"num_cpus": 0})
    for path in sorted(set(folder.rglob("*.parquet")) - before):  # a part at a time
        tally.add(pq.read_table(path, columns=["error", "warnings"]).to_pylist())
    return written
