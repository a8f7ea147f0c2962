"""Benchmark `simclip score` against its stage ceilings, Ray and the server, in one run.

    python bench/score_bench.py                          # CPU, tiny random backbone, real memes
    python bench/score_bench.py --device cuda --ocr-device cuda   # GPU box (bench/gpu_check.sh)
    python bench/score_bench.py --skip ray,cluster,server         # what a quick look needs

On the same inputs (the memes of --images, each once) and with one loaded model, measures:
  - the OCR ceiling: decode + OCR on a thread pool over all cores (the local engine's pool);
  - the encoder ceiling: encoders + head on decoded pictures, `--batch-size` per call;
  - the local engine (LocalEngine, rows to memory);
  - the Ray engine on this machine (a local Ray instance with every core; run_ray, Parquet);
  - the server (bench/bench_server.py's measure_server: HTTP on loopback, `--clients`);
  - the scaling model's check: the Ray engine on a simulated cluster (ray.cluster_utils.Cluster)
    of one node with one CPU, then two nodes with one CPU each.
Prints the table and the ratios to the targets: local >= 0.8 x the slowest ceiling, Ray on one
machine >= 0.7 x local. Not a test: numbers depend on the machine; docs/bench.md records runs.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "harmeme-c-val" / "images"
STEPS = ("ray", "cluster", "server")


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (the encoders)")
    p.add_argument("--model", help="default: simclip-tiny on CPU, ViT-L-14-336 on CUDA")
    p.add_argument("--pretrained", default="none", help="default: random weights")
    p.add_argument("--ocr", default="auto", help="OCR spec (simclip_score.ocr), e.g. rapidocr")
    p.add_argument("--ocr-device", default="cpu", help="cpu, or cuda: rapidocr on onnxruntime-gpu")
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of meme images")
    p.add_argument("-n", "--num-images", type=int, default=0, help="memes used (0: all)")
    p.add_argument("--repeat", type=int, default=1,
                   help="copies of each meme with a changed byte (distinct sha256), for GPU runs "
                        "that need more pictures than the folder has")
    p.add_argument("--workers", type=int, default=0, help="OCR threads (0: one per core)")
    p.add_argument("--batch-size", type=int, default=32, help="pictures per encoder batch")
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (server)")
    p.add_argument("--ray-cpu-batch", type=int, default=4, help="inputs per Ray decode+OCR task")
    p.add_argument("--skip", default="", help=f"comma-separated steps to skip: {', '.join(STEPS)}")
    return p.parse_args(argv)


def load_inputs(folder, n, repeat, tmp):
    """Write the benchmark's inputs to `tmp` (distinct bytes each); return their paths."""
    files = sorted(f for f in Path(folder).iterdir()
                   if f.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp", ".gif"})
    if not files:
        sys.exit(f"no images in {folder}")
    files = files[:n] if n else files
    paths = []
    for k in range(repeat):
        for f in files:
            data = f.read_bytes()
            path = Path(tmp) / f"{k}-{f.name}"
            # a trailing byte after the image end changes the sha256, not the picture
            path.write_bytes(data + bytes([k]) if k else data)
            paths.append(path)
    return paths


def main(argv=None):
    """Run every measurement and print the table."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    from bench.bench_server import measure_server
    from simclip_score.local import LocalEngine
    from simclip_score.ocr import build_ocr_engine
    from simclip_score.sources import Item
    from simclip_score.work import ScoreConfig, get_model_id, list_category_ids

    skip = set(filter(None, args.skip.split(",")))
    model = args.model or ("ViT-L-14-336" if args.device.startswith("cuda") else "simclip-tiny")
    ocr_spec = args.ocr if args.ocr_device == "cpu" else f"{args.ocr}:device={args.ocr_device}"
    config = ScoreConfig(model=model, pretrained=args.pretrained, device=args.device,
                         ocr=ocr_spec, batch_size=args.batch_size, workers=args.workers)
    workers = config.get_workers()
    ocr = build_ocr_engine(ocr_spec)
    predictor = config.load_predictor(ocr=ocr)
    tmp = tempfile.TemporaryDirectory()
    paths = load_inputs(args.images, args.num_images, args.repeat, tmp.name)
    data = [p.read_bytes() for p in paths]
    n = len(data)
    predictor.predict(data[:2])  # warm up
    rows, rates = [], {}

    def row(name, count, wall, note=""):
        rates[name] = count / wall
        rows.append((name, count / wall, wall, note))
        print(f"  {name}: {count / wall:.2f} images/s ({wall:.1f} s)", flush=True)

    # OCR ceiling: decode + OCR over all cores, as the local engine's pool does
    def read(b):
        image = predictor.decode(b)
        return image, predictor.read_text(image)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        pairs = list(pool.map(read, data))
    row("OCR ceiling", n, time.perf_counter() - t0, f"decode + OCR, {workers} threads")

    # encoder ceiling: the encoders + head on decoded pictures, in batches
    t0 = time.perf_counter()
    for i in range(0, n, args.batch_size):
        chunk = pairs[i:i + args.batch_size]
        predictor.classify([p[0] for p in chunk], [p[1] for p in chunk])
    row("encoder ceiling", n, time.perf_counter() - t0, f"batch {args.batch_size}")
    slowest = min(rates["OCR ceiling"], rates["encoder ceiling"])

    items = [Item(str(p), path=str(p)) for p in paths]
    done = []
    engine = LocalEngine(predictor, config, done.extend)
    t0 = time.perf_counter()
    engine.run(items)
    batches = engine.stats.as_dict()
    row("local engine", n, time.perf_counter() - t0,
        f"{workers} OCR threads, mean encoder batch {batches['mean_size']}")
    assert len(done) == n and not any(r["error"] for r in done), "local engine errors"

    categories, model_id, identity = list_category_ids(predictor), get_model_id(predictor), \
        predictor.identity
    ocr_identity = getattr(ocr, "identity", ocr.name)

    def ray_run(label, note, **kwargs):
        from simclip_score.ray_engine import run_ray

        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            written = run_ray(config, items, str(Path(out) / "scores.parquet"), categories,
                              model_id, identity, ocr_identity, cpu_batch=args.ray_cpu_batch,
                              **kwargs)
            row(label, n, time.perf_counter() - t0, note)
        assert len(written) == n, f"{label}: {len(written)} rows of {n}"

    if "ray" not in skip:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
        init_s = time.perf_counter() - t0
        ray_run("Ray engine, this machine", f"local Ray, {os.cpu_count()} CPUs "
                f"(ray.init {init_s:.1f} s, not counted)")
        ray.shutdown()

    if "cluster" not in skip:
        import ray
        from ray.cluster_utils import Cluster

        node = {"num_cpus": 1, "object_store_memory": 200 * 1024 * 1024}
        cluster = Cluster(initialize_head=True, head_node_args={**node,
                                                                "include_dashboard": False})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        ray_run("Ray, simulated cluster: 1 node x 1 CPU", "ray.cluster_utils.Cluster")
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray_run("Ray, simulated cluster: 2 nodes x 1 CPU", "ray.cluster_utils.Cluster")
        ray.shutdown()
        cluster.shutdown()

    if "server" not in skip:
        server = measure_server(predictor, data, clients=args.clients,
                                max_batch=min(args.batch_size, 16), ocr_workers=workers,
                                cache_hits=20)
        row("server over HTTP", n, server["wall"],
            f"{args.clients} clients, {workers} OCR workers, cold cache, "
            f"p50 {1000 * statistics.median(server['lat']):.0f} ms")
    tmp.cleanup()

    print(f"\nsimclip score bench: {predictor.backbone.info.id} on {predictor.device}, OCR "
          f"{ocr_spec} ({ocr.name}), {n} images from {args.images}, cpu_count={os.cpu_count()}\n")
    print("| measurement | images/s | wall s | notes |")
    print("|---|---:|---:|---|")
    for name, tp, wall, note in rows:
        print(f"| {name} | {tp:.2f} | {wall:.1f} | {note} |")
    local = rates["local engine"]
    print(f"\nlocal engine / slowest ceiling ({slowest:.2f}/s): {local / slowest:.2f} "
          f"(target >= 0.8)")
    if "Ray engine, this machine" in rates:
        print(f"Ray engine / local engine: {rates['Ray engine, this machine'] / local:.2f} "
              f"(target >= 0.7)")
    if "server over HTTP" in rates:
        print(f"local engine / server: {local / rates['server over HTTP']:.2f}")
    one, two = (rates.get(f"Ray, simulated cluster: {k} x 1 CPU") for k in ("1 node", "2 nodes"))
    if one and two:
        physical = min(2, os.cpu_count() or 1)
        print(f"simulated cluster, 2 nodes / 1 node: {two / one:.2f} (scaling model: "
              f"{min(2.0, physical):.1f} while OCR-bound: CPU stage throughput = total cores x "
              f"per-core OCR rate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
