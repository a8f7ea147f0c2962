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
sys.path.insert(0, str(REPO))  # run as `python bench/score_bench.py`
from bench import DEFAULT_IMAGES, add_backbone_arguments, get_model, list_images  # noqa: E402

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
    add_backbone_arguments(p, ocr_help="OCR spec (simclip_score.ocr), e.g. rapidocr")
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
    p.add_argument("--mmap-threshold", type=int, default=0,
                   help="bytes: glibc serves blocks this big or bigger from mappings of their own, in "
                        "this process (the OCR and encoder ceilings, the local engine; not Ray's workers "
                        "nor the server; simclip.set_mmap_threshold, docs/bench.md measures the cost); "
                        "0: glibc's own dynamic threshold, as `simclip score` runs")
    p.add_argument("--steps", default=DEFAULT_STEPS,
                   help=f"comma-separated steps (of {', '.join(STEPS)}); 'peer' needs transformers")
    p.add_argument("--peer-size", choices=("ViT-L-14-336", "tiny"), default="ViT-L-14-336",
                   help="the peer CLIPModel's shapes (tiny: a CPU dry run)")
    return p.parse_args(argv)


def load_inputs(folder, n, repeat, tmp):
    """Write the benchmark's inputs to `tmp` (distinct bytes each); return their paths."""
    files = list_images(folder)
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


