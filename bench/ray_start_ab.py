"""A/B of a whole `simclip score --engine ray` run on a few memes, where the per-run fixed cost
(Ray's start, the actors' imports and model loads) is nearly all of the time, between two source
trees of this project, alternated (ABBA...) so that a noisy machine hits both alike.

    git worktree add /tmp/before <commit>
    python bench/ray_start_ab.py --before /tmp/before --after . --memes DIR [--n 16] [--rounds 3]

Each run is a fresh process (`python -m simclip.cli score ... --engine ray`, tiny random
backbone, CPU) with PYTHONPATH at its tree, so the driver and Ray's workers import that tree.
Prints each run's wall time, the medians, and after/before. Not a test.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(tree: Path, memes: Path, out: Path) -> float:
    """Wall seconds of one `simclip score --engine ray` run of `tree` on `memes`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simclip.cli", "score", str(memes), "--engine", "ray",
                    "--model", "simclip-tiny", "--pretrained", "none", "--device", "cpu",
                    "--no-progress", "--out", str(out)],
                   cwd=tree, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, required=True, help="the tree before the change")
    p.add_argument("--after", type=Path, required=True, help="the tree after the change")
    p.add_argument("--memes", type=Path, required=True, help="a folder of meme images")
    p.add_argument("--n", type=int, default=16, help="memes per run (default 16)")
    p.add_argument("--rounds", type=int, default=3, help="runs per tree (default 3)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "memes"
        subset.mkdir()
        for path in sorted(q for q in args.memes.iterdir() if q.is_file())[:args.n]:
            shutil.copy(path, subset / path.name)
        times: dict[str, list[float]] = {"before": [], "after": []}
        order = [("before", "after") if i % 2 == 0 else ("after", "before") for i in range(args.rounds)]
        for name in (n for pair in order for n in pair):
            out = Path(tmp) / f"{name}-{len(times[name])}.jsonl"
            times[name].append(run_once(getattr(args, name).resolve(), subset, out))
            print(f"{name:6s} {times[name][-1]:6.1f} s", flush=True)
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"median before {before:.1f} s, after {after:.1f} s; after/before {after / before:.2f}")


if __name__ == "__main__":
    main()
