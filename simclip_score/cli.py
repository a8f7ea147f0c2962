"""`simclip score SOURCE... --out FILE`: score a corpus of memes, on this machine or on Ray.

    simclip score memes/ more/*.jpg urls.txt shard-000.tar --out scores.parquet
    simclip score corpus.parquet --column url --out scores.jsonl --device cuda
    simclip score memes/ --out scores.parquet --engine ray --ray-address auto

One row per input (schema: `simclip_score.output`); a bad file, and a source that cannot be
read, is an error row with a typed code, never a crash: corrupt_image, unsupported_format,
image_too_large, empty_image, vector_svg, fetch_failed, unreadable_file, ocr_failed,
internal_error. Exit status: 0 every input scored, 1 some rows are errors, 2 nothing could run
(no input at all).
A rerun with the same --out skips the inputs already written (--retry-errors: scores this
run's errors of the moment again), and Ctrl-C keeps what was written. Identical images (same
sha256) are computed once. Prints a summary table at the end: rows by outcome, sources by
outcome, files and shard members skipped with their reasons.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from simclip import ClassifierOptions, SimCLIPError, random_weights_warning
from simclip.ocr import parse_ocr_spec

from .ledger import EXIT_NOTHING_RAN, Ledger
from .output import (
    RETRYABLE,
    JsonlWriter,
    ParquetPartWriter,
    check_out,
    drop_error_rows,
    is_jsonl,
    read_done,
    read_rows,
    remove_unwritten_out,
)
from .ray_engine import ROUND_INPUTS
from .sources import count_inputs, plan_units
from .work import ScoreConfig, get_model_id, list_category_ids

logger = logging.getLogger(__name__)

SCALE_EXTRA = "scale"  # the pyproject extra with ray, pyarrow and tqdm


def _count(minimum: int) -> Any:
    """An argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value
    return parse


