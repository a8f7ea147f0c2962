"""`simclip datasets`: fetch the openly published meme datasets, explain how to get the others.

    simclip datasets list
    simclip datasets info NAME
    simclip datasets fetch NAME --data-dir D [--base-url URL]

Harm-C is public: its annotations and images are in the GitHub repository di-dimitrov/mmf
(data/datasets/memes/defaults/), fetched here from raw.githubusercontent.com at a pinned commit.
The download
    * resumes: each file is written to `<file>.part` and continued with an HTTP Range request;
    * detects a stall from the byte count (no byte for STALL_S seconds) and retries it, as a
      connection broken mid-file or a server error (5xx, 429), up to RETRIES times with
      exponential backoff, each retry resuming the part file; checks a file's sha256 when one
      is known (`download(..., sha256=...)`);
    * checks every file's size against the server's Content-Length, that every image decodes,
      and that the annotations parse; the sha256 of every file goes to MANIFEST.json; an image
      that arrives whole (its size matches) but is truncated at the source decodes leniently
      for training (`datasets.decode_dataset_image`) and is listed under `truncated_images`;
    * is atomic: everything lands in DATA_DIR/<name>.partial/ and the folder is renamed to
      DATA_DIR/<name> only when complete, so a reader never sees half a dataset.
The base URL can be overridden (--base-url or $SIMCLIP_DATASETS_BASE_URL), e.g. for a mirror;
the tests point it at a local HTTP server.
"""

import argparse
import http.client
import json
import logging
import os
import shlex
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from simclip import ImageError, SimCLIPError
from simclip.fileutil import sha256_file

from .datasets import (
    FETCHABLE,
    SPLITS,
    DatasetFormatError,
    decode_dataset_image,
    list_datasets,
    read_split,
)

logger = logging.getLogger(__name__)

BASE_URL_ENV = "SIMCLIP_DATASETS_BASE_URL"
MMF_COMMIT = "2c375fe162a64eb9b6a6eee08460efa511674743"
HARMEME_C_URL = (f"https://raw.githubusercontent.com/di-dimitrov/mmf/{MMF_COMMIT}/"
                 f"data/datasets/memes/defaults/")
HARMEME_C_COUNTS = {"train": 3013, "val": 177, "test": 354}  # the paper's Table 1
CHUNK = 1 << 16
STALL_S = 30.0  # no byte received for this long: the transfer is stalled, retried
RETRIES = 4  # retries of a stalled or broken transfer, or a 5xx/429 answer
BACKOFF_S = 1.0  # the first retry waits this long, doubling each time
TIMEOUT_S = 60

# How to get each dataset that cannot be downloaded without a form, a login or a manual step.
INSTRUCTIONS = {
    "harmeme-c": """Harm-C (HarMeme, COVID-19 memes; Pramanick et al., Findings of ACL 2021)
  Public. `simclip datasets fetch harmeme-c --data-dir D` downloads it from
  https://github.com/di-dimitrov/mmf (data/datasets/memes/defaults/, about 430 MB).
  Layout: D/harmeme-c/{train,val,test}.jsonl, D/harmeme-c/images/covid_memes_*.png""",
    "harmeme-p": """Harm-P (HarMeme, US-politics memes; Pramanick et al., EMNLP Findings 2021)
  Annotations (V1, deduplicated): https://github.com/LCS2-IIITD/MOMENTA, folder
  HarMeme_V1/Annotations/ (train_v1.jsonl, val_v1.jsonl, test_v1.jsonl).
  Images: request them from the authors (links in the MOMENTA README).
  Layout: D/harmeme-p/{train,val,test}_v1.jsonl, D/harmeme-p/images/memes_*.png
  (the older V0 files {train,val,test}.jsonl are read with --dataset harmeme-p:binary-v0;
  the paper's Harm-P numbers are on V0, so V1 numbers are not comparable with them)""",
    "mami": """MAMI (SemEval-2022 Task 5, Multimedia Automatic Misogyny Identification)
  Request access with the form linked from
  https://github.com/MIND-Lab/SemEval2022-Task-5-Multimedia-Automatic-Misogyny-Identification-MAMI-
  (the organisers send the password of the zip files).
  Layout: D/mami/training.csv + D/mami/training/*.jpg   (TSV: file_name, misogynous, shaming,
          stereotype, objectification, violence, Text Transcription)
          D/mami/Test.csv + D/mami/test_labels.txt + D/mami/test/*.jpg
  Validation: a fixed 10% of training.csv, chosen by a hash of file_name.""",
    "hateful-memes": """Hateful Memes (Kiela et al., NeurIPS 2020)
  Accept the dataset licence and download it from the Hateful Memes Challenge page
  (https://hatefulmemeschallenge.com, data hosted by DrivenData) or its licensed mirrors.
  Layout: D/hateful-memes/{train,dev_seen,test_seen,dev_unseen,test_unseen}.jsonl
          D/hateful-memes/img/*.png        (jsonl fields: id, img, text, label)
  Splits: train, val = dev_seen, test = test_seen (also dev_unseen, test_unseen).""",
    "multioff": """MultiOFF (Suryawanshi et al., TRAC 2020)
  Download from the Google Drive link in
  https://github.com/bharathichezhiyan/Multimodal-Meme-Classification-Identifying-Offensive-Content-in-Image-and-Text
  Layout: D/multioff/{Training,Validation,Testing}_meme_dataset.csv
          D/multioff/img/*  (the 'Labelled Images' folder, renamed)""",
    "memotion": """Memotion 7k (SemEval-2020 Task 8; Sharma et al.)
  Training set: Kaggle dataset williamscott701/memotion-dataset-7k (Kaggle login);
  test set and ground truth: from the task organisers (SemEval-2020 Task 8 page).
  Layout: D/memotion/labels.csv + D/memotion/images/*
          D/memotion/2000_testdata.csv + D/memotion/Meme_groundTruth.csv + D/memotion/2000_data/*
  Validation: a fixed 10% of labels.csv, chosen by a hash of image_name.""",
}


