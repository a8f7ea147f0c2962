"""Benchmark the server against its own stages, in one run with one model.

    python bench/bench_server.py                       # CPU, tiny random backbone, real memes
    python bench/bench_server.py --device cuda         # GPU, ViT-L-14-336 at random weights
    python bench/bench_server.py --ocr none            # encoder-bound server

Measures: the Predictor called directly in batches; OCR alone and the encoders alone (the
stage ceilings); the server over HTTP on loopback with N concurrent clients (cold cache); and
the latency of a cache hit. Prints throughput, p50/p99 latency and the ratios to the targets
(server >= 0.8 x the slowest stage, cache hit <= 5 ms p50). Not a test: numbers depend on the
machine; docs/bench.md records runs.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/bench_server.py`
from bench import DEFAULT_IMAGES, add_backbone_arguments, get_model, list_images  # noqa: E402


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_backbone_arguments(p, ocr_help="OCR engine: auto, rapidocr, tesseract, none")
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of meme images")
    p.add_argument("-n", "--num-images", type=int, default=48, help="distinct images used")
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--ocr-workers", type=int, default=2)
    p.add_argument("--cache-hits", type=int, default=200, help="cache-hit requests timed")
    return p.parse_args(argv)


def percentile(values, q):
    """The q-th percentile (0-100) of values, nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


def load_images(folder, n):
    return [f.read_bytes() for f in list_images(folder)[:n]]


def timed_map(fn, items, workers):
    """Run fn over items in a thread pool; return (results, wall seconds, per-item seconds)."""
    lat = [0.0] * len(items)

    def run(i):
        t0 = time.perf_counter()
        out = fn(items[i])
        lat[i] = time.perf_counter() - t0
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(run, range(len(items))))
    return results, time.perf_counter() - t0, lat


def in_batches(fn, items, batch):
    """Call fn on consecutive batches; return (wall seconds, per-batch seconds)."""
    lat = []
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        t1 = time.perf_counter()
        fn(items[i:i + batch])
        lat.append(time.perf_counter() - t1)
    return time.perf_counter() - t0, lat


def measure_server(predictor, data, clients=8, max_batch=16, max_wait_ms=5.0, ocr_workers=2,
                   cache_hits=200):
    """The real server (create_app + waitress on loopback) over HTTP with `clients` concurrent
    clients, cold cache, every image once; then `cache_hits` cache-hit requests from 1 client.
    A client answered 503 `busy` (more than MAX_ADMITTED requests at once) waits the answer's
    `retry_after_ms` and sends again, as the extension does; its latency counts the wait.

    Returns {"wall", "lat": per image (s), "hit_wall", "hit_lat", "batching": BatchStats,
    "busy": 503 busy answers}.
    """
    from backend import create_app
    from backend.model import close_app, get_pipeline
    from backend.security import create_token
    from backend.serve import create_server

    token = create_token()
    with tempfile.TemporaryDirectory() as cache_dir:
        app = create_app({"CLASSIFIER": predictor, "TOKEN": token, "CACHE_DIR": cache_dir,
                          "MAX_BATCH": max_batch, "MAX_WAIT_MS": max_wait_ms,
                          "OCR_WORKERS": ocr_workers, "MAX_QUEUE": max(64, 2 * clients)})
        server = create_server(app, "127.0.0.1", 0, threads=max(32, 2 * clients))
        threading.Thread(target=server.run, daemon=True).start()
        url = f"http://127.0.0.1:{app.config['PORT']}/v1/classify"
        local = threading.local()
        busy = []

        def post(body):
            if not hasattr(local, "session"):
                local.session = requests.Session()
            while True:
                r = local.session.post(url, data=body, timeout=300, headers={
                    "X-Auth-Token": token, "Content-Type": "application/octet-stream"})
                if r.status_code != 503 or r.json()["error"]["code"] != "busy":
                    break
                busy.append(1)
                time.sleep(r.json()["error"]["retry_after_ms"] / 1000)  # the server's contract
            r.raise_for_status()
            return r.json()

        results, wall, lat = timed_map(post, data, clients)
        assert not any(r["cached"] for r in results), "cold run must not hit the cache"
        hits = [data[i % len(data)] for i in range(cache_hits)]
        results, hit_wall, hit_lat = timed_map(post, hits, 1)
        assert all(r["cached"] for r in results)
        with app.app_context():
            batching = get_pipeline().stats.as_dict()
        server.close()
        close_app(app)
    return {"wall": wall, "lat": lat, "hit_wall": hit_wall, "hit_lat": hit_lat,
            "batching": batching, "busy": len(busy)}


def main(argv=None):
    """Run every measurement and print the table."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from simclip import load_classifier

    predictor = load_classifier(model=get_model(args), pretrained=args.pretrained, device=args.device,
                                ocr=args.ocr)
    data = load_images(args.images, args.num_images)
    n = len(data)
    predictor.predict(data[:2])  # warm up
    rows = []

    def row(name, count, wall, lat, unit="image"):
        rows.append((name, count / wall, 1000 * statistics.median(lat),
                     1000 * percentile(lat, 99), unit))

    decoded, wall, lat = timed_map(predictor.decode, data, 1)
    row("decode (1 thread)", n, wall, lat)
    texts, wall, lat = timed_map(predictor.read_text, decoded, args.ocr_workers)
    row(f"OCR alone ({args.ocr_workers} threads, {predictor.ocr.name})", n, wall, lat)
    ocr_ceiling = n / wall
    pairs = list(zip(decoded, texts))
    wall, lat = in_batches(lambda b: predictor.classify([p[0] for p in b], [p[1] for p in b]),
                           pairs, args.max_batch)
    row(f"encoders + head alone (batch {args.max_batch})", n, wall, lat, "batch")
    enc_ceiling = n / wall
    wall, lat = in_batches(predictor.predict, data, args.max_batch)
    row(f"Predictor.predict direct (batch {args.max_batch})", n, wall, lat, "batch")
    direct = n / wall

    server = measure_server(predictor, data, clients=args.clients, max_batch=args.max_batch,
                            max_wait_ms=args.max_wait_ms, ocr_workers=args.ocr_workers,
                            cache_hits=args.cache_hits)
    row(f"server over HTTP ({args.clients} clients, cold cache)", n, server["wall"],
        server["lat"])
    server_tp = n / server["wall"]
    row("server cache hit (1 client, keep-alive)", args.cache_hits, server["hit_wall"],
        server["hit_lat"])
    cache_p50 = 1000 * statistics.median(server["hit_lat"])
    batching = server["batching"]

    slowest = min(ocr_ceiling, enc_ceiling)
    print(f"\nsimclip bench: {predictor.backbone.info.id} on {predictor.device}, OCR "
          f"{predictor.ocr.name}, {n} images from {args.images}, cpu_count={os.cpu_count()}\n")
    print("| stage | images/s | p50 ms | p99 ms | latency per |")
    print("|---|---:|---:|---:|---|")
    for name, tp, p50, p99, unit in rows:
        print(f"| {name} | {tp:.1f} | {p50:.1f} | {p99:.1f} | {unit} |")
    print(f"\nserver batches: mean size {batching['mean_size']}, max {batching['max_size']}")
    print(f"server / slowest stage ceiling ({slowest:.1f}/s): {server_tp / slowest:.2f} "
          f"(target >= 0.8)")
    print(f"server / Predictor direct: {server_tp / direct:.2f}")
    print(f"cache hit p50: {cache_p50:.2f} ms (target <= 5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
