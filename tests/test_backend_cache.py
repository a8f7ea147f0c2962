"""The result cache: LRU + SQLite, survives restarts, never crosses model identities."""

import io
import logging
import sqlite3

import pytest
from PIL import Image

from backend.cache import CACHE_FILE, ResultCache
from server_support import TEST_TOKEN

RESULT = {"mode": "zero-shot", "scores": {"harmful": 0.7}, "warnings": [], "text": "hi"}


def png_bytes(color):
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(buf, "PNG")
    return buf.getvalue()


def test_results_survive_a_restart(tmp_path):
    cache = ResultCache("model-a", tmp_path)
    cache.put_many([("s1", RESULT)])
    cache.close()
    reopened = ResultCache("model-a", tmp_path)
    assert reopened.is_persistent
    assert reopened.get("s1") == RESULT


def test_results_are_never_shared_across_identities(tmp_path):
    ResultCache("model-a", tmp_path).put_many([("s1", RESULT)])
    assert ResultCache("model-b", tmp_path).get("s1") is None


def test_memory_lru_is_bounded(tmp_path):
    cache = ResultCache("m", None, memory_size=3)
    cache.put_many([(f"s{i}", RESULT) for i in range(10)])
    assert cache.stats()["memory_entries"] == 3
    assert cache.get("s9") == RESULT and cache.get("s0") is None


def test_corrupted_cache_file_is_detected_and_the_server_goes_on(tmp_path, caplog):
    (tmp_path / CACHE_FILE).write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING):
        cache = ResultCache("m", tmp_path)
    assert not cache.is_persistent
    assert "unusable" in caplog.text
    cache.put_many([("s1", RESULT)])
    assert cache.get("s1") == RESULT  # memory still works


def test_locked_cache_file_is_detected_and_the_server_goes_on(tmp_path, caplog):
    ResultCache("m", tmp_path).close()
    holder = sqlite3.connect(tmp_path / CACHE_FILE, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING):
            cache = ResultCache("m", tmp_path, lock_timeout_s=0.05)
        cache.put_many([("s1", RESULT)])
        assert cache.get("s1") == RESULT
        assert not cache.is_persistent
        assert caplog.text.count("unusable") == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_malformed_row_is_a_miss_not_an_error(tmp_path):
    ResultCache("m", tmp_path).close()
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        db.execute("INSERT INTO results VALUES ('m', 's1', '{not json', 0)")
    assert ResultCache("m", tmp_path).get("s1") is None


# --- through the app: restart and checkpoints ----------------------------------------------------

def _classify(app, data):
    r = app.test_client().post("/v1/classify", data=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_cached_result_is_served_after_an_app_restart(make_app, tmp_path, tiny_predictor):
    data = png_bytes((10, 200, 30))
    first = _classify(make_app(CLASSIFIER=tiny_predictor, CACHE_DIR=str(tmp_path / "c")), data)
    again = _classify(make_app(CLASSIFIER=tiny_predictor, CACHE_DIR=str(tmp_path / "c")), data)
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["scores"] == first["scores"]


@pytest.fixture(scope="module")
def two_checkpoint_predictors(tmp_path_factory, tiny_backbone):
    """Two trained-mode predictors on the tiny backbone with different head weights."""
    import torch

    from simclip import (
        HeadConfig,
        Predictor,
        SimCLIPHead,
        TaskSpec,
        checkpoint_digest,
        get_ocr_engine,
        load_checkpoint,
        make_metadata,
        save_checkpoint,
    )

    root = tmp_path_factory.mktemp("ckpt")
    config = HeadConfig(embed_dim=64, proj_dim=16, hidden_dim=32,
                        tasks=[TaskSpec("harm", "multiclass", ["no", "yes"])])
    predictors = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        head = SimCLIPHead(config)
        meta = make_metadata(config, tiny_backbone.info, warnings=[
            {"category": "harmful", "task": "harm", "labels": ["yes"], "threshold": 0.5}])
        path = save_checkpoint(root / f"head{seed}.safetensors", head, meta)
        loaded, meta = load_checkpoint(path, tiny_backbone.info)
        predictors.append(Predictor(tiny_backbone, get_ocr_engine("none"), head=loaded,
                                    metadata=meta, checkpoint_id=checkpoint_digest(path)))
    return predictors


def test_cache_is_not_shared_across_checkpoints(make_app, tmp_path, two_checkpoint_predictors):
    a, b = two_checkpoint_predictors
    assert a.identity != b.identity
    data = png_bytes((120, 20, 220))
    from_a = _classify(make_app(CLASSIFIER=a, CACHE_DIR=str(tmp_path)), data)
    from_b = _classify(make_app(CLASSIFIER=b, CACHE_DIR=str(tmp_path)), data)
    assert from_b["cached"] is False and from_b["mode"] == "trained"
    assert from_b["scores"] != from_a["scores"]
    again_a = _classify(make_app(CLASSIFIER=a, CACHE_DIR=str(tmp_path)), data)
    assert again_a["cached"] is True and again_a["scores"] == from_a["scores"]


def test_health_reports_a_persistent_cache(make_app, tmp_path):
    app = make_app(CACHE_DIR=str(tmp_path))
    r = app.test_client().get("/v1/health", headers={"X-Auth-Token": TEST_TOKEN})
    assert r.get_json()["cache"]["persistent"] is True