class DownloadError(SimCLIPError, RuntimeError):
    """A download failed or its size did not match what the server announced."""

    code = "download_failed"


def download(url, dest, progress=None, sha256=None, stall_s=None, retries=None, backoff_s=None):
    """Download `url` to `dest`, resuming `dest.part` with an HTTP Range request.

    The server's Content-Length (or Content-Range total) must match the bytes received, and
    `sha256` (hex) the file when given. A transfer with no byte for `stall_s` seconds (default
    STALL_S), a connection broken mid-file or a 5xx/429 answer is retried `retries` times
    (default RETRIES) after `backoff_s` seconds (default BACKOFF_S), doubling each time; each
    retry resumes the part file with a Range request.

    Returns:
        The number of bytes fetched by this call (0 when `dest` already existed).

    Raises:
        DownloadError: HTTP errors (the 404 case has `.missing = True`), size or checksum
            mismatches, a host that cannot be reached (`.unreachable = True`).
    """
    retries = RETRIES if retries is None else retries
    delay = BACKOFF_S if backoff_s is None else backoff_s
    stall_s = STALL_S if stall_s is None else stall_s
    fetched = 0
    for attempt in range(retries + 1):
        try:
            fetched += _download_once(url, dest, progress, stall_s)
            break
        except DownloadError as e:
            if attempt == retries or not getattr(e, "retry", False):
                raise
            logger.warning("%s (try %d of %d); retrying in %.1f s", e, attempt + 1, retries + 1,
                           delay)
            time.sleep(delay)
            delay *= 2
    if sha256 is not None and fetched and sha256_file(dest) != sha256:
        Path(dest).unlink()
        raise DownloadError(f"{url}: the file's sha256 is not the expected {sha256}; it was "
                            f"deleted, run the command again to fetch it anew")
    return fetched


