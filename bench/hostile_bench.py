"""Hostile inputs against a real server: decoding and OCR in worker processes, or in-process.

    python bench/hostile_bench.py                          # both modes, rapidocr, seed 16
    python bench/hostile_bench.py --modes isolated --fuzz 300
    python bench/hostile_bench.py --old-tree /tmp/old      # also a checkout of another build

For each mode a fresh `simclip-server` app (tiny random backbone, CPU, the given OCR engine) is
served in its own process. It is warmed with real memes, its RSS taken as the baseline, then
the corpus is sent (`--clients` at a time) while a prober sends an unseen real meme once a
second; the server's RSS is read again right after the run and after `--settle` seconds idle.

The corpus is seeded and repeatable (issue 16):

- generated bombs: MP4 sample tables (85 M samples), edit lists (1 M entries), stream counts (20
  tracks), tables declaring more entries than they hold; PNG/JPEG/GIF/WebP headers claiming up
  to 40 MP over a few hundred bytes; an OCR-dense page (1280x1280 of small words); long thin
  videos (16x1920); animation canvases (a 40 MP GIF and APNG canvas with small frames);
- a seeded mutation fuzzer: bit flips, truncation and box/chunk size edits over real memes
  (../shared/data/harmeme-c-val) and small generated MP4 and WebM videos.

Prints, per mode: requests, 5xx (500 and 503 apart), the status mix, max and p50 latency, the
five slowest inputs, the prober's latencies, and the server's RSS: warm baseline, after, after
settling. Not a test: numbers depend on the machine; docs/bench.md records runs.
"""

import argparse
import io
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "harmeme-c-val" / "images"
TOKEN = "B" * 43

SERVE = """
import json, sys
from backend import create_app
from backend.serve import create_server
config = json.loads(sys.argv[1])
app = create_app(config)
server = create_server(app, "127.0.0.1", config["PORT"])
print("serving", flush=True)
server.run()
"""


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--modes", default="isolated,in-process",
                   help="comma-separated: isolated, in-process")
    p.add_argument("--old-tree", help="also run a server from this checkout (another build)")
    p.add_argument("--ocr", default="rapidocr", help="the server's OCR engine")
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of real memes")
    p.add_argument("--fuzz", type=int, default=150, help="mutated files in the corpus")
    p.add_argument("--clients", type=int, default=2, help="hostile requests at once")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds before the last RSS")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------ generators

