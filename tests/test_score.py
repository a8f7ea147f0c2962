"""`simclip score` with the local engine: sources, rows, errors, dedup, resume, cache, OCR specs."""

import ast
import csv
import http.server
import io
import json
import queue
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
from http_fakes import serve_loopback
from PIL import Image

from score_support import TINY, assert_same_rows, by_path, make_corpus, require
from simclip import collect_batch, load_classifier
from simclip_score import cli as score_cli
from simclip_score import ocr as score_ocr
from simclip_score.output import COLUMNS, read_rows
from simclip_score.sources import iter_items


def score(*args):
    """Run `simclip score` in-process with the tiny backbone; returns the exit status."""
    return score_cli.main([*map(str, args), *TINY, "--no-progress"])


@pytest.fixture(scope="module")
def corpus(harmeme_val_dir, tmp_path_factory):
    """8 real memes, one of them twice, and two broken files."""
    return make_corpus(tmp_path_factory.mktemp("corpus"), harmeme_val_dir / "images", 8)


def test_a_folder_of_memes_and_two_broken_files_gives_one_row_each_with_typed_errors(
        corpus, tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    assert score(corpus, "--out", out, "--ocr", "none") == 1
    rows = by_path(read_rows(out))
    assert len(rows) == 11 and all(set(r) == set(COLUMNS) for r in rows.values())
    assert rows[str(corpus / "cut.png")]["error"] == "corrupt_image"
    assert rows[str(corpus / "notes.jpg")]["error"] == "unsupported_format"
    good = [r for r in rows.values() if r["error"] is None]
    assert len(good) == 9
    assert all(r["mode"] == "zero-shot" and r["text"] == "" and r["frames"] == 1 for r in good)
    assert all(set(r["scores"]) == {"harmful", "misogynous", "hateful", "offensive"} for r in good)
    captured = capsys.readouterr()
    summary = captured.out
    assert "11 rows" in summary and "| corrupt_image | 1 |" in summary
    assert "| unsupported_format | 1 |" in summary and "| harmful |" in summary
    # the tiny backbone's random weights: said on the run's last line, as every command says it
    assert "RANDOM weights" in captured.err.strip().splitlines()[-1]


def test_scores_are_the_predictors_own(corpus, tmp_path):
    out = tmp_path / "scores.jsonl"
    assert score(corpus, "--out", out, "--ocr", "none", "--batch-size", "3") == 1
    rows = by_path(read_rows(out))
    predictor = load_classifier(model="simclip-tiny", pretrained="none", device="cpu", ocr="none")
    for path in sorted(corpus.glob("covid*.png"))[:3]:
        expected = predictor.predict([path.read_bytes()])[0]
        row = rows[str(path)]
        assert row["warnings"] == [w["id"] for w in expected["warnings"]]
        for c, s in expected["scores"].items():
            # both rounded to 6 decimals: a batch of 3 against a batch of 1 differs in the float
            # noise, which can fall either side of a rounding boundary (one step, 1e-6)
            assert row["scores"][c] == pytest.approx(s, abs=1.5e-6)


def test_identical_images_are_computed_once(corpus, tmp_path, monkeypatch):
    from simclip import Predictor

    calls = []
    real = Predictor.classify

    def counting(self, images, texts):
        calls.append(len(images))
        return real(self, images, texts)

    monkeypatch.setattr(Predictor, "classify", counting)
    out = tmp_path / "scores.jsonl"
    assert score(corpus, "--out", out, "--ocr", "none") == 1
    assert sum(calls) == 8  # 9 good files, two of them the same bytes
    rows = by_path(read_rows(out))
    original = sorted(corpus.glob("covid*.png"))[0]
    assert {**rows[str(corpus / "dup.png")], "path": None} == {**rows[str(original)], "path": None}


def test_a_rerun_skips_the_rows_already_written_and_a_cut_line_is_scored_again(corpus, tmp_path):
    out = tmp_path / "scores.jsonl"
    files = sorted(corpus.iterdir())
    assert score(*files[:4], "--out", out, "--ocr", "none") == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:40])  # a crash in the middle of a line
    assert score(corpus, "--out", out, "--ocr", "none") == 1
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(f) for f in files)  # each once