def _non_negative(text: str) -> float:
    """An argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is below 0")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Arguments of `simclip score`."""
    p = argparse.ArgumentParser(prog="simclip score", description=__doc__.split("\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="folders (recursive), globs, image files, http(s) URLs, a .txt list of "
                        "paths/URLs, a .parquet/.csv table (--column), WebDataset .tar shards")
    p.add_argument("--out", required=True,
                   help="NAME.jsonl (JSON lines), or any other name: a Parquet dataset folder")
    p.add_argument("--column", default=None,
                   help="the table column with paths, URLs or image bytes (default: the only "
                        "column, else path/url/image/bytes)")
    p.add_argument("--checkpoint", default=None, help="trained head (zero-shot without one)")
    ClassifierOptions.add_arguments(p)
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine (default); ray: a Ray cluster (the 'scale' extra)")
    p.add_argument("--batch-size", type=_count(1), default=32, help="pictures per encoder batch")
    p.add_argument("--max-wait-ms", type=_non_negative, default=5.0,
                   help="local: how long the encoder waits for a batch to fill")
    p.add_argument("--workers", type=_count(0), default=0,
                   help="local: decode + OCR threads (default: one per core)")
    p.add_argument("--cache-dir", default=None,
                   help="local: share the server's result cache in this folder (needs the "
                        "'server' extra)")
    p.add_argument("--ray-address", default=None,
                   help="ray: the cluster to join ('auto' on a cluster node, "
                        "ray://HEAD:10001); default: start Ray on this machine")
    p.add_argument("--ray-encoders", type=_count(0), default=0,
                   help="ray: encoder actors (default: one per GPU, or 1 without GPUs)")
    p.add_argument("--ray-cpu-batch", type=_count(1), default=8,
                   help="ray: inputs per decode + OCR call")
    p.add_argument("--ray-readers", type=_count(0), default=0,
                   help="ray: decode + OCR actors, one CPU each (default: the cluster's CPUs "
                        "less the encoders' reservation)")
    p.add_argument("--ray-encoder-cpus", type=_non_negative, default=None,
                   help="ray: CPUs reserved per encoder actor (default: 1 with GPUs, else 0)")
    p.add_argument("--ray-round-inputs", type=_count(0), default=ROUND_INPUTS,
                   help="ray: inputs per Ray Data dataset; a larger corpus runs as several in a "
                        "row, so that the driver's memory stays bounded (default: "
                        f"{ROUND_INPUTS}; 0: one dataset)")
    p.add_argument("--retry-errors", action="store_true",
                   help="on a rerun, score again this run's inputs whose rows have an error of "
                        "--retry-codes; their old rows are removed from --out")
    p.add_argument("--retry-codes", default=",".join(RETRYABLE), metavar="CODES",
                   help=f"comma-separated error codes for --retry-errors (default: "
                        f"{','.join(RETRYABLE)}, the errors of the moment)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


class Tally:
    """Counts for the summary: rows, errors by code, flagged pictures per category."""

    def __init__(self) -> None:
        self.rows = 0
        self.errors: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Count rows."""
        for row in rows:
            self.rows += 1
            if row["error"]:
                self.errors[row["error"]] += 1
            else:
                self.flagged.update(row["warnings"])

    def format(self, categories: list[str], seconds: float, skipped: int,
               extra: dict[str, Any]) -> str:
        """The summary table (Markdown)."""
        scored = self.rows - sum(self.errors.values())
        rate = self.rows / seconds if seconds > 0 else 0.0
        lines = [f"\nsimclip score: {self.rows} rows in {seconds:.1f} s ({rate:.2f} rows/s); "
                 f"{scored} scored, {sum(self.errors.values())} errors, {skipped} skipped (already "
                 f"in --out, or listed twice)" + "".join(f", {v} {k}" for k, v in extra.items()),
                 "", "| category | flagged | of scored |", "|---|---:|---:|"]
        for c in categories:
            share = 100.0 * self.flagged[c] / scored if scored else 0.0
            lines.append(f"| {c} | {self.flagged[c]} | {share:.1f}% |")
        if self.errors:
            lines += ["", "| error | rows |", "|---|---:|"]
            lines += [f"| {code} | {n} |" for code, n in self.errors.most_common()]
        return "\n".join(lines)


class Progress:
    """A tqdm bar with the count and rate on stderr (a log line every 10 s without tqdm). The
    inputs are streamed, so the total comes later, if at all: `count_in_background` counts
    them (names, lines, table footers) beside the run, and the bar then shows its share and
    an ETA. Its position is the rows written plus `skipped()`, the inputs left out (already in
    --out, listed twice)."""

    def __init__(self, enabled: bool, skipped: Any = None) -> None:
        self._bar = None
        self._done = 0
        self._total: int | None = None
        self._skipped = skipped or (lambda: 0)
        self._counter: threading.Thread | None = None
        self._last = time.monotonic()
        self._t0 = self._last
        self._enabled = enabled
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=None, unit="img", desc="simclip score", file=sys.stderr,
                             dynamic_ncols=True)

    def count_in_background(self, units: list[Any]) -> None:
        """Count the inputs of `units` in a thread; the total shows from the next update."""
        if not self._enabled:
            return

        def count() -> None:
            try:
                self._total = count_inputs(units)
            except Exception:  # noqa: BLE001 (the run reads the sources, and says what fails)
                logger.debug("counting the inputs failed", exc_info=True)

        self._counter = threading.Thread(target=count, name="simclip-score-count", daemon=True)
        self._counter.start()

    def update(self, n: int) -> None:
        """n more rows written."""
        self._done += n
        position = self._done + self._skipped()
        if self._bar is not None:
            if self._total is not None and self._bar.total != self._total:
                self._bar.total = max(self._total, position)
            self._bar.update(position - self._bar.n)
        elif self._enabled and time.monotonic() - self._last >= 10:
            self._last = time.monotonic()
            rate = self._done / (self._last - self._t0)
            of = ""
            if self._total is not None and rate > 0:
                left = max(0, self._total - position) / rate
                of = f" of {self._total}, about {left / 60:.0f} min left"
            print(f"simclip score: {position} inputs{of} ({rate:.1f} rows/s)", file=sys.stderr)

    def close(self) -> None:
        """End the bar (with its total, if the count ends within a second)."""
        if self._counter is not None:
            self._counter.join(timeout=1.0)
        self.update(0)
        if self._bar is not None:
            self._bar.close()


def _open_cache(cache_dir: str, identity: str) -> Any:
    """The server's result cache (backend.cache) for this identity."""
    try:
        from backend.cache import ResultCache
    except ImportError as e:
        raise SystemExit(f"--cache-dir shares the server's result cache and needs the 'server' "
                         f"extra ({e.name} is not installed): pip install 'simclip[server]'") from e
    return ResultCache(identity, cache_dir)


def _needs(module: str, what: str) -> None:
    try:
        __import__(module)
    except ImportError as e:
        raise SystemExit(f"{what} needs the '{SCALE_EXTRA}' extra ({e.name} is not installed): "
                         f"pip install 'simclip[{SCALE_EXTRA}]'") from e


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    """The ScoreConfig of parsed arguments."""
    return ScoreConfig(**asdict(ClassifierOptions.from_args(args)), checkpoint=args.checkpoint,
                       batch_size=args.batch_size, max_wait_ms=args.max_wait_ms,
                       workers=args.workers, cache_dir=args.cache_dir)


def _parse_codes(text: str) -> set[str]:
    """--retry-errors' comma-separated codes, each a code a row can have."""
    from simclip import errors

    known = {e.code for e in vars(errors).values()  # the decoder's codes a row can have
             if isinstance(e, type) and issubclass(e, errors.ImageError)} | set(RETRYABLE)
    known.discard(errors.ImageError.code)
    codes = {c.strip() for c in text.split(",") if c.strip()}
    unknown = codes - known
    if unknown or not codes:
        raise SystemExit(f"--retry-codes {text!r}: not row error codes: {sorted(unknown)}; "
                         f"codes: {', '.join(sorted(known))}")
    return codes


class _Terminated(KeyboardInterrupt):
    """SIGTERM (kill, a scheduler's eviction, timeout): stopped as Ctrl-C stops, rows kept."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _lock_path(out: str) -> Path:
    path = Path(out)
    return path.with_name(f".{path.name}.lock") if is_jsonl(path) else path / "_simclip_score.lock"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `simclip score`; returns the exit status: 0 every input scored, 1 some
    rows are errors, 2 nothing could run (`ledger`), 130/143 interrupted/terminated."""
    args = parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return _run(args)
    except KeyboardInterrupt as e:
        print(f"\nsimclip score: {'terminated' if isinstance(e, _Terminated) else 'interrupted'}"
              f"; rows already written to {args.out} are kept: run the same command again to "
              "go on from there", file=sys.stderr)
        return 143 if isinstance(e, _Terminated) else 130
    except SystemExit as e:
        if isinstance(e.code, str):
            print(f"simclip score: {e.code}", file=sys.stderr)
            return 2
        raise
    except (SimCLIPError, ValueError, RuntimeError) as e:
        print(f"simclip score: {e}", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    if args.out.strip() in ("-", ""):
        raise SystemExit("--out: rows go to a file, not to standard output; name a .jsonl file "
                         "or a Parquet folder")
    jsonl = is_jsonl(args.out)
    if not jsonl:
        _needs("pyarrow", "Parquet output")
    if args.engine == "ray":
        _needs("ray.data", "--engine ray")
        if args.cache_dir:
            raise SystemExit("--cache-dir works with --engine local only (the server's cache "
                             "is a file on one machine)")
        if str(parse_ocr_spec(args.ocr)[1].get("device", "cpu")) != "cpu":
            # Ray hides the GPUs from actors that reserve none, and the encoders reserve them
            raise SystemExit(f"--ocr {args.ocr}: OCR on a GPU runs with --engine local only; "
                             "Ray's readers run OCR on the CPU cores (drop device=...)")
    codes = _parse_codes(args.retry_codes) if args.retry_errors else set()
    created = not os.path.lexists(args.out)
    check_out(args.out)  # before the model loads: a wrong --out is said at once
    from filelock import FileLock, Timeout

    lock = FileLock(str(_lock_path(args.out)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise SystemExit(f"another simclip score is writing to {args.out} (its lock: "
                         f"{lock.lock_file}); wait for it to end, or name another --out") from None
    try:
        return _score(args, jsonl, codes)
    finally:
        lock.release()
        if created:  # refused or stopped before its first row: no empty --out left behind
            remove_unwritten_out(args.out, lock.lock_file)


def _retry_ids(args: argparse.Namespace, units: list[Any], codes: set[str]) -> set[str]:
    """The ids of this run's inputs whose rows in --out have an error of `codes`: one pass over
    the sources (streamed, bounded memory), only when --out has such rows."""
    candidates = {r["path"] for r in read_rows(args.out, ["path", "error"])
                  if r["error"] in codes}
    if not candidates:
        return set()
    probe = Ledger()
    return {item.id for item in probe.items(units) if item.id in candidates}


def _score(args: argparse.Namespace, jsonl: bool, codes: set[str]) -> int:
    """The run itself, holding --out's lock."""
    config = config_from_args(args)
    units = plan_units(args.sources, args.column)  # a column that holds no pictures: refused now
    from .ocr import build_ocr_engine

    ocr = build_ocr_engine(config.ocr)
    predictor = config.load_predictor(ocr=ocr)
    categories, model, identity = list_category_ids(predictor), get_model_id(predictor), \
        predictor.identity
    done = read_done(args.out, identity)  # refuses another model's rows first
    if codes and done:
        retried = drop_error_rows(args.out, codes, _retry_ids(args, units, codes))
        if retried:
            logger.info("scoring %d inputs again (--retry-errors, codes %s)", retried,
                        ",".join(sorted(codes)))
            done = read_done(args.out, identity)
    ledger = Ledger(done)
    tally = Tally()
    # Ray's own progress bars follow a Parquet write; ours counts rows that reach this process.
    # The inputs Ray leaves out (already in --out) are counted on the cluster, unseen here: a
    # resumed Ray run's bar has no total.
    local = args.engine == "local"
    progress = Progress(enabled=not args.no_progress and (local or jsonl),
                        skipped=(lambda: ledger.already_done + ledger.listed_twice) if local
                        else None)
    if local or not done:
        progress.count_in_background(units)
    writer = JsonlWriter(args.out) if jsonl else None
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    try:
        if args.engine == "local":
            extra = _run_local(config, predictor, ledger.items(units), args.out, categories,
                               writer, tally, progress)
        else:
            from .ray_engine import run_ray

            def emit(rows: list[dict[str, Any]]) -> None:
                writer.write(rows)
                progress.update(len(rows))

            extra = run_ray(config, units, ledger, args.out, categories, model, identity,
                            ocr_identity=getattr(ocr, "identity", ocr.name),
                            ray_address=args.ray_address, encoders=args.ray_encoders,
                            cpu_batch=args.ray_cpu_batch, encoder_cpus=args.ray_encoder_cpus,
                            readers=args.ray_readers, tally=tally,
                            round_inputs=args.ray_round_inputs,
                            emit_jsonl=emit if jsonl else None)
    finally:
        progress.close()
        if writer is not None:
            writer.close()
    print(tally.format(categories, time.perf_counter() - t0, ledger.already_done
                       + ledger.listed_twice, extra))
    print("\n" + ledger.format())
    print(f"\nrows in {args.out}; model {model}")
    empty = ledger.empty_warning()
    if empty:  # the summary on stdout says it too; stderr is what a script's log keeps
        print(f"simclip score: warning: {empty}", file=sys.stderr)
    warning = random_weights_warning(predictor.backbone.info.id)
    if warning:  # the last line a person reads: these scores mean nothing
        print(warning, file=sys.stderr)
    status = ledger.exit_code(sum(tally.errors.values()))
    if status == EXIT_NOTHING_RAN:
        print("simclip score: no inputs: " + "; ".join(
            f"{s.source}: {s.describe()}" for s in ledger.sources.values()), file=sys.stderr)
    return status


def _run_local(config: ScoreConfig, predictor: Any, todo: Any, out: str,
               categories: list[str], writer: Any, tally: Tally,
               progress: Progress) -> dict[str, Any]:
    from .local import LocalEngine

    sink = writer if writer is not None else ParquetPartWriter(out, categories)
    cache = _open_cache(config.cache_dir, predictor.identity) if config.cache_dir else None

    def emit(rows: list[dict[str, Any]]) -> None:
        sink.write(rows)
        tally.add(rows)
        progress.update(len(rows))

    engine = LocalEngine(predictor, config, emit, cache=cache)
    try:
        engine.run(todo)
    finally:
        if writer is None:
            sink.close()
        if cache is not None:
            cache.close()
    batches = engine.stats.as_dict()
    return {"duplicates": engine.duplicates, "cache hits": engine.cache_hits,
            "mean encoder batch": batches["mean_size"]}


if __name__ == "__main__":
    sys.exit(main())
