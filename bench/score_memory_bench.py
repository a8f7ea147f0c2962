"""Peak memory of `simclip score` against corpus size, per kind of source and engine (issue 18).

The same pictures as a folder, one Parquet table of image bytes (one row group: the worst case),
WebDataset shards and a CSV list of paths, at two corpus sizes made by re-encoding the shared
real memes (each picture distinct: a meme cropped by a few pixels, saved as JPEG). Each run is
a fresh process (`--child`): its peak RSS (VmHWM) is the local engine's whole process, or
the Ray driver's (Ray's workers are other processes). Tiny random backbone, no OCR: what is
measured is the reading, queueing and writing, not the model.

    python bench/score_memory_bench.py                     # 300 and 3,000 pictures
    python bench/score_memory_bench.py --sizes 500 5000 --engines local
    python bench/score_memory_bench.py --engines local --mmap-threshold 131072   # glibc's heap held
    python bench/score_memory_bench.py --engines ray --kinds folder --sizes 1000 10000 \
        --ray-round-inputs 0 1000       # the Ray driver: one dataset, then rounds of 1,000
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

SHARED = Path(os.environ.get("SIMCLIP_SHARED_DATA", "/work/shared/data"))
MEME_DIRS = ("harmeme-c-val", "harmeme-c-train-400")
TINY = ["--model", "simclip-tiny", "--pretrained", "none", "--device", "cpu", "--ocr", "none"]
SHARD_MEMBERS = 1000


def list_memes() -> list[Path]:
    """The shared real memes."""
    paths = []
    for name in MEME_DIRS:
        paths += sorted((SHARED / name / "images").glob("*.png"))
    if not paths:
        raise SystemExit(f"no memes under {SHARED}/{{{','.join(MEME_DIRS)}}}/images")
    return paths


def make_pictures(n: int) -> list[bytes]:
    """`n` distinct JPEGs: meme k % M cropped by k // M pixels on each side."""
    memes = list_memes()
    out = []
    for k in range(n):
        with Image.open(memes[k % len(memes)]) as im:
            im = im.convert("RGB")
            c = k // len(memes)
            im = im.crop((c, c, im.width - c, im.height - c))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
            out.append(buf.getvalue())
    return out


def make_corpus(root: Path, pictures: list[bytes]) -> dict[str, list[str]]:
    """The pictures as a folder, a Parquet table, shards and a CSV list, and a folder of as many
    hard links to the first one ('copies'): {kind: sources}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / "folder"
    folder.mkdir(parents=True)
    names = []
    for i, data in enumerate(pictures):
        (folder / f"{i:06d}.jpg").write_bytes(data)
        names.append(f"folder/{i:06d}.jpg")
    pq.write_table(pa.table({"image": pa.array(pictures, pa.binary())}), root / "table.parquet",
                   row_group_size=len(pictures))
    shards = []
    for s in range(0, len(pictures), SHARD_MEMBERS):
        shard = root / f"shard-{s // SHARD_MEMBERS:03d}.tar"
        with tarfile.open(shard, "w") as tar:
            for i in range(s, min(s + SHARD_MEMBERS, len(pictures))):
                info = tarfile.TarInfo(f"{i:06d}.jpg")
                info.size = len(pictures[i])
                tar.addfile(info, io.BytesIO(pictures[i]))
        shards.append(str(shard))
    with open(root / "list.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path"], *([n] for n in names)])
    copies = root / "copies"  # hard links to one picture: every input but one is a duplicate
    copies.mkdir()
    for i in range(len(pictures)):
        os.link(folder / names[0].split("/")[1], copies / f"{i:06d}.jpg")
    return {"folder": [str(folder)], "parquet": [str(root / "table.parquet")],
            "shards": shards, "csv list": [str(root / "list.csv")], "copies": [str(copies)]}


def child(argv: list[str]) -> None:
    """Run `simclip score argv` in this process; print its status, seconds, peak RSS and the
    highest RSS of the run's last quarter (what the run holds once it has started: the peak
    may be the start's, and hide a growth below it)."""
    from simclip_score import cli

    samples: list[tuple[float, int]] = []
    running = threading.Event()
    running.set()
    page = os.sysconf("SC_PAGE_SIZE")

    def sample() -> None:
        while running.is_set():
            with open("/proc/self/statm") as f:
                samples.append((time.perf_counter(), int(f.read().split()[1]) * page))
            time.sleep(0.2)

    t0 = time.perf_counter()
    threading.Thread(target=sample, daemon=True).start()
    status = cli.main(argv)
    running.clear()
    seconds = time.perf_counter() - t0
    # VmHWM, not ru_maxrss: a child's ru_maxrss counts its parent's RSS at the fork (the
    # parent holds the corpus's pictures)
    with open("/proc/self/status") as f:
        peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    late = max((rss for t, rss in samples if t >= t0 + 0.75 * seconds), default=0)
    print(json.dumps({"status": status, "seconds": seconds, "peak_mib": peak_kib / 1024,
                      "late_mib": late / 2**20}))


