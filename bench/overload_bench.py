"""Overload: 400 distinct real memes posted at once to a real simclip-server, OCR on.

    python bench/overload_bench.py                          # this checkout's server
    python bench/overload_bench.py --old-ref 5ee19d8        # and, in the same run, an old build
    python bench/overload_bench.py --retry                  # shed clients honour retry_after_ms

Each of N clients opens its own connection and posts one picture at the same instant (a
barrier): the memes of harmeme-c-val and harmeme-c-train-400, each made distinct by one pixel
set from its index and the seed (so neither the result cache nor single-flight merges any). A
probe asks /v1/health every 200 ms meanwhile. Reports, per build: every request answered or
not (nothing lost), the share answered 503 within 100 ms, the latency of the 503s and of the
admitted (200) requests (p50/p99/max, time to the whole answer, measured from the barrier),
and health's latency during the run. With --retry a shed client waits `retry_after_ms` (the
503's JSON field; Retry-After in seconds otherwise) and posts again, until it gets an answer
that is not 503: the time until all N pictures are classified.

The old build runs from a `git worktree` of --old-ref in a temporary folder, with the same
Python environment, model and options. Each server gets a fresh result cache. Not a test:
numbers depend on the machine; docs/bench.md ("Overload") records runs.
"""

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_FOLDERS = (SHARED / "harmeme-c-val" / "images", SHARED / "harmeme-c-train-400" / "images")
FAST_503_S = 0.100  # the target: a shed request is answered within 100 ms
HEALTH_EVERY_S = 0.2


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", "--clients", type=int, default=400, help="pictures posted at once")
    p.add_argument("--seed", type=int, default=0, help="makes the pictures distinct per run")
    p.add_argument("--model", default="simclip-tiny")
    p.add_argument("--pretrained", default="none")
    p.add_argument("--device", default="cpu")
    p.add_argument("--ocr", default="auto", help="OCR engine (auto: the server's default)")
    p.add_argument("--old-ref", help="also run this git commit's server (e.g. the parent of "
                   "the admission change) from a temporary git worktree")
    p.add_argument("--retry", action="store_true",
                   help="shed clients wait retry_after_ms and post again until answered")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="client read timeout in s (an answer later than this counts as lost)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra simclip-server option for the new build (repeatable)")
    return p.parse_args(argv)


def percentile(values, q):
    """The q-th percentile (0-100) of values, nearest rank; None when empty."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


def make_distinct_memes(n, seed, folders=DEFAULT_FOLDERS):
    """n PNG bodies: real memes, cycled if needed, each with one pixel set from (index, seed)."""
    files = sorted(f for folder in folders if folder.is_dir() for f in folder.iterdir()
                   if f.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not files:
        sys.exit(f"no memes in {', '.join(map(str, folders))}")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        with Image.open(files[i % len(files)]) as im:
            im = im.convert("RGB")
            im.putpixel((i % im.width, (i // im.width) % im.height),
                        (rng.randrange(256), rng.randrange(256), i % 256))
            buf = io.BytesIO()
            im.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


class Server:
    """simclip-server from `root` (a checkout) in a subprocess, with its own config and cache."""

    def __init__(self, root, args, work):
        self.root, self.work = Path(root), Path(work)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(self.work / "config"),
                    "XDG_CACHE_HOME": str(self.work / "xdg-cache"), "HF_HUB_OFFLINE": "1",
                    "PYTHONPATH": str(self.root)}
        command = [sys.executable, "-m", "backend.serve"]
        self.token = subprocess.run([*command, "--print-token"], env=self.env, cwd=self.root,
                                    capture_output=True, text=True, check=True,
                                    timeout=120).stdout.strip()
        self.argv = [*command, "--port", str(self.port), "--cache-dir", str(self.work / "cache"),
                     *args]
        self.log = open(self.work / "server.log", "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(self.argv, cwd=self.root, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the server at {self.root} exited; see {self.work / 'server.log'}")
            try:
                status, body, _ = request(self.url + "/v1/health", self.token, timeout=5)
                if status == 200 and json.loads(body).get("state") == "ready":
                    return json.loads(body)
            except OSError:
                pass
            time.sleep(0.5)
        sys.exit(f"the server at {self.root} did not become ready")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, token, data=None, timeout=30.0):
    """One request on its own connection: (status, body bytes, headers)."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"X-Auth-Token": token, "Connection": "close",
                                          **({"Content-Type": "image/png"} if data else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def retry_after_s(body, headers):
    """The wait a 503 asks for: retry_after_ms from the JSON, else Retry-After (seconds)."""
    try:
        return json.loads(body)["error"]["retry_after_ms"] / 1000.0
    except (ValueError, KeyError, TypeError):
        return float(headers.get("Retry-After", "1"))


def flood(server, memes, retry, timeout):
    """Post every meme at once; returns per-client records and the health probe's latencies."""
    barrier = threading.Barrier(len(memes) + 1)
    records = [None] * len(memes)
    health = []  # (latency s or None for a failure)
    done = threading.Event()

    def client(i):
        barrier.wait()
        t0 = time.perf_counter()
        record = {"first": None, "first_s": None, "final": None, "final_s": None, "tries": 0}
        while True:
            record["tries"] += 1
            try:
                status, body, headers = request(server.url + "/v1/classify", server.token,
                                                memes[i], timeout)
            except OSError as e:  # no answer: lost
                record["error"] = type(e).__name__
                break
            elapsed = time.perf_counter() - t0
            if record["first"] is None:
                record["first"], record["first_s"] = status, elapsed
            record["final"], record["final_s"] = status, elapsed
            if status != 503 or not retry:
                break
            time.sleep(retry_after_s(body, headers))
        records[i] = record

    def probe():
        barrier.wait()
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                status, _, _ = request(server.url + "/v1/health", server.token, timeout=30)
                health.append(time.perf_counter() - t0 if status == 200 else None)
            except OSError:
                health.append(None)
            done.wait(HEALTH_EVERY_S)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(memes))]
    prober = threading.Thread(target=probe)
    for t in (*threads, prober):
        t.start()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    done.set()
    prober.join()
    return records, health, wall