def _download_once(url, dest, progress, stall_s):
    """One try of `download`; a DownloadError worth a retry has `.retry = True`."""
    dest = Path(dest)
    if dest.is_file():
        return 0
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "simclip-datasets"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part file is already complete
            part.replace(dest)
            return 0
        err = DownloadError(f"{url}: HTTP {e.code} {e.reason}")
        err.missing = e.code == 404
        err.retry = e.code >= 500 or e.code == 429
        raise err from e
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        host = urllib.parse.urlsplit(url).netloc or url
        err = DownloadError(f"cannot reach {host} ({getattr(e, 'reason', e)}) for {url}")
        err.unreachable = True  # offline, DNS, refused, timed out: fetch_harmeme_c says what to do
        err.retry = isinstance(getattr(e, "reason", e), TimeoutError)
        raise err from e
    with response:
        # urlopen's timeout covers the connection; from here a read waiting stall_s seconds
        # for its next byte is a stall (the byte count stopped), retried by `download`
        sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
        if sock is not None:
            sock.settimeout(stall_s)
        if response.status == 206:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            expected = int(total) if total.isdigit() else None
            mode = "ab"
        else:  # the server ignored Range: start over
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            have, mode = 0, "wb"
        fetched = 0
        with open(part, mode) as f:
            try:
                for block in iter(lambda: response.read1(CHUNK), b""):  # what arrived
                    f.write(block)
                    fetched += len(block)
                    if progress is not None:
                        progress(len(block))
            except TimeoutError as e:
                err = DownloadError(f"{url}: stalled, no byte for {stall_s:g} s after "
                                    f"{have + fetched} bytes; run the command again to resume")
                err.unreachable = err.retry = True
                raise err from e
            except (OSError, http.client.HTTPException) as e:
                err = DownloadError(f"{url}: the connection broke after {have + fetched} bytes "
                                    f"({e}); run the command again to resume")
                err.unreachable = err.retry = True
                raise err from e
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise DownloadError(f"{url}: got {size} bytes, the server announced {expected}; "
                            f"run the command again to resume")
    part.replace(dest)
    return fetched


def get_base_url(name, base_url=None):
    """The URL the files of `name` are fetched from: --base-url, $SIMCLIP_DATASETS_BASE_URL, or
    the dataset's published location."""
    url = base_url or os.environ.get(BASE_URL_ENV) or {"harmeme-c": HARMEME_C_URL}[name]
    return url if url.endswith("/") else url + "/"


def fetch_harmeme_c(data_dir, base_url=None, workers=8, force=False, progress=True):
    """Download Harm-C into DATA_DIR/harmeme-c (see module docstring); return that folder.

    Raises:
        DownloadError: when the server cannot be reached, one message that says what to do
            (connect and run again, a mirror with --base-url, or the files by hand); a copy of
            the split files laid in DATA_DIR/harmeme-c by hand is used instead, with a warning.
    """
    try:
        return _fetch_harmeme_c(data_dir, base_url, workers, force, progress)
    except DownloadError as e:
        if not getattr(e, "unreachable", False):
            raise
        final = Path(data_dir) / "harmeme-c"
        if not force and all((final / f"{split}.jsonl").is_file() for split in SPLITS):
            logger.warning("%s; using the copy in %s as it is (no MANIFEST.json: not checked)",
                           e, final)
            return final
        err = DownloadError(unreachable_message(e, data_dir))
        err.unreachable = True
        raise err from e


def unreachable_message(error, data_dir):
    """What failed and the three ways to fix it, for a Harm-C download that found no server."""
    d = shlex.quote(str(data_dir))
    return (f"cannot download Harm-C: {error}.\n"
            f"To fix it, one of:\n"
            f"  - connect to the internet and run the same command again (what was downloaded "
            f"is kept and resumed);\n"
            f"  - download from a mirror: --base-url URL, or ${BASE_URL_ENV}=URL in the "
            f"environment (for setup: simclip-server's, set before it starts), a folder "
            f"with annotations/{{train,val,test}}.jsonl and images/;\n"
            f"  - fetch it by hand: the folder data/datasets/memes/defaults/ of "
            f"https://github.com/di-dimitrov/mmf (commit {MMF_COMMIT[:7]}), with its "
            f"annotations/{{train,val,test}}.jsonl put in {d}/harmeme-c/ and its images/ "
            f"as {d}/harmeme-c/images/; then run the same command again.")


