"""`simclip score --engine ray` on a local Ray instance with two CPUs: the local engine's rows.

Ray starts once for the module (about 7 s): no dashboard, a small object store.
"""

import pytest

from score_support import TINY, assert_same_rows, make_corpus, require
from simclip_score import cli as score_cli
from simclip_score.output import read_rows

require("ray")
require("ray.data")
require("pyarrow")


pytestmark = pytest.mark.usefixtures("ray_instance")  # conftest: local Ray, 2 CPUs, once


@pytest.fixture(scope="module")
def corpus(harmeme_val_dir, tmp_path_factory):
    """6 real memes, one of them twice, and two broken files."""
    return make_corpus(tmp_path_factory.mktemp("corpus"), harmeme_val_dir / "images", 6)


def score(*args):
    return score_cli.main([*map(str, args), *TINY, "--no-progress"])


def test_the_ray_engine_writes_the_local_engines_rows_with_rays_parquet_writer(corpus, tmp_path):
    local, distributed = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    assert score(corpus, "--out", local, "--ocr", "auto") == 1  # two broken files: error rows
    assert score(corpus, "--out", distributed, "--ocr", "auto", "--engine", "ray",
                 "--ray-cpu-batch", "2", "--batch-size", "4") == 1
    rows = read_rows(distributed)
    assert len(rows) == 9 and sum(r["error"] is not None for r in rows) == 2
    assert any(r["text"] for r in rows)  # real OCR text, read on Ray's CPU workers
    assert_same_rows(rows, read_rows(local), tol=1e-4)
    assert score(corpus, "--out", distributed, "--ocr", "auto", "--engine", "ray") == 0
    assert len(read_rows(distributed)) == 9  # resumed from Ray's own part files: nothing new


@pytest.fixture(scope="module")
def whole_folder(harmeme_val_dir, tmp_path_factory):
    """All 177 shared memes, one of them twice, and two broken files."""
    return make_corpus(tmp_path_factory.mktemp("whole"), harmeme_val_dir / "images", 177)


def test_the_whole_shared_folder_and_two_broken_files_give_the_same_rows_on_both_engines(
        whole_folder, tmp_path):
    out, local = tmp_path / "scores.jsonl", tmp_path / "local.jsonl"
    files = sorted(whole_folder.iterdir())
    assert score(*files[:3], "--out", out, "--ocr", "none", "--engine", "ray") == 0
    assert len(read_rows(out)) == 3
    assert score(whole_folder, "--out", out, "--ocr", "none", "--engine", "ray") == 1  # resumed
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(f) for f in files)  # each once
    assert len(rows) == 180 and sorted(r["error"] for r in rows if r["error"]) == [
        "corrupt_image", "unsupported_format"]
    dup = next(r for r in rows if r["path"].endswith("dup.png"))
    assert sum(r["sha256"] == dup["sha256"] for r in rows) == 2
    assert score(whole_folder, "--out", local, "--ocr", "none") == 1
    assert_same_rows(rows, read_rows(local), tol=1e-4)