def summarize(name, records, health, wall, retry):
    """One build's numbers as a dict (also printed)."""
    n = len(records)
    lost = [r for r in records if r["first"] is None]
    first_503 = [r["first_s"] for r in records if r["first"] == 503]
    admitted = [r["first_s"] for r in records if r["first"] == 200]
    others = sorted({r["first"] for r in records} - {200, 503, None})
    ok_health = [h for h in health if h is not None]

    def ms(v):
        return None if v is None else round(v * 1000, 1)

    out = {
        "build": name, "clients": n, "answered": n - len(lost), "lost": len(lost),
        "answered_503": len(first_503),
        "share_503_within_100ms": round(sum(s <= FAST_503_S for s in first_503) / n, 3),
        "503_ms": {"p50": ms(percentile(first_503, 50)), "p99": ms(percentile(first_503, 99)),
                   "max": ms(max(first_503, default=None))},
        "admitted_200": len(admitted),
        "admitted_s": {"p50": _s(percentile(admitted, 50)), "p99": _s(percentile(admitted, 99)),
                       "max": _s(max(admitted, default=None))},
        "within_30s_200": sum(s <= 30 for s in admitted),
        "other_statuses": others,
        "health_ms": {"probes": len(health), "failed": len(health) - len(ok_health),
                      "p50": ms(percentile(ok_health, 50)), "p99": ms(percentile(ok_health, 99)),
                      "max": ms(max(ok_health, default=None))},
        "wall_s": _s(wall),
    }
    if retry:
        finals = [r["final_s"] for r in records if r["final"] == 200]
        out["with_retries"] = {"classified": len(finals),
                               "tries_mean": round(sum(r["tries"] for r in records) / n, 2),
                               "p50_s": _s(percentile(finals, 50)),
                               "p99_s": _s(percentile(finals, 99)),
                               "all_done_s": _s(max(finals, default=None))}
    print(json.dumps(out, indent=1), flush=True)
    return out


def _s(v):
    return None if v is None else round(v, 2)


def run_build(name, root, server_args, memes, args):
    with tempfile.TemporaryDirectory(prefix=f"overload-{name}-") as work:
        server = Server(root, server_args, work)
        try:
            info = server.wait_ready()
            print(f"# {name}: {root} serving {info['model']}, OCR {info['ocr']}, "
                  f"device {info['device']}", flush=True)
            records, health, wall = flood(server, memes, args.retry, args.timeout)
            after = json.loads(request(server.url + "/v1/health", server.token)[1])
        finally:
            server.stop()
    summary = summarize(name, records, health, wall, args.retry)
    summary["server_admission"] = after.get("admission")  # None on a build without one
    print(json.dumps({"server_admission": summary["server_admission"]}), flush=True)
    return summary


def main(argv=None):
    """Run the overload benchmark; returns the exit status."""
    args = parse_args(argv)
    memes = make_distinct_memes(args.clients, args.seed)
    common = ["--model", args.model, "--pretrained", args.pretrained, "--device", args.device,
              *(["--ocr", args.ocr] if args.ocr != "auto" else [])]
    print(f"# {len(memes)} distinct memes, {sum(map(len, memes)) / len(memes) / 1024:.0f} KiB "
          f"mean; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}", flush=True)
    results = [run_build("new", REPO, [*common, *args.server_arg], memes, args)]
    if args.old_ref:
        old = Path(tempfile.mkdtemp(prefix="overload-old-src-")) / "src"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old),
                        args.old_ref], check=True, capture_output=True)
        try:
            results.append(run_build(f"old ({args.old_ref})", old, common, memes, args))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)],
                           check=False)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