class ScoreBench:
    """One benchmark run's inputs and loaded model, and its measurements: each method runs one
    measurement over every input and returns a note for the table, or (note, wall seconds)
    where the time to count is not the whole call."""

    def __init__(self, args, tmp):
        from simclip_score.ocr import build_ocr_engine
        from simclip_score.sources import Item
        from simclip_score.work import ScoreConfig, get_model_id, list_category_ids

        self.args = args
        self.ocr_spec = (args.ocr if args.ocr_device == "cpu"
                         else f"{args.ocr}:device={args.ocr_device}")
        self.config = ScoreConfig(model=get_model(args), pretrained=args.pretrained,
                                  device=args.device, ocr=self.ocr_spec,
                                  batch_size=args.batch_size, workers=args.workers)
        self.workers = self.config.get_workers()
        self.ocr = build_ocr_engine(self.ocr_spec)
        self.predictor = self.config.load_predictor(ocr=self.ocr)
        paths = load_inputs(args.images, args.num_images, args.repeat, tmp)
        self.data = [p.read_bytes() for p in paths]
        self.n = len(self.data)
        self.predictor.predict(self.data[:2])  # warm up
        self.items = [Item(str(p), path=str(p)) for p in paths]
        self.categories = list_category_ids(self.predictor)
        self.model_id = get_model_id(self.predictor)
        self.identity = self.predictor.identity
        self.ocr_identity = getattr(self.ocr, "identity", self.ocr.name)
        self.sync = _get_sync(self.predictor.device)
        self.sessions = RaySessions()
        self.steady = {RAY: [], CLUSTER_1: [], CLUSTER_2: []}  # Ray: (images/s, fixed s) a round
        with ThreadPoolExecutor(self.workers) as pool:  # the encoder's and peer's inputs
            self.pairs = list(pool.map(self._read, self.data))  # (also warms OCR up)

    def _read(self, data):
        image = self.predictor.decode(data)
        return image, self.predictor.read_text(image)

    def plan(self, steps):
        """[(measurement, function)] for the steps asked for, in the table's order."""
        plan = [("ocr", OCR, self.ocr_ceiling), ("encoder", ENCODER, self.encoder_ceiling),
                ("local", LOCAL, self.local_engine),
                ("ray", RAY, lambda: self.ray_engine("local", RAY)),
                ("cluster", CLUSTER_1, lambda: self.ray_engine("cluster-1", CLUSTER_1)),
                ("cluster", CLUSTER_2, lambda: self.ray_engine("cluster-2", CLUSTER_2)),
                ("server", SERVER, self.server), ("peer", PEER, self.peer)]
        return [(name, fn) for step, name, fn in plan if step in steps]

    def ocr_ceiling(self):
        """decode + OCR over all cores, as the local engine's pool does"""
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(self._read, self.data))
        return f"decode + OCR, {self.workers} threads"

    def encoder_ceiling(self):
        """the encoders + head on decoded pictures, in batches; the note splits the time into
        the images' preprocessing (resize, crop, normalize: PIL and torch on the calling
        thread's CPU) and the encoders on preprocessed pixels and texts (the device)"""
        size = self.args.batch_size
        t0 = time.perf_counter()
        for i in range(0, self.n, size):
            chunk = self.pairs[i:i + size]
            self.predictor.classify([p[0] for p in chunk], [p[1] for p in chunk])
        self.sync()
        wall = time.perf_counter() - t0
        backbone = self.predictor.backbone
        t_pre = t_enc = 0.0
        for i in range(0, self.n, size):
            chunk = self.pairs[i:i + size]
            t1 = time.perf_counter()
            pixels = backbone.preprocess_images([p[0] for p in chunk])
            t2 = time.perf_counter()
            backbone.encode_pixels(pixels)
            backbone.encode_texts([p[1] for p in chunk])
            self.sync()
            t_pre, t_enc = t_pre + t2 - t1, t_enc + time.perf_counter() - t2
        return (f"batch {size}, {backbone.dtype}; alone: preprocessing {self.n / t_pre:.0f}/s, "
                f"encoders {self.n / t_enc:.0f}/s").replace("torch.", ""), wall

    def local_engine(self):
        """LocalEngine over every input, rows to memory"""
        from simclip_score.local import LocalEngine

        done = []
        engine = LocalEngine(self.predictor, self.config, done.extend)
        engine.run(self.items)
        assert len(done) == self.n and not any(r["error"] for r in done), "local engine errors"
        return (f"{self.workers} OCR threads, mean encoder batch "
                f"{engine.stats.as_dict()['mean_size']}")

    def ray_engine(self, kind, name):
        """The Ray engine in session `kind`: a first run on a few inputs (the worker processes
        start and import), then a short and a full run on warm workers. Every run starts its
        actors (readers with their OCR models, the encoder with the model, the dedup
        registry): T(n) = t0 + n / X, a fixed cost t0 per run, then X images/s; the short and
        the full run give X and t0 (the scaling model's terms) into `self.steady`."""
        note = self.sessions.use(kind)
        small = self.items[:max(2, 2 * self.sessions.cpus * self.args.ray_cpu_batch)]
        first = self._ray_run(kind, small)
        t_small = self._ray_run(kind, small)
        elapsed = self._ray_run(kind, self.items)
        self.sessions.close()  # no idle Ray daemons while other measurements run
        if elapsed > t_small and len(self.items) > len(small):
            rate = (len(self.items) - len(small)) / (elapsed - t_small)
            self.steady[name].append((rate, t_small - len(small) / rate))
        return (f"{note}; a first run ({len(small)} inputs) took {first:.1f} s, a second "
                f"{t_small:.1f} s"), elapsed

    def _ray_run(self, kind, items):
        """Seconds one `run_ray` of `items` to a Parquet folder takes."""
        from simclip_score.cli import Tally
        from simclip_score.ledger import Ledger
        from simclip_score.ray_engine import run_ray
        from simclip_score.sources import plan_units

        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            tally = Tally()
            run_ray(self.config, plan_units([i.path for i in items]), Ledger(),
                    str(Path(out) / "scores.parquet"), self.categories, self.model_id,
                    self.identity, self.ocr_identity, cpu_batch=self.args.ray_cpu_batch,
                    tally=tally)
            assert tally.rows == len(items), f"{kind}: {tally.rows} of {len(items)}"
            return time.perf_counter() - t0

    def server(self):
        """bench_server's measure_server: HTTP on loopback, cold cache"""
        from bench.bench_server import measure_server

        result = measure_server(self.predictor, self.data, clients=self.args.clients,
                                max_batch=min(self.args.batch_size, 16),
                                ocr_workers=self.workers, cache_hits=20)
        return (f"{self.args.clients} clients, {self.workers} OCR workers, cold cache, "
                f"p50 {1000 * statistics.median(result['lat']):.0f} ms, "
                f"{result['busy']} answers 503 busy (retried)"), result["wall"]

    def peer(self):
        """transformers' CLIPModel, one meme at a time"""
        wall, note = measure_peer(self.predictor, self.pairs, self.args.peer_size)
        return note, wall

    def close(self):
        """Stop Ray, if a measurement left it running."""
        self.sessions.close()