def test_odd_names_and_urls_are_rows_on_ray_too(corpus, tmp_path):
    """A file name that is not UTF-8 travels to Ray's readers as file-system bytes, and a URL
    that urllib cannot even parse is a fetch_failed row, never a failed run."""
    import os

    meme = sorted(corpus.glob("covid*.png"))[0]
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")
    with open(raw, "wb") as f:
        f.write(meme.read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{meme}\nhttp://127.0.0.1:abc/x.png\n")
    out = tmp_path / "s.jsonl"
    assert score(tmp_path, listing, "--out", out, "--ocr", "none", "--engine", "ray") == 1
    rows = {r["path"]: r for r in read_rows(out)}
    assert rows[f"{tmp_path}/caf\\xe9.png"]["error"] is None
    assert rows[str(meme)]["sha256"] == rows[f"{tmp_path}/caf\\xe9.png"]["sha256"]
    assert rows["http://127.0.0.1:abc/x.png"]["error"] == "fetch_failed"


def _operator_tasks(log):
    """{operator name: tasks executed} from the Ray Data stats the engine logs."""
    import re

    stats = log.split("Ray Data stats", 1)[1]
    return {name: int(n) for name, n in re.findall(r"Operator \d+ (\S+): (\d+) tasks executed", stats)}


@pytest.mark.parametrize("given", ["file arguments", "a folder"])
def test_inputs_reach_the_readers_cpu_batch_at_a_time_as_they_are_listed(corpus, tmp_path, caplog,
                                                                         given):
    """File arguments are listed by one read task, not a Ray task (and worker process) each,
    and a folder's inputs are not handed to one reader whole: every reader call gets
    --ray-cpu-batch inputs."""
    import logging

    sources = sorted(corpus.iterdir()) if given == "file arguments" else [corpus]
    with caplog.at_level(logging.INFO, logger="simclip_score.ray_engine"):
        assert score(*sources, "--out", tmp_path / "s.jsonl", "--ocr", "none", "--engine", "ray",
                     "--ray-cpu-batch", "2") == 1
    tasks = _operator_tasks(caplog.text)
    inputs = len(list(corpus.iterdir()))
    assert tasks["ReadScore"] == 1, tasks
    assert tasks["MapBatches(ReadStage)"] >= inputs // 2, tasks  # 2 inputs a call, not all in one
    assert len(read_rows(tmp_path / "s.jsonl")) == inputs


def test_one_input_units_share_read_tasks_and_others_have_their_own():
    from simclip_score.ray_engine import UNITS_PER_TASK, group_units
    from simclip_score.sources import Unit

    files = [Unit("f", "file", f"{i}.png") for i in range(UNITS_PER_TASK + 3)]
    folder, url = Unit("d", "folder", "d"), Unit("u", "url", "http://x/a.png")
    tasks = group_units([*files, folder, url, Unit("e", "error", "e", code="x", message="m")])
    assert [len(t) for t in tasks] == [UNITS_PER_TASK, 3, 1, 2]
    assert tasks[2] == [folder] and [u.kind for u in tasks[3]] == ["url", "error"]


def _operator_blocks(log):
    """{operator name: (tasks executed, blocks produced)} from the Ray Data stats logged."""
    import re

    stats = log.split("Ray Data stats", 1)[1]
    return {name: (int(t), int(b)) for name, t, b in re.findall(
        r"Operator \d+ (\S+): (\d+) tasks executed, (\d+) blocks produced", stats)}


@pytest.mark.parametrize("out_name", ["s.jsonl", "s.parquet"])
def test_blocks_are_cpu_batch_inputs_from_the_listing_and_one_per_call_after_it(
        corpus, tmp_path, caplog, out_name):
    """The Ray driver keeps stats for every block an operator outputs: with a block per input
    it grew with the corpus (issue 18). A folder's listing gives a block per --ray-cpu-batch
    inputs, and each reader and encoder call gives one block."""
    import logging
    import math

    out = tmp_path / out_name
    with caplog.at_level(logging.INFO, logger="simclip_score.ray_engine"):
        assert score(corpus, "--out", out, "--ocr", "none", "--engine", "ray",
                     "--ray-cpu-batch", "3", "--batch-size", "6") == 1
    ops = _operator_blocks(caplog.text)
    inputs = len(list(corpus.iterdir()))
    assert len(read_rows(out)) == inputs
    assert ops["ReadScore"] == (1, math.ceil(inputs / 3)), ops  # not a block per input
    readers = ops["MapBatches(ReadStage)"]
    assert readers == (math.ceil(inputs / 3),) * 2, ops  # a call per listing block, a block each
    encoders = ops["MapBatches(EncoderStage)"]
    assert encoders[0] == encoders[1] <= readers[1], ops  # a block per call
