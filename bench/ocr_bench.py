"""Measure OCR engines on real memes: word recall against reference transcriptions, and time.

Word recall of one image: the reference text and the OCR output are lowercased and split into
alphanumeric tokens (maximal runs of Unicode letters and digits, so "Don't!" gives "don", "t");
recall = sum over distinct reference words w of min(count_ref(w), count_ocr(w)) / number of
reference tokens. A word said twice in the caption must be read twice to count twice. Images
whose reference has no token are skipped, and so are the 3 HarMeme memes whose reference is the
literal string "null" (a missing transcription, not a caption). Word precision is the same
count over the OCR tokens. The table gives means over images, and per image the median and 90th
percentile wall time of the engine call (image already decoded) and the median CPU time of the
process and its children (tesseract), which leaves out time spent waiting for the core.

    python -m bench.ocr_bench ../shared/data/harmeme-c-val --engine rapidocr tesseract
    python -m bench.ocr_bench ../shared/data/harmeme-c-train-400 --annotations train400.jsonl
    taskset -c 0 python -m bench.ocr_bench DIR --engine auto --threads 1 --limit 50

The annotation file is DIR/val.jsonl, else the only *.jsonl in DIR, unless --annotations names it.

An engine is a name from OCR_ENGINES, optionally with keyword options after a colon:
`rapidocr:det_side=640,use_cls=1` or `tesseract:psm=3,masks=0`; `stock` is rapidocr with the
wheel's own settings. The engines read each image in turn (interleaved), so a change of load on
a shared machine slows them alike; the last column is each median time over the first engine's:

    python -m bench.ocr_bench ../shared/data/harmeme-c-val --engine stock auto
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

from simclip import get_ocr_engine
from simclip.ocr import parse_ocr_spec, resolve_engine_name
from simclip_train.datasets import read_transcriptions
from simclip_train.metrics import word_precision, word_recall

# The rapidocr wheel's own configuration (PP-OCRv6 small, its config.yaml), to compare against.
STOCK_RAPIDOCR = ("rapidocr:det_side=736,use_cls=1,rec_batch=6,rec_width=320,split_words=0,"
                  "max_side=2000,max_tiles=1,max_aspect=0")
ENGINE_ALIASES = {"stock": STOCK_RAPIDOCR}


parse_engine_spec = parse_ocr_spec  # the one spec parser, shared with `simclip score --ocr`


def percentile(values, q):
    """The q-th percentile (0..100) by linear interpolation."""
    values = sorted(values)
    if not values:
        return float("nan")
    pos = (len(values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def cpu_seconds():
    """CPU time used so far by this process and its finished children (tesseract runs as one)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _summary(times, cpu_times, recalls, precisions, outputs):
    """Means of recall/precision and the timing statistics of one engine."""
    return {
        "images": len(outputs),
        "scored": len(recalls),
        "recall": statistics.fmean(recalls) if recalls else float("nan"),
        "precision": statistics.fmean(precisions) if precisions else float("nan"),
        "median_ms": statistics.median(times) if times else float("nan"),
        "p90_ms": percentile(times, 90),
        "median_cpu_ms": statistics.median(cpu_times) if cpu_times else float("nan"),
        "outputs": outputs,
    }


def evaluate_engines(engines, items, warmup=1):
    """Run engines over (path, reference) items, interleaved image by image.

    Each image is read by every engine before the next image (in an order that rotates from one
    image to the next), so a change of load on a shared machine slows all engines alike and
    their time ratios stay comparable. Returns one dict per engine: mean recall/precision,
    timings and the outputs.
    """
    images = [(Image.open(p).convert("RGB"), ref) for p, ref in items]
    for engine in engines:
        for image, _ in images[:warmup]:
            engine(image)
    stats = [([], [], [], [], []) for _ in engines]  # times, cpu, recalls, precisions, outputs
    for i, (image, ref) in enumerate(images):
        for k in range(len(engines)):
            e = (i + k) % len(engines)
            times, cpu_times, recalls, precisions, outputs = stats[e]
            c0, t0 = cpu_seconds(), time.perf_counter()
            text = engines[e](image)
            times.append((time.perf_counter() - t0) * 1000)
            cpu_times.append((cpu_seconds() - c0) * 1000)
            outputs.append(text)
            r = word_recall(ref, text)
            if r is not None:
                recalls.append(r)
            p = word_precision(ref, text)
            if p is not None:
                precisions.append(p)
    return [_summary(*s) for s in stats]