def test_a_rerun_with_another_model_refuses_to_mix_rows(corpus, tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    assert score(corpus / "dup.png", "--out", out, "--ocr", "none") == 0
    assert score(corpus, "--out", out, "--ocr", "tesseract") == 2
    assert "another model or OCR settings" in capsys.readouterr().err


def test_parquet_output_is_a_dataset_folder_with_one_score_field_per_category(corpus, tmp_path):
    pq = require("pyarrow.parquet")
    out = tmp_path / "scores.parquet"
    assert score(corpus, "--out", out, "--ocr", "none") == 1
    table = pq.read_table(out)
    assert table.num_rows == 11 and table.column_names == list(COLUMNS)
    assert [f.name for f in table.schema.field("scores").type] == [
        "harmful", "misogynous", "hateful", "offensive"]
    jsonl = tmp_path / "scores.jsonl"
    assert score(corpus, "--out", jsonl, "--ocr", "none") == 1
    assert_same_rows(table.to_pylist(), read_rows(jsonl), tol=1e-5)  # other batches: BLAS order
    assert score(corpus, "--out", out, "--ocr", "none") == 0  # resumed: nothing new
    assert pq.read_table(out).num_rows == 11


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(corpus):
    """A loopback HTTP server over the corpus folder; yields its base URL."""
    handler = lambda *a, **k: _Files(*a, directory=str(corpus), **k)  # noqa: E731
    with serve_loopback(handler) as url:
        yield url


def test_every_kind_of_source_reads_the_same_pictures(corpus, tmp_path, http_folder):
    memes = sorted(corpus.glob("covid*.png"))[:2]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# a comment\n{memes[0]}\n\n{http_folder}/{memes[1].name}\n"
                       f"{http_folder}/missing.png\n{tmp_path / 'missing.png'}\n")
    table = tmp_path / "table.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([["id", "path"], ["a", memes[0].name], ["b", memes[1].name]])
    shutil_table = corpus / "table.csv"
    shutil_table.write_bytes(table.read_bytes())
    shard = tmp_path / "shard-000.tar"
    with tarfile.open(shard, "w") as tar:
        for m in memes:
            tar.add(m, arcname=f"{m.stem}/image.png")
        info = tarfile.TarInfo("caption.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    out = tmp_path / "scores.jsonl"
    try:
        assert score(listing, shutil_table, shard, str(corpus / "covid*.png"), "--out", out,
                     "--ocr", "none") == 1
    finally:
        shutil_table.unlink()
    rows = by_path(read_rows(out))
    by_sha = {}
    for r in rows.values():
        if r["sha256"]:
            by_sha.setdefault(r["sha256"], set()).add(json.dumps(r["scores"], sort_keys=True))
    assert all(len(v) == 1 for v in by_sha.values())  # the same bytes, the same scores
    assert rows[f"{http_folder}/{memes[1].name}"]["sha256"] == rows[str(memes[1])]["sha256"]
    assert rows[f"{http_folder}/missing.png"]["error"] == "fetch_failed"
    assert rows[str(tmp_path / "missing.png")]["error"] == "unreadable_file"
    assert rows[f"{shard}/{memes[0].stem}/image.png"]["sha256"] == rows[str(memes[0])]["sha256"]
    assert "caption.txt" not in " ".join(rows)
    # the CSV's relative paths are taken from its folder, ids included: the same file as the
    # glob's, so one row (an id listed twice is one input)
    assert memes[0].name not in rows and rows[str(memes[0])]["error"] is None


def test_a_parquet_table_of_image_bytes_is_a_source(corpus, tmp_path):
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    memes = sorted(corpus.glob("covid*.png"))[:2]
    table = tmp_path / "bytes.parquet"
    pq.write_table(pa.table({"key": ["a", "b", "c"],
                             "image": [memes[0].read_bytes(), memes[1].read_bytes(), b""]}), table)
    out = tmp_path / "scores.jsonl"
    assert score(table, "--column", "image", "--out", out, "--ocr", "none") == 1
    rows = by_path(read_rows(out))
    assert set(rows) == {f"{table}#0", f"{table}#1", f"{table}#2"}
    assert rows[f"{table}#2"]["error"] == "empty_image"
    assert rows[f"{table}#0"]["error"] is None


def test_an_ocr_failure_is_an_error_row_not_a_crash(corpus, tmp_path, monkeypatch):
    class Broken:
        name = identity = "broken"

        def __call__(self, image):
            raise RuntimeError("engine fell over")

    monkeypatch.setattr(score_ocr, "get_ocr_engine", lambda name, **kw: Broken())
    out = tmp_path / "scores.jsonl"
    assert score(corpus, "--out", out, "--ocr", "rapidocr") == 1
    errors = {r["error"] for r in read_rows(out)}
    assert errors == {"ocr_failed", "corrupt_image", "unsupported_format"}


def test_the_server_and_the_scorer_share_one_result_cache(corpus, tmp_path):
    require("flask")
    from backend.cache import ResultCache

    cache_dir = tmp_path / "cache"
    assert score(corpus, "--out", tmp_path / "a.jsonl", "--ocr", "none",
                 "--cache-dir", cache_dir) == 1
    rows = read_rows(tmp_path / "a.jsonl")
    good = next(r for r in rows if r["error"] is None)
    cached = ResultCache(good["identity"], cache_dir).get(good["sha256"])
    assert cached["scores"] == good["scores"] and cached["text"] == good["text"]
    assert score(corpus, "--out", tmp_path / "b.jsonl", "--ocr", "none",
                 "--cache-dir", cache_dir) == 1
    assert_same_rows(rows, read_rows(tmp_path / "b.jsonl"), tol=0)


def test_real_ocr_text_reaches_the_rows(harmeme_val_dir, tmp_path):
    meme = harmeme_val_dir / "images" / "covid_memes_2069.png"
    out = tmp_path / "scores.jsonl"
    assert score(meme, "--out", out, "--ocr", "auto") == 0
    (row,) = read_rows(out)
    predictor = load_classifier(model="simclip-tiny", pretrained="none", device="cpu")
    assert row["text"] == predictor.read_text(predictor.decode(meme.read_bytes())) != ""


def test_sources_that_match_nothing_say_so_and_nothing_runs(tmp_path, capsys):
    """A missing path is an error row under its name; a glob that matches nothing gives no
    input; with no input at all the run exits 2 and says why, source by source."""
    out = tmp_path / "o.jsonl"
    assert score(tmp_path / "nope", str(tmp_path / "*.png"), "--out", out) == 2
    err = capsys.readouterr().err
    assert "no such file, folder or glob" in err and "no file matches the pattern" in err
    assert [(r["path"], r["error"]) for r in read_rows(out)] == [
        (str(tmp_path / "nope"), "unreadable_file")]
    assert list(iter_items([str(tmp_path / "*.png")])) == []


def test_ocr_on_cuda_refuses_without_onnxruntime_gpu(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        score_ocr.build_ocr_engine("rapidocr:device=cuda")
    with pytest.raises(ValueError, match="needs rapidocr"):
        score_ocr.build_ocr_engine("tesseract:device=cuda")


def test_ocr_on_cuda_builds_the_tuned_engine_with_the_cuda_provider(monkeypatch):
    import onnxruntime
    import rapidocr

    built = []

    class FakeRapid:
        def __init__(self, params=None):
            built.append(params)

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnxruntime, "get_device", lambda: "GPU")  # an onnxruntime-gpu build
    monkeypatch.setattr(rapidocr, "RapidOCR", FakeRapid)
    cpu = score_ocr.build_ocr_engine("rapidocr:max_side=960")
    cuda = score_ocr.build_ocr_engine("rapidocr:device=cuda:1,max_side=960")
    on_cpu, on_cuda = built
    assert on_cuda.pop("EngineConfig.onnxruntime.use_cuda") is True
    assert on_cuda.pop("EngineConfig.onnxruntime.cuda_ep_cfg.device_id") == 1
    assert on_cuda == on_cpu  # simclip's tuned settings, unchanged
    assert cuda.identity == cpu.identity + ",device=cuda" and "max_side=960" in cpu.identity
    assert cuda.name == cpu.name == "rapidocr"  # the name rebuilds it in another process


def test_ocr_on_cuda_with_the_ray_engine_is_refused_before_anything_starts(tmp_path, capsys):
    assert score_cli.main([str(tmp_path), "--out", str(tmp_path / "o.jsonl"), "--engine", "ray",
                           "--ocr", "rapidocr:device=cuda"]) == 2
    assert "--engine local only" in capsys.readouterr().err


def test_ocr_specs_parse_options():
    assert score_ocr.parse_ocr_spec("rapidocr:device=cuda:1, threads=2,text_score=0.4") == (
        "rapidocr", {"device": "cuda:1", "threads": 2, "text_score": 0.4})
    with pytest.raises(ValueError, match="KEY=VALUE"):
        score_ocr.parse_ocr_spec("rapidocr:fast")


def test_collect_batch_gathers_up_to_the_batch_size_and_stops_at_the_stop_mark():
    q = queue.Queue()
    for i in range(5):
        q.put(i)
    assert collect_batch(q, 3, 0.01) == [0, 1, 2]
    q.put(None)
    assert collect_batch(q, 3, 0.01) == [3, 4]
    assert collect_batch(q, 3, 0.01) is None  # the stop mark was put back


def test_score_is_a_simclip_command(capsys):
    from simclip import cli

    assert cli.main(["--help"]) == 0
    assert "  score" in capsys.readouterr().out


def test_animation_frames_travel_packed_and_unpacked_unchanged():
    from simclip import Frames
    from simclip_score.work import pack_picture, unpack_picture

    frames = Frames([Image.new("RGB", (5, 3), c) for c in ("red", "blue")])
    back = unpack_picture(*pack_picture(frames))
    assert isinstance(back, Frames) and [f.tobytes() for f in back] == [f.tobytes() for f in frames]
    still = Image.new("RGB", (4, 4), "green")
    assert unpack_picture(*pack_picture(still)).tobytes() == still.tobytes()



def test_the_inference_library_and_the_server_never_load_ray_or_the_scoring_package():
    code = ("import os, sys; os.environ['HF_HUB_OFFLINE'] = '1'\n"
            "import simclip, backend.pipeline\n"
            "simclip.load_classifier(model='simclip-tiny', pretrained='none', device='cpu', "
            "ocr='none')\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'simclip_score', "
            "'pyarrow'}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_a_ray_reader_reads_pictures_without_importing_torch(harmeme_val_dir):
    """A Ray reader (one per CPU of a cluster) loads no torch or open_clip: it started 3.5 s
    slower and held the model libraries' memory for nothing. Same text as the Predictor's own."""
    meme = sorted((harmeme_val_dir / "images").glob("*.png"))[0]
    code = ("import sys\n"
            "from simclip_score.ray_engine import ReadStage, Reader, decode_and_read\n"
            "from simclip_score.ocr import build_ocr_engine\n"
            f"image, text = decode_and_read(Reader(build_ocr_engine('tesseract')), open({str(meme)!r}, 'rb').read())\n"
            "print(repr(text))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'open_clip', 'torchvision'}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    text, loaded = out.stdout.strip().splitlines()
    assert loaded == "[]"
    predictor = load_classifier(model="simclip-tiny", pretrained="none", device="cpu", ocr="tesseract")
    assert ast.literal_eval(text) == predictor.read_text(predictor.decode(meme.read_bytes())) != ""


def test_only_the_scoring_package_imports_ray():
    repo = Path(__file__).resolve().parents[1]
    for package in ("simclip", "simclip_train", "backend"):
        for path in (repo / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not any(n.split(".")[0] == "ray" for n in names), path


@pytest.fixture
def interruptible():
    """Python's own Ctrl-C handler for the test: a shell that starts a command in the background
    without job control starts it with SIGINT ignored, and Python keeps that disposition."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ray_is_stopped_whole_and_a_ctrl_c_meanwhile_comes_after(monkeypatch, interruptible):
    """A second Ctrl-C during Ray's shutdown printed a traceback and could leave its processes."""
    import os
    import signal

    ray = require("ray")
    from simclip_score.ray_engine import shutdown_ray

    seen = []

    def shutdown():
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(0.1)  # a signal delivered now would cut the shutdown here
        seen.append("stopped")

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "shutdown", shutdown)
    with pytest.raises(KeyboardInterrupt):
        shutdown_ray()
    assert seen == ["stopped"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signals_in_a_step_that_must_not_be_cut_come_after_it(interruptible):
    import os
    import signal

    from simclip_score.work import deferred_signals

    steps = []
    with pytest.raises(KeyboardInterrupt), deferred_signals():
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(0.2)  # a signal delivered now would cut the step here
        steps.append("done")
    assert steps == ["done"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_sigterm_while_ray_starts_waits_for_the_start_and_reaches_our_handler(monkeypatch):
    """ray.init first sets its own SIGTERM handler (exit at once); a SIGTERM during the start cut it
    and left Ray's agents running. Now it is held until Ray is up, then goes to our handler."""
    import os
    import signal

    ray = require("ray")
    from ray._private import utils as ray_utils

    from simclip_score import ray_engine

    class Terminated(Exception):
        pass

    def ours(signum, frame):
        raise Terminated()

    started = []

    def ray_exits(signum, frame):
        raise RuntimeError("Ray's handler cut the start")

    def fake_init(**kwargs):
        ray_utils.set_sigterm_handler(ray_exits)  # what ray.init does first (its handler: sys.exit)
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(0.1)
        started.append(kwargs["address"])

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    previous = signal.signal(signal.SIGTERM, ours)
    try:
        with pytest.raises(Terminated):
            ray_engine.init_ray("local")
        assert started == ["local"]  # the start ran to its end
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, previous)