def measure(sources: list[str], engine: str, out: Path, mmap_threshold: int | None = None,
            round_inputs: int | None = None) -> dict:
    """One run in a fresh process (with glibc's MALLOC_MMAP_THRESHOLD_ when given; Ray with
    --ray-round-inputs when given, else its default)."""
    argv = [*sources, "--out", str(out), *TINY, "--no-progress", "--engine", engine]
    if engine == "ray":
        argv += ["--ray-readers", "1"]
        if round_inputs is not None:
            argv += ["--ray-round-inputs", str(round_inputs)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    done = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True,
                          text=True, env=env, check=False)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if not last.startswith("{"):
        raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
    return json.loads(last)


def main(argv: list[str] | None = None) -> None:
    """Build the corpora, run every case, print a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs=2, default=[300, 3000])
    p.add_argument("--engines", nargs="+", default=["local", "ray"])
    p.add_argument("--kinds", nargs="+", default=["folder", "parquet", "shards", "csv list", "copies"])
    p.add_argument("--mmap-threshold", type=int, default=None,
                   help="bytes: glibc's MALLOC_MMAP_THRESHOLD_ for the runs (docs/bench.md)")
    p.add_argument("--out-format", choices=["jsonl", "parquet"], default="jsonl",
                   help="--out as a .jsonl file (rows pass through the Ray driver) or a Parquet "
                        "folder (written by Ray's tasks)")
    p.add_argument("--ray-round-inputs", type=int, nargs="+", default=[None],
                   help="Ray runs: each value a case (0: one Ray Data dataset; default: "
                        "simclip score's)")
    args = p.parse_args(argv)
    results: dict[tuple[str, str, int], dict] = {}
    cases = [(engine, r) for engine in args.engines
             for r in (args.ray_round_inputs if engine == "ray" else [None])]
    with tempfile.TemporaryDirectory(prefix="score-memory-") as tmp:
        corpora = {}
        for n in args.sizes:
            pictures = make_pictures(n)
            size_mb = sum(map(len, pictures)) / 1e6
            corpora[n] = make_corpus(Path(tmp) / str(n), pictures)
            del pictures
            print(f"{n} pictures, {size_mb:.0f} MB of JPEG", flush=True)
        for case in cases:
            engine, rounds = case
            for kind in args.kinds:
                for n in args.sizes:
                    out = Path(tmp) / (f"out-{engine}-{rounds}-{kind.replace(' ', '_')}-{n}."
                                       f"{args.out_format}")
                    r = measure(corpora[n][kind], engine, out, args.mmap_threshold, rounds)
                    results[(_name(case), kind, n)] = r
                    print(f"{_name(case):5} {kind:8} {n:6}: peak {r['peak_mib']:.0f} MiB, "
                          f"last quarter {r['late_mib']:.0f} MiB, "
                          f"{r['seconds']:.0f} s, {n / r['seconds']:.1f} pictures/s, "
                          f"exit {r['status']}", flush=True)
    small, large = args.sizes
    print(f"\n| engine | source | peak RSS, {small:,} | peak RSS, {large:,} | growth | "
          f"last-quarter RSS growth | pictures/s ({large:,}) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for engine in map(_name, cases):
        for kind in args.kinds:
            a, b = results[(engine, kind, small)], results[(engine, kind, large)]
            print(f"| {engine} | {kind} | {a['peak_mib']:.0f} MiB | {b['peak_mib']:.0f} MiB | "
                  f"{b['peak_mib'] - a['peak_mib']:+.0f} MiB | "
                  f"{b['late_mib'] - a['late_mib']:+.0f} MiB | {large / b['seconds']:.1f} |")


def _name(case: tuple[str, int | None]) -> str:
    engine, rounds = case
    return engine if rounds is None else f"{engine} (rounds of {rounds})" if rounds else \
        f"{engine} (one dataset)"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