def _png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encode(image, fmt, **kwargs):
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def make_video(fmt="mp4", size=(64, 48), frames=10, seed=0):
    """A small real video: H.264 MP4 or VP8 WebM, `frames` frames of coloured bars."""
    import av

    rng = random.Random(seed)
    codec, options = ("libx264", {"preset": "ultrafast"}) if fmt == "mp4" else \
        ("libvpx", {"deadline": "realtime", "cpu-used": "8"})
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=10, options=options)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(frames):
            image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
            ImageDraw.Draw(image).rectangle((0, 0, size[0] // 3, size[1]), fill=(255, 255, 255))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _patch(data, kind, offset, fmt, *values):
    out = bytearray(data)
    at = out.index(kind) + 4 + offset
    out[at:at + struct.calcsize(fmt)] = struct.pack(fmt, *values)
    return bytes(out)


def _grow_parents(data, at, parents, extra):
    out = bytearray(data)
    for kind in parents:  # the enclosing boxes, innermost first
        box = bytes(out).rindex(kind, 0, at) - 4
        out[box:box + 4] = struct.pack(">I", struct.unpack(">I", out[box:box + 4])[0] + extra)
    return bytes(out)


def mp4_bombs(mp4):
    """MP4 sample-table, edit-list, stream-count and table-size bombs made from a real MP4."""
    out = {}
    bomb = _patch(mp4, b"stsz", 4, ">II", 100, 85_000_000)
    out["mp4 stsz+stts 85 M samples"] = _patch(bomb, b"stts", 4, ">II", 1, 85_000_000)
    out["mp4 stts 85 M samples"] = _patch(mp4, b"stts", 8, ">I", 85_000_000)
    out["mp4 stts declaring 50 M entries"] = _patch(mp4, b"stts", 4, ">I", 50_000_000)
    out["mp4 stco declaring 50 M entries"] = _patch(mp4, b"stco", 4, ">I", 50_000_000)
    elst = struct.pack(">I4sII", 16 + 24, b"elst", 0, 1_000_000) + bytes(24)
    edts = struct.pack(">I4s", 8 + len(elst), b"edts") + elst
    at = mp4.index(b"tkhd") - 4
    end = at + struct.unpack(">I", mp4[at:at + 4])[0]
    out["mp4 edit list 1 M entries"] = _grow_parents(mp4[:end] + edts + mp4[end:], at,
                                                    (b"trak", b"moov"), len(edts))
    at = mp4.index(b"trak") - 4
    size = struct.unpack(">I", mp4[at:at + 4])[0]
    trak = mp4[at:at + size]
    out["mp4 20 tracks"] = _grow_parents(mp4[:at + size] + trak * 19 + mp4[at + size:], at,
                                         (b"moov",), 19 * size)
    return out


def claimed_size_bombs(rng, variants=20):
    """Headers claiming up to 40 MP over a few hundred bytes (PNG, JPEG, GIF, WebP)."""
    out = {}
    for i in range(variants):
        side = rng.randrange(4000, 6325)
        depth, colour = rng.choice([(16, 6), (8, 6), (16, 2), (8, 2)])
        ihdr = struct.pack(">IIBBBBB", side, side, depth, colour, 0, 0, 0)
        stream = zlib.compress(bytes(rng.randrange(256) for _ in range(4096)))
        out[f"png {side}x{side} {depth}-bit in 1 KB #{i}"] = (
            b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + struct.pack(">I", len(stream)) + b"IDAT" + stream[:900])
    jpeg = _encode(Image.new("RGB", (6300, 6300), "white"), "JPEG", progressive=True, quality=10)
    out["jpeg progressive 40 MP in 824 B"] = jpeg[:824]
    out["jpeg baseline 40 MP in 4 KB"] = _encode(Image.new("RGB", (6300, 6300), "grey"), "JPEG",
                                                 quality=5)[:4096]
    out["gif 40 MP frame, uniform"] = _encode(Image.new("P", (6300, 6300), 0), "GIF")
    out["webp lossless 40 MP, uniform"] = _encode(Image.new("RGB", (6300, 6300), "white"), "WEBP",
                                                  lossless=True)
    out["webp 16383x2400 lossy, truncated"] = _encode(
        Image.new("RGB", (16383, 2400), "white"), "WEBP", quality=10)[:700]
    return out


def animation_canvases(rng):
    """GIF and APNG canvases of 40 MP whose frames are small."""
    frames = [Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
              for _ in range(8)]
    out = {}
    gif = bytearray(_encode(frames[0].convert("P"), "GIF", save_all=True,
                            append_images=[f.convert("P") for f in frames[1:]], duration=50))
    gif[6:10] = struct.pack("<HH", 6300, 6300)  # the logical screen (canvas) only
    out["gif 40 MP canvas, 8 small frames"] = bytes(gif)
    apng = _encode(Image.new("RGBA", (6300, 6300), (0, 0, 0, 0)), "PNG", save_all=True,
                   append_images=[Image.new("RGBA", (6300, 6300), (i * 30, 0, 0, 255))
                                  for i in range(3)], duration=50)
    out["apng 40 MP canvas, 4 frames"] = apng
    return out


def ocr_dense_page(rng, size=(1280, 1280)):
    """A page covered in small words (the OCR cost bomb of issue 16)."""
    words = ["meme", "shield", "worker", "budget", "decode", "letter", "caption", "picture",
             "untrusted", "bytes", "limit", "server"]
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for y in range(2, size[1] - 10, 11):
        draw.text((2, y), " ".join(rng.choice(words) for _ in range(22)), fill="black")
    return _encode(image, "PNG")


def mutate(data, rng, kind):
    """One seeded mutation: bit flips, a truncation, or a box/chunk size field overwritten."""
    out = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        out = out[:rng.randrange(8, len(out))]
    else:  # a size field: PNG chunk lengths, MP4 box sizes, or anywhere (WebM element sizes)
        spots = [i - 4 for tag in (b"IDAT", b"IHDR", b"moov", b"trak", b"stsz", b"mdat", b"VP8 ")
                 for i in range(len(out)) if out.startswith(tag, i)] or [rng.randrange(len(out) - 4)]
        at = max(0, rng.choice(spots))
        out[at:at + 4] = struct.pack(">I", rng.choice([0, 1, 8, 0x7FFFFFFF, 0xFFFFFFFF,
                                                       len(out) * 3]))
    return bytes(out)


def build_corpus(args):
    """[(name, bytes)]: the generated bombs, then the fuzzer's output; and the clean memes."""
    rng = random.Random(args.seed)
    memes = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() == ".png")
    mp4 = make_video("mp4", seed=args.seed)
    webm = make_video("webm", seed=args.seed + 1)
    corpus = dict(mp4_bombs(mp4))
    corpus.update(claimed_size_bombs(rng))
    corpus.update(animation_canvases(rng))
    for i in range(2):
        corpus[f"ocr-dense page 1280x1280 #{i}"] = ocr_dense_page(rng)
    corpus["long thin video 16x1920"] = make_video("mp4", size=(16, 1920), frames=12, seed=3)
    corpus["long thin video 1920x16"] = make_video("mp4", size=(1920, 16), frames=12, seed=4)
    seeds = [p.read_bytes() for p in rng.sample(memes, 20)] + [mp4, webm]
    for i in range(args.fuzz):
        kind = ("flip", "truncate", "size")[i % 3]
        corpus[f"fuzz {kind} #{i}"] = mutate(rng.choice(seeds), rng, kind)
    items = list(corpus.items())
    rng.shuffle(items)
    return items, memes


# --------------------------------------------------------------------------------- server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    """Resident set size of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def children_rss_mb(pid):
    """RSS of a process's children together (the decode workers), MiB."""
    total = 0.0
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for cpid in child.read_text().split():
            total += rss_mb(int(cpid))
    return total


def start_server(root, isolated, ocr, config_dir):
    port = free_port()
    config = {"CLASSIFIER_OPTIONS": {"model": "simclip-tiny", "pretrained": "none",
                                     "device": "cpu", "ocr": ocr},
              "TOKEN": TOKEN, "CACHE_DIR": "", "PORT": port, "CONFIG_DIR": str(config_dir),
              "DECODE_ISOLATION": isolated}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, json.dumps(config)], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "serving", "the server did not start"
    return proc, f"http://127.0.0.1:{port}"