def evaluate_engine(engine, items, warmup=1):
    """Run one engine over (path, reference) items -> dict of mean recall/precision and timings."""
    return evaluate_engines([engine], items, warmup)[0]


def format_table(rows, cores, threads):
    """Markdown table of evaluate_engine results: [(label, result), ...]. The last column is
    each engine's median time over the first engine's (the same images, interleaved)."""
    machine = (f"Machine: {cores} logical cores, engine threads {threads}, affinity "
               f"{len(os.sched_getaffinity(0))} core(s), load {os.getloadavg()[0]:.2f}")
    header = ("| engine / config | images (scored) | word recall (mean) | word precision (mean) "
              "| median ms | p90 ms | median CPU ms | median ms / first's |")
    lines = [machine, "", header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    base = rows[0][1]["median_ms"] if rows else float("nan")
    for label, r in rows:
        lines.append(f"| `{label}` | {r['images']} ({r['scored']}) | {r['recall']:.3f} "
                     f"| {r['precision']:.3f} | {r['median_ms']:.0f} | {r['p90_ms']:.0f} "
                     f"| {r['median_cpu_ms']:.0f} | {r['median_ms'] / base:.2f} |")
    return "\n".join(lines)


def find_annotations(data_dir, name=None):
    """The annotation file's name in data_dir: `name` if given, else val.jsonl, else the only
    *.jsonl there. Raises FileNotFoundError (none, or the named one missing) or ValueError
    (several, none named val.jsonl)."""
    data_dir = Path(data_dir)
    if name:
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"no annotation file {name!r} in {data_dir}")
        return name
    if (data_dir / "val.jsonl").is_file():
        return "val.jsonl"
    found = sorted(p.name for p in data_dir.glob("*.jsonl"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no *.jsonl annotation file in {data_dir}")
    raise ValueError(f"several annotation files in {data_dir} ({', '.join(found)}): "
                     "choose one with --annotations")


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.ocr_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", help="folder with an annotation file (JSON lines with "
                        "image, text) and images/")
    parser.add_argument("--annotations", default=None,
                        help="annotation file name in data_dir (default: val.jsonl, else the "
                             "only *.jsonl there)")
    parser.add_argument("--engine", nargs="+", default=["auto"],
                        help="engine names or name:key=value,... specs, or 'stock' (the "
                             "rapidocr wheel's own settings); the first is the time baseline "
                             "(default: auto)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--threads", type=int, default=1,
                        help="onnxruntime intra-op threads for rapidocr, and OMP_THREAD_LIMIT "
                             "for tesseract unless already set (default: 1)")
    parser.add_argument("--dump", default=None,
                        help="write per-image OCR outputs as JSON lines to this file")
    return parser.parse_args(argv)


def main(argv=None):
    """Evaluate each engine and print a Markdown table."""
    args = parse_args(argv)
    os.environ.setdefault("OMP_THREAD_LIMIT", str(args.threads))  # tesseract's OpenMP threads
    try:
        annotations = find_annotations(args.data_dir, args.annotations)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    items = read_transcriptions(args.data_dir, args.limit, annotations=annotations)
    engines, labels = [], []
    for given in args.engine:
        spec = ENGINE_ALIASES.get(given, given)
        name, kwargs = parse_engine_spec(spec)
        if resolve_engine_name(name) == "rapidocr":
            kwargs.setdefault("threads", args.threads)
        engine = get_ocr_engine(name, **kwargs)
        engines.append(engine)
        if given in ENGINE_ALIASES:
            labels.append(given)
        else:
            labels.append(engine.name if spec == name else f"{engine.name}:{spec.partition(':')[2]}")
    results = evaluate_engines(engines, items)
    rows = list(zip(labels, results))
    dumps = [{"engine": label, "image": p.name, "reference": ref, "ocr": out}
             for label, result in rows for (p, ref), out in zip(items, result["outputs"])]
    print(f"Data: {Path(args.data_dir) / annotations}, {len(items)} images\n")
    print(format_table(rows, os.cpu_count(), args.threads))
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in dumps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
