"""Benchmark `simclip score` against its stage ceilings, Ray and the server, in one run.

    python bench/score_bench.py                          # CPU, tiny random backbone, real memes
    python bench/score_bench.py --device cuda --ocr-device cuda   # GPU box (bench/gpu_check.sh)
    python bench/score_bench.py --steps ocr,encoder,local         # what a quick look needs

On the same inputs (the memes of --images, each once) and with one loaded model, measures:
  - the OCR ceiling: decode + OCR on a thread pool over all cores (the local engine's pool);
  - the encoder ceiling: encoders + head on decoded pictures, `--batch-size` per call;
  - the local engine (LocalEngine, rows to memory);
  - the Ray engine on this machine (a local Ray instance with every core; run_ray, Parquet);
  - the server (bench/bench_server.py's measure_server: HTTP on loopback, `--clients`);
  - the scaling model's check: the Ray engine on a simulated cluster (ray.cluster_utils.Cluster)
    of one node with one CPU, then two nodes with one CPU each;
  - with `--steps ...,peer`: the seed code's stack, Hugging Face transformers' CLIPModel at
    ViT-L/14-336's shapes (random weights), fp32, one meme at a time, image and text features.
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
OCR, ENCODER, LOCAL = "OCR ceiling", "encoder ceiling", "local engine"
RAY, SERVER = "Ray engine, this machine", "server over HTTP"
CLUSTER_1 = "Ray, simulated cluster: 1 node x 1 CPU"
CLUSTER_2 = "Ray, simulated cluster: 2 nodes x 1 CPU"
PEER = "peer: transformers CLIPModel, fp32, one at a time"
STEPS = ("ocr", "encoder", "local", "ray", "cluster", "server", "peer")
DEFAULT_STEPS = "ocr,encoder,local,ray,cluster,server"


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
    p.add_argument("--rounds", type=int, default=2,
                   help="repeat every measurement, the order reversed every other round")
    p.add_argument("--steps", default=DEFAULT_STEPS,
                   help=f"comma-separated steps (of {', '.join(STEPS)}); 'peer' needs transformers")
    p.add_argument("--peer-size", choices=("ViT-L-14-336", "tiny"), default="ViT-L-14-336",
                   help="the peer CLIPModel's shapes (tiny: a CPU dry run)")
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
    from simclip_score.cli import Tally
    from simclip_score.ledger import Ledger
    from simclip_score.local import LocalEngine
    from simclip_score.ocr import build_ocr_engine
    from simclip_score.sources import Item, plan_units
    from simclip_score.work import ScoreConfig, get_model_id, list_category_ids

    steps = set(filter(None, args.steps.split(",")))
    unknown = steps - set(STEPS)
    if unknown:
        sys.exit(f"unknown steps {sorted(unknown)}; available: {', '.join(STEPS)}")
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
    items = [Item(str(p), path=str(p)) for p in paths]
    categories, model_id, identity = list_category_ids(predictor), get_model_id(predictor), \
        predictor.identity
    ocr_identity = getattr(ocr, "identity", ocr.name)
    sync = _get_sync(predictor.device)
    walls, notes = {}, {}  # measurement -> seconds summed over the rounds, note
    steady = {RAY: [], CLUSTER_1: [], CLUSTER_2: []}  # Ray runs: (images/s, fixed s) per round

    def read(b):
        image = predictor.decode(b)
        return image, predictor.read_text(image)

    with ThreadPoolExecutor(workers) as pool:
        pairs = list(pool.map(read, data))  # the encoder and peer inputs (also warms OCR up)

    def ocr_ceiling():
        """decode + OCR over all cores, as the local engine's pool does"""
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(read, data))
        return f"decode + OCR, {workers} threads"

    def encoder_ceiling():
        """the encoders + head on decoded pictures, in batches"""
        for i in range(0, n, args.batch_size):
            chunk = pairs[i:i + args.batch_size]
            predictor.classify([p[0] for p in chunk], [p[1] for p in chunk])
        sync()
        return f"batch {args.batch_size}, {predictor.backbone.dtype}".replace("torch.", "")

    def local_engine():
        done = []
        engine = LocalEngine(predictor, config, done.extend)
        engine.run(items)
        assert len(done) == n and not any(r["error"] for r in done), "local engine errors"
        return f"{workers} OCR threads, mean encoder batch {engine.stats.as_dict()['mean_size']}"

    sessions = RaySessions()

    def ray_engine(kind, name):
        def measure():
            from simclip_score.ray_engine import run_ray

            note = sessions.use(kind)

            def run(some):
                with tempfile.TemporaryDirectory() as out:
                    t0 = time.perf_counter()
                    tally = Tally()
                    run_ray(config, plan_units([i.path for i in some]), Ledger(),
                            str(Path(out) / "scores.parquet"), categories, model_id, identity,
                            ocr_identity, cpu_batch=args.ray_cpu_batch, tally=tally)
                    assert tally.rows == len(some), f"{kind}: {tally.rows} of {len(some)}"
                    return time.perf_counter() - t0

            # T(n) = t0 + n / X: every run starts its actors (readers with their OCR models, the
            # encoder with the model, the dedup registry): a fixed cost t0 per run, then X
            # images/s. A first run starts the worker processes (imports); then a short and a
            # full run on warm workers give X and t0 (the scaling model's terms)
            small = items[:max(2, 2 * sessions.cpus * args.ray_cpu_batch)]
            first = run(small)
            t_small = run(small)
            elapsed = run(items)
            sessions.close()  # no idle Ray daemons while other measurements run
            if elapsed > t_small and len(items) > len(small):
                rate = (len(items) - len(small)) / (elapsed - t_small)
                steady[name].append((rate, t_small - len(small) / rate))
            return (f"{note}; a first run ({len(small)} inputs) took {first:.1f} s, a second "
                    f"{t_small:.1f} s"), elapsed
        return measure

    def server():
        result = measure_server(predictor, data, clients=args.clients,
                                max_batch=min(args.batch_size, 16), ocr_workers=workers,
                                cache_hits=20)
        return (f"{args.clients} clients, {workers} OCR workers, cold cache, "
                f"p50 {1000 * statistics.median(result['lat']):.0f} ms"), result["wall"]

    def peer():
        wall, note = measure_peer(predictor, pairs, args.peer_size)
        return note, wall

    plan = [("ocr", OCR, ocr_ceiling), ("encoder", ENCODER, encoder_ceiling),
            ("local", LOCAL, local_engine), ("ray", RAY, ray_engine("local", RAY)),
            ("cluster", CLUSTER_1, ray_engine("cluster-1", CLUSTER_1)),
            ("cluster", CLUSTER_2, ray_engine("cluster-2", CLUSTER_2)), ("server", SERVER, server),
            ("peer", PEER, peer)]
    plan = [(name, fn) for step, name, fn in plan if step in steps]
    for r in range(args.rounds):
        for name, fn in plan if r % 2 == 0 else plan[::-1]:  # ABBA: load drifts cancel
            t0 = time.perf_counter()
            out = fn()
            note, wall = out if isinstance(out, tuple) else (out, time.perf_counter() - t0)
            walls[name] = walls.get(name, 0.0) + wall
            notes[name] = note
            print(f"  round {r + 1}: {name}: {n / wall:.2f} images/s ({wall:.1f} s, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
    sessions.close()
    tmp.cleanup()
    rates = {name: n * args.rounds / wall for name, wall in walls.items()}
    # Ray rows: (steady images/s, fixed s) averaged over the rounds, where a fit was possible
    fits = {name: tuple(statistics.mean(v) for v in zip(*fit)) for name, fit in steady.items()
            if fit}
    # steady-state images/s: the fit for Ray rows, the end-to-end rate for the others (none
    # for a Ray row without a fit)
    rates_steady = {name: fits[name][0] if name in fits else rate for name, rate in rates.items()
                    if name in fits or name not in steady}
    rows = [(name, rates[name], walls[name] / args.rounds, notes[name]) for name, _ in plan
            if name in rates]

    print(f"\nsimclip score bench: {predictor.backbone.info.id} on {predictor.device}, OCR "
          f"{ocr_spec} ({ocr.name}), {n} images from {args.images}, cpu_count={os.cpu_count()}\n")
    print(f"{args.rounds} rounds, the order reversed every other round; images/s over all "
          "rounds, wall s per round\n")
    print("images/s: end to end (inputs / wall s); steady: the rate past the per-run fixed cost "
          "(Ray: from a short and a full run, T(n) = fixed + n / steady)\n")
    print("| measurement | images/s | steady images/s | fixed cost s | wall s | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for name, tp, wall, note in rows:
        fixed = f"{fits[name][1]:.1f}" if name in fits else "-"
        print(f"| {name} | {tp:.2f} | {rates_steady.get(name, float('nan')):.2f} | {fixed} | "
              f"{wall:.1f} | {note} |")
    print()
    local = rates.get(LOCAL)
    ceilings = [rates[k] for k in (OCR, ENCODER) if k in rates]
    if local and len(ceilings) == 2:
        print(f"local engine / slowest ceiling ({min(ceilings):.2f}/s): "
              f"{local / min(ceilings):.2f} (target >= 0.8)")
    peer = rates.get(PEER)
    if peer and ENCODER in rates:
        print(f"encoder ceiling / peer: {rates[ENCODER] / peer:.1f}")
    if peer and local:
        print(f"local engine / peer: {local / peer:.1f}")
    if not local:
        return 0
    if RAY in rates_steady:
        print(f"Ray engine / local engine: {rates_steady[RAY] / local:.2f} in steady state "
              f"(target >= 0.7); {rates[RAY] / local:.2f} end to end on {n} inputs")
    elif RAY in rates:
        print(f"Ray engine / local engine: {rates[RAY] / local:.2f} end to end on {n} inputs "
              "(too few inputs to separate the per-run fixed cost: use more)")
    if SERVER in rates:
        print(f"local engine / server: {local / rates[SERVER]:.2f}")
    one, two = rates_steady.get(CLUSTER_1), rates_steady.get(CLUSTER_2)  # None: no fit
    if one and two:
        physical = min(2, os.cpu_count() or 1)
        print(f"simulated cluster, 2 nodes / 1 node, steady state: {two / one:.2f} (scaling model: "
              f"{min(2.0, physical):.1f} while OCR-bound: CPU stage throughput = total cores x "
              f"per-core OCR rate)")
    return 0


class RaySessions:
    """One Ray session at a time: a local instance over every core, or a simulated cluster
    (ray.cluster_utils.Cluster) of one or two nodes with one CPU each. Starting one is not timed.
    """

    def __init__(self):
        self.kind = None
        self.cluster = None

    def use(self, kind):
        """Switch to the session `kind` ('local', 'cluster-1', 'cluster-2'); returns a note."""
        import ray

        self.cpus = os.cpu_count() if kind == "local" else int(kind[-1])
        if kind != self.kind:
            self.close()
            if kind == "local":
                ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                         log_to_driver=False, logging_level="WARNING")
            else:
                from ray.cluster_utils import Cluster

                node = {"num_cpus": 1, "object_store_memory": 200 * 1024 * 1024}
                self.cluster = Cluster(initialize_head=True,
                                       head_node_args={**node, "include_dashboard": False})
                if kind == "cluster-2":
                    self.cluster.add_node(**node)
                self.cluster.wait_for_nodes()
                ray.init(address=self.cluster.address, log_to_driver=False,
                         logging_level="WARNING")
            self.kind = kind
        if kind == "local":
            return f"local Ray, {os.cpu_count()} CPUs (ray.init not counted)"
        return "ray.cluster_utils.Cluster on this machine"

    def close(self):
        """Shut the current session down."""
        import ray

        if self.kind is not None:
            ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()
        self.kind = self.cluster = None


def _get_sync(device):
    """A function that waits for the device's queued work (CUDA kernels run asynchronously)."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


# Hugging Face CLIPModel shapes: ViT-L/14 at 336 px (OpenAI's), and a tiny one for dry runs
PEER_SHAPES = {
    "ViT-L-14-336": {"vision": {"hidden_size": 1024, "intermediate_size": 4096,
                                "num_hidden_layers": 24, "num_attention_heads": 16,
                                "image_size": 336, "patch_size": 14},
                     "text": {"hidden_size": 768, "intermediate_size": 3072,
                              "num_hidden_layers": 12, "num_attention_heads": 12},
                     "projection_dim": 768},
    "tiny": {"vision": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "image_size": 64, "patch_size": 16},
             "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                      "num_attention_heads": 2},
             "projection_dim": 64},
}


def measure_peer(predictor, pairs, size):
    """The seed code's stack: transformers' CLIPModel (random weights of `size`'s shapes), fp32,
    one meme at a time: preprocess, tokenize, image features, text features.

    Returns (wall seconds, note). The pixels and tokens come from our backbone's preprocess and
    tokenizer (CLIP's own resize/crop/normalise and BPE), so only the model differs.
    """
    import torch

    if os.environ.get("PEER_SITE"):  # transformers installed apart (bench/gpu_check.sh): the
        sys.path.append(os.environ["PEER_SITE"])  # environment's own packages come first
    from transformers import CLIPConfig, CLIPModel

    shapes = PEER_SHAPES[size]
    config = CLIPConfig(text_config={**shapes["text"], "vocab_size": 49408,
                                     "max_position_embeddings": 77,
                                     "projection_dim": shapes["projection_dim"]},
                        vision_config={**shapes["vision"],
                                       "projection_dim": shapes["projection_dim"]},
                        projection_dim=shapes["projection_dim"])
    device = predictor.device
    torch.manual_seed(0)
    model = CLIPModel(config).to(device).eval()
    backbone = predictor.backbone
    image_size = shapes["vision"]["image_size"]
    sync = _get_sync(device)

    def one(image, text):
        frame = image[0] if isinstance(image, list) else image
        pixels = backbone.preprocess(frame)[None].to(device)  # (1, 3, H, W)
        if pixels.shape[-1] != image_size:  # a dry run's tiny backbone with other shapes
            pixels = torch.nn.functional.interpolate(pixels, size=(image_size, image_size))
        tokens = backbone.tokenizer([text]).to(device)
        with torch.no_grad():
            model.get_image_features(pixel_values=pixels)
            model.get_text_features(input_ids=tokens)
        sync()

    for image, text in pairs[:3]:
        one(image, text)  # warm up
    t0 = time.perf_counter()
    for image, text in pairs:
        one(image, text)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return time.perf_counter() - t0, f"{size} shapes, {params:.0f} M parameters, random weights"


if __name__ == "__main__":
    sys.exit(main())