def post(url, data):
    t0 = time.perf_counter()
    try:
        r = requests.post(url + "/v1/classify", data=data, timeout=120,
                          headers={"X-Auth-Token": TOKEN,
                                   "Content-Type": "application/octet-stream"})
        status = r.status_code
        code = r.json().get("error", {}).get("code") if status >= 400 else None
    except requests.RequestException as e:
        status, code = 0, type(e).__name__
    return status, code, time.perf_counter() - t0


def run_mode(label, root, isolated, args, corpus, memes):
    """Serve, warm, send the corpus with a prober alongside; return the measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(root, isolated, args.ocr, Path(tmp) / "config")
        try:
            warm = memes[:8]
            for path in warm:
                post(url, path.read_bytes())
            time.sleep(1.0)  # let the warm-up's allocations settle before the baseline
            baseline = rss_mb(proc.pid)
            probes, stop = [], threading.Event()
            unseen = iter(memes[8:])

            def prober():
                while not stop.wait(1.0):
                    path = next(unseen, None)
                    if path is None:
                        return
                    probes.append(post(url, path.read_bytes()))

            thread = threading.Thread(target=prober, daemon=True)
            thread.start()
            peak = [baseline]
            with ThreadPoolExecutor(args.clients) as pool:
                results = []
                for name, (status, code, seconds) in zip(
                        [n for n, _ in corpus], pool.map(lambda item: post(url, item[1]), corpus)):
                    results.append((name, status, code, seconds))
                    peak[0] = max(peak[0], rss_mb(proc.pid))
            stop.set()
            thread.join()
            after = rss_mb(proc.pid)
            workers = children_rss_mb(proc.pid)
            time.sleep(args.settle)
            settled = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {"label": label, "results": results, "probes": probes, "baseline": baseline,
            "peak": peak[0], "after": after, "settled": settled, "workers": workers}


def report(m):
    results = m["results"]
    seconds = sorted(r[3] for r in results)
    statuses = {}
    for _, status, code, _ in results:
        key = f"{status} {code}" if code else str(status)
        statuses[key] = statuses.get(key, 0) + 1
    fives = sum(1 for r in results if r[1] >= 500 or r[1] == 0)
    print(f"\n== {m['label']}: {len(results)} hostile requests")
    print(f"5xx or no answer: {fives} (500: {sum(r[1] == 500 for r in results)}, "
          f"503: {sum(r[1] == 503 for r in results)})")
    print("statuses: " + ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items())))
    print(f"latency: p50 {statistics.median(seconds):.3f} s, max {seconds[-1]:.2f} s")
    for name, status, code, s in sorted(results, key=lambda r: -r[3])[:6]:
        print(f"  {s:6.2f} s  {status} {code or ''}  {name}")
    probe = sorted(p[2] for p in m["probes"])
    if probe:
        print(f"normal meme during the run: {len(probe)} sent, p50 {statistics.median(probe):.2f} s, "
              f"max {probe[-1]:.2f} s, statuses {sorted({p[0] for p in m['probes']})}")
    print(f"server RSS: warm baseline {m['baseline']:.0f} MiB, peak {m['peak']:.0f}, "
          f"after {m['after']:.0f} (+{m['after'] - m['baseline']:.0f}), after {m['settled'] - 0:.0f} "
          f"settled (+{m['settled'] - m['baseline']:.0f}); workers {m['workers']:.0f} MiB")


def main(argv=None):
    args = parse_args(argv)
    corpus, memes = build_corpus(args)
    print(f"corpus: {len(corpus)} files, seed {args.seed}, OCR {args.ocr}, "
          f"{args.clients} at a time")
    runs = [(mode, REPO, mode == "isolated") for mode in args.modes.split(",") if mode]
    if args.old_tree:
        runs.append((f"old build ({args.old_tree})", Path(args.old_tree), False))
    for label, root, isolated in runs:
        report(run_mode(label, root, isolated, args, corpus, memes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