def run_rounds(plan, rounds, n):
    """Run every measurement `rounds` times, the order reversed every other round (ABBA: a load
    that drifts during the run weighs on every row alike). Returns (wall seconds summed over
    the rounds, note) per measurement."""
    walls, notes = {}, {}
    for r in range(rounds):
        for name, fn in plan if r % 2 == 0 else plan[::-1]:
            t0 = time.perf_counter()
            out = fn()
            note, wall = out if isinstance(out, tuple) else (out, time.perf_counter() - t0)
            walls[name] = walls.get(name, 0.0) + wall
            notes[name] = note
            print(f"  round {r + 1}: {name}: {n / wall:.2f} images/s ({wall:.1f} s, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
    return walls, notes


def get_rates(walls, steady, n, rounds):
    """(images/s end to end, steady images/s, {Ray row: (steady images/s, fixed s)}): the
    steady rate is the fit for Ray rows (averaged over the rounds; none without a fit) and the
    end-to-end rate for the others."""
    rates = {name: n * rounds / wall for name, wall in walls.items()}
    fits = {name: tuple(statistics.mean(v) for v in zip(*fit)) for name, fit in steady.items()
            if fit}
    rates_steady = {name: fits[name][0] if name in fits else rate for name, rate in rates.items()
                    if name in fits or name not in steady}
    return rates, rates_steady, fits


def print_table(bench, plan, walls, notes, rates, rates_steady, fits):
    """The table of docs/bench.md."""
    args = bench.args
    print(f"\nsimclip score bench: {bench.predictor.backbone.info.id} on {bench.predictor.device}, "
          f"OCR {bench.ocr_spec} ({bench.ocr.name}), {bench.n} images from {args.images}, "
          f"cpu_count={os.cpu_count()}\n")
    print(f"{args.rounds} rounds, the order reversed every other round; images/s over all "
          "rounds, wall s per round\n")
    print("images/s: end to end (inputs / wall s); steady: the rate past the per-run fixed cost "
          "(Ray: from a short and a full run, T(n) = fixed + n / steady)\n")
    print("| measurement | images/s | steady images/s | fixed cost s | wall s | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for name, _ in plan:
        if name not in rates:
            continue
        fixed = f"{fits[name][1]:.1f}" if name in fits else "-"
        print(f"| {name} | {rates[name]:.2f} | {rates_steady.get(name, float('nan')):.2f} | "
              f"{fixed} | {walls[name] / args.rounds:.1f} | {notes[name]} |")
    print()


def print_ratios(rates, rates_steady, n):
    """The ratios to the targets: local >= 0.8 x the slowest ceiling, Ray >= 0.7 x local."""
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
        return
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


def main(argv=None):
    """Run every measurement and print the table."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.mmap_threshold:
        from simclip import set_mmap_threshold

        held = set_mmap_threshold(args.mmap_threshold)
        print(f"glibc's mmap threshold: {args.mmap_threshold} bytes" + ("" if held else " refused (not glibc?)"))
    steps = set(filter(None, args.steps.split(",")))
    unknown = steps - set(STEPS)
    if unknown:
        sys.exit(f"unknown steps {sorted(unknown)}; available: {', '.join(STEPS)}")
    with tempfile.TemporaryDirectory() as tmp:
        bench = ScoreBench(args, tmp)
        plan = bench.plan(steps)
        try:
            walls, notes = run_rounds(plan, args.rounds, bench.n)
        finally:
            bench.close()
    rates, rates_steady, fits = get_rates(walls, bench.steady, bench.n, args.rounds)
    print_table(bench, plan, walls, notes, rates, rates_steady, fits)
    print_ratios(rates, rates_steady, bench.n)
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
        """Shut the current session down (nothing to do when no Ray step ran)."""
        if self.kind is not None:
            import ray

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