def _fetch_harmeme_c(data_dir, base_url=None, workers=8, force=False, progress=True):
    """fetch_harmeme_c without the advice on an unreachable server."""
    data_dir = Path(data_dir)
    final = data_dir / "harmeme-c"
    if (final / "MANIFEST.json").is_file() and not force:
        logger.info("%s is already complete (MANIFEST.json); --force downloads it again", final)
        return final
    url = get_base_url("harmeme-c", base_url)
    work = data_dir / "harmeme-c.partial"
    (work / "annotations").mkdir(parents=True, exist_ok=True)
    (work / "images").mkdir(exist_ok=True)

    rows, images = {}, []
    for split in SPLITS:
        download(f"{url}annotations/{split}.jsonl", work / "annotations" / f"{split}.jsonl")
        lines = (work / "annotations" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        rows[split] = [line for line in lines if line.strip()]
        for n, line in enumerate(rows[split], 1):
            try:
                name = json.loads(line)["image"]
            except (ValueError, KeyError, TypeError) as e:
                raise DatasetFormatError(f"{url}annotations/{split}.jsonl, line {n}: "
                                         f"no 'image' field ({e})") from e
            if "/" in name or "\\" in name or name.startswith("."):
                raise DatasetFormatError(f"{url}annotations/{split}.jsonl, line {n}: "
                                         f"unsafe image name {name!r}")
            images.append(name)
        if url == HARMEME_C_URL and len(rows[split]) != HARMEME_C_COUNTS[split]:
            logger.warning("%s has %d memes, the paper lists %d", split, len(rows[split]),
                           HARMEME_C_COUNTS[split])
    images = sorted(set(images))

    missing = []
    bar = tqdm(total=len(images), desc="harmeme-c images", unit="file", disable=not progress,
               file=sys.stderr)

    def get(name):
        try:
            download(f"{url}images/{name}", work / "images" / name)
        except DownloadError as e:
            if not getattr(e, "missing", False):
                raise
            missing.append(name)
        bar.update(1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(get, images))
    bar.close()
    if missing:
        logger.warning("%d image(s) are not in the repository and their memes are left out: %s",
                       len(missing), ", ".join(sorted(missing)[:10]))

    manifest = {"source": url, "commit": MMF_COMMIT if url == HARMEME_C_URL else None,
                "missing_images": sorted(missing), "truncated_images": [], "files": {}}
    for name in images:
        if name in missing:
            continue
        path = work / "images" / name
        try:
            _, truncated = decode_dataset_image(path)
        except (ImageError, ValueError, OSError) as e:
            path.unlink()
            raise DownloadError(f"{url}images/{name} is not a readable image ({e}); "
                                f"run the command again to fetch it anew") from e
        if truncated:
            logger.warning("%s is truncated at the source; it decodes leniently", name)
            manifest["truncated_images"].append(name)
        manifest["files"][f"images/{name}"] = {"size": path.stat().st_size,
                                               "sha256": sha256_file(path)}
    for split in SPLITS:
        kept = [line for line in rows[split] if json.loads(line)["image"] not in missing]
        out = work / f"{split}.jsonl"
        out.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        manifest["files"][f"{split}.jsonl"] = {"size": out.stat().st_size,
                                               "sha256": sha256_file(out), "memes": len(kept)}
        read_split("harmeme-c", work, split)  # the annotations must parse
    shutil.rmtree(work / "annotations")
    (work / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)
    return final


def parse_args(argv):
    """Arguments of `simclip datasets`."""
    p = argparse.ArgumentParser(prog="simclip datasets",
                                description="fetch public meme datasets / show how to get others")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list the datasets and their settings")
    info = sub.add_parser("info", help="where a dataset is published and its layout")
    info.add_argument("name", choices=sorted(INSTRUCTIONS))
    fetch = sub.add_parser("fetch", help="download a public dataset")
    fetch.add_argument("name", choices=sorted(INSTRUCTIONS))
    fetch.add_argument("--data-dir", required=True, help="the dataset goes to DATA_DIR/NAME")
    fetch.add_argument("--base-url", default=None,
                       help=f"mirror to download from (default: ${BASE_URL_ENV} or the "
                            f"published location)")
    fetch.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    fetch.add_argument("--force", action="store_true", help="download again even if complete")
    return p.parse_args(argv)


def main(argv=None):
    """`simclip datasets list|info|fetch`."""
    args = parse_args(argv)
    if args.action == "list":
        for name, settings in list_datasets().items():
            how = "fetch" if name in FETCHABLE else "on request (see `simclip datasets info`)"
            print(f"{name:<14} settings: {', '.join(settings):<32} {how}")
        return 0
    if args.action == "info":
        print(INSTRUCTIONS[args.name])
        return 0
    if args.name not in FETCHABLE:
        print(f"{args.name} cannot be downloaded automatically.\n\n{INSTRUCTIONS[args.name]}",
              file=sys.stderr)
        return 2
    try:
        root = fetch_harmeme_c(args.data_dir, args.base_url, args.workers, args.force)
    except (SimCLIPError, OSError) as e:
        print(f"simclip datasets fetch: {e}", file=sys.stderr)
        return 1
    print(f"harmeme-c ready in {root}")
    return 0
