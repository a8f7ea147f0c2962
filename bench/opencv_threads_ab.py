"""OpenCV's thread pool under the local engine's OCR threads: default (a thread per core) vs one.

    python bench/opencv_threads_ab.py                      # real memes, every core
    python bench/opencv_threads_ab.py -n 100 --workers 16

rapidocr does its image work in OpenCV, whose default pool has a thread per core; `simclip
score`'s local engine and the OCR ceiling already run one OCR thread per core, so each
OpenCV call may fan out again. On the same decoded memes, in one run, ABBA order (a drifting
load weighs on both alike): decode + OCR over a pool of `--workers` threads with OpenCV's
default pool, then with `cv2.setNumThreads(1)`. Prints memes/s for each and the ratio. Not a
test: numbers depend on the machine; docs/bench.md records runs.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as `python bench/opencv_threads_ab.py`
from bench import DEFAULT_IMAGES, list_images  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of meme images")
    p.add_argument("-n", "--num-images", type=int, default=0, help="memes used (0: all)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="OCR threads")
    p.add_argument("--ocr", default="auto", help="OCR spec (simclip.get_ocr_engine's names)")
    args = p.parse_args(argv)

    import cv2

    from simclip import decode_picture, get_ocr_engine, read_picture_text

    files = list_images(args.images)
    files = files[:args.num_images] if args.num_images else files
    images = [decode_picture(f.read_bytes()) for f in files]
    ocr = get_ocr_engine(args.ocr)
    default = cv2.getNumThreads()

    def run(threads):
        cv2.setNumThreads(threads)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            texts = list(pool.map(lambda im: read_picture_text(ocr, im), images))
        return time.perf_counter() - t0, sum(len(t) for t in texts)

    run(default)  # warm up: the engine's sessions, the first allocations
    walls = {default: [], 1: []}
    chars = {}
    for threads in (default, 1, 1, default):
        wall, chars[threads] = run(threads)
        walls[threads].append(wall)
        print(f"  OpenCV threads {threads}: {len(images) / wall:.2f} memes/s", flush=True)
    rate = {t: 2 * len(images) / sum(w) for t, w in walls.items()}
    print(f"\n{len(images)} memes, {args.workers} OCR threads, {ocr.name}, "
          f"cpu_count={os.cpu_count()}")
    print(f"OpenCV default ({default} threads): {rate[default]:.2f} memes/s")
    print(f"OpenCV one thread: {rate[1]:.2f} memes/s")
    print(f"one thread / default: {rate[1] / rate[default]:.2f}; same text: "
          f"{chars[1] == chars[default]}")


if __name__ == "__main__":
    main()
