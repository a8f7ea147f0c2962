"""The server answers /v1/health while its model loads ("loading", with progress), refuses
classify and labels with 503 `loading` until then, and stays up with the error when loading
fails, so the extension can say what is happening."""

import json
import subprocess
import sys
import threading
import time

import pytest
import requests

from backend import create_app
from backend.model import close_app
from server_support import REPO, TEST_PORT, TEST_TOKEN, get_free_port, stop_process
from simclip import BackboneUnavailableError, load_classifier

HEADERS = {"X-Auth-Token": TEST_TOKEN}

BASE = f"http://127.0.0.1:{TEST_PORT}"


TINY_OPTIONS = {"checkpoint": None, "model": "simclip-tiny", "pretrained": "none"}


def _app(tmp_path, loader, options=None):
    """An app loading its model with `loader` in the background; `options`: the command line's
    classifier options (the setup folder is found from them while the model loads)."""
    extra = {"CLASSIFIER_OPTIONS": options} if options is not None else {}
    return create_app({"TESTING": True, "TOKEN": TEST_TOKEN, "PORT": TEST_PORT, "CACHE_DIR": "",
                       "LOAD_IN_BACKGROUND": True, "CLASSIFIER_LOADER": loader,
                       "SETUP_DIR": str(tmp_path / "setup"), **extra})


def _wait_for(client, state, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/v1/health", base_url=BASE, headers=HEADERS).get_json()
        if body["state"] == state:
            return body
        time.sleep(0.02)
    pytest.fail(f"health never said {state}: {body}")


def test_health_says_loading_with_progress_while_a_slow_model_loads(tmp_path):
    release, reported = threading.Event(), threading.Event()

    def slow_loader(options, report):
        report("weights", 123_456, None, "bytes", "downloading the CLIP weights")
        reported.set()
        assert release.wait(30)
        return load_classifier(model="simclip-tiny", pretrained="none", device="cpu", ocr="none")

    app = _app(tmp_path, slow_loader)
    client = app.test_client()
    try:
        t0 = time.monotonic()
        body = client.get("/v1/health", base_url=BASE, headers=HEADERS).get_json()
        assert time.monotonic() - t0 < 1.0
        assert body["state"] == "loading" and body["model"] is None
        # the loader thread reports its progress once it runs (after the setup folder is found)
        assert reported.wait(30)
        body = client.get("/v1/health", base_url=BASE, headers=HEADERS).get_json()
        assert body["state"] == "loading" and body["loading"] == {"stage": "weights", "done": 123_456, "total": None,
                                   "unit": "bytes", "message": "downloading the CLIP weights"}
        for response in (client.post("/v1/classify", base_url=BASE, data=b"x",
                                     headers={**HEADERS, "Content-Type": "image/png"}),
                         client.get("/v1/labels", base_url=BASE, headers=HEADERS)):
            assert response.status_code == 503
            assert response.get_json()["error"]["code"] == "loading"
            assert int(response.headers["Retry-After"]) > 0
        release.set()
        body = _wait_for(client, "ready")
        assert body["model"] == "simclip-tiny/random" and body["setup"]["state"] == "idle"
        assert client.get("/v1/labels", base_url=BASE, headers=HEADERS).status_code == 200
    finally:
        release.set()
        close_app(app)


def test_a_model_that_fails_to_load_leaves_the_server_answering_with_the_error(tmp_path):
    def failing_loader(options, report):
        report("weights", 10, 100, "bytes", "downloading")
        raise BackboneUnavailableError("ViT-L-14-336 weights are not cached and the hub cannot "
                                       "be reached: connect once, or pass --pretrained PATH")

    app = _app(tmp_path, failing_loader)
    client = app.test_client()
    try:
        body = _wait_for(client, "failed")
        assert body["error"]["code"] == "backbone_unavailable"
        assert "connect once" in body["error"]["message"]
        assert body["loading"] is None  # the error, not a stale "downloading" step
        r = client.get("/v1/labels", base_url=BASE, headers=HEADERS)
        assert r.status_code == 503 and r.get_json()["error"]["code"] == "backbone_unavailable"
    finally:
        close_app(app)


def test_the_real_server_answers_health_before_its_model_is_ready_and_reports_a_failed_load(
        tmp_path):
    port = get_free_port()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    token = subprocess.run([sys.executable, "-m", "backend.serve", "--print-token"], env=env,
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([sys.executable, "-m", "backend.serve", "--model", "ViT-L-14-336",
                             "--pretrained", "openai", "--port", str(port),
                             "--weights-cache-dir", str(tmp_path / "weights")],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline, first, body = time.monotonic() + 60, None, None
        while time.monotonic() < deadline:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/v1/health",
                                 headers={"X-Auth-Token": token}, timeout=2)
            except requests.ConnectionError:
                assert proc.poll() is None, "the server exited"
                time.sleep(0.05)
                continue
            body = r.json()
            first = first or body["state"]
            if body["state"] == "failed":
                break
            time.sleep(0.05)
        assert body is not None and body["state"] == "failed", body
        assert "not cached" in body["error"]["message"]
        assert str(tmp_path / "weights") in body["error"]["message"]
        assert proc.poll() is None  # still up, so the extension can show the message
    finally:
        stop_process(proc)


def _validate(spec, name, instance):
    import jsonschema

    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_health_and_setup_bodies_in_every_state_validate_against_the_openapi_document(tmp_path):
    release = threading.Event()

    def loader(options, report):
        assert release.wait(30)
        return load_classifier(model="simclip-tiny", pretrained="none", device="cpu", ocr="none")

    app = _app(tmp_path, loader)
    client = app.test_client()
    try:
        spec = client.get("/v1/openapi.json", base_url=BASE).get_json()
        _validate(spec, "Health", client.get("/v1/health", base_url=BASE, headers=HEADERS).get_json())
        release.set()
        _validate(spec, "Health", _wait_for(client, "ready"))
        _validate(spec, "Setup", client.get("/v1/setup", base_url=BASE, headers=HEADERS).get_json())
        r = client.delete("/v1/setup", base_url=BASE, headers=HEADERS)
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "setup_not_running"
        assert "/v1/setup" in spec["paths"] and {"get", "post", "delete"} <= set(spec["paths"]["/v1/setup"])
    finally:
        release.set()
        close_app(app)
    failed = _app(tmp_path, lambda options, report: (_ for _ in ()).throw(OSError("disk gone")))
    try:
        _validate(spec, "Health", _wait_for(failed.test_client(), "failed"))
    finally:
        close_app(failed)


def test_the_server_is_served_before_torch_is_imported():
    """A fresh user's restart: the port must answer /v1/health within a second, so nothing the
    server imports and builds before it serves may pull in torch (5-11 s to import on a busy
    laptop CPU, during which the popup would say "server not running")."""
    code = """if True:
        import sys, threading
        from backend import create_app, setup
        from backend.serve import create_server
        # The loader thread imports torch in the background (it builds the model, and finds
        # an interrupted setup's folder first): held here, so only the serving path is checked.
        setup.SetupManager.locate = lambda self, options: None
        release = threading.Event()
        def loader(options, report):
            release.wait()
        app = create_app({"CLASSIFIER_LOADER": loader, "LOAD_IN_BACKGROUND": True,
                          "TOKEN": "t" * 43, "CACHE_DIR": ""})
        server = create_server(app, "127.0.0.1", 0, threads=2)
        with app.test_client() as client:
            status = client.get("/v1/health", headers={"Host": f"127.0.0.1:{app.config['PORT']}",
                                                       "X-Auth-Token": "t" * 43}).get_json()
        assert status["state"] == "loading", status
        heavy = sorted({"torch", "open_clip", "onnxruntime"} & set(sys.modules))
        assert not heavy, heavy
        release.set()
        server.close()
    """
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120,
                   env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def test_a_setup_a_restart_interrupted_shows_as_running_while_the_model_loads(tmp_path):
    """After a restart, while the model loads, GET /v1/setup says what the last run left (it
    resumes once loaded), never idle as if nothing had been started."""
    folder = tmp_path / "setup" / "simclip-tiny__random"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"state": "running", "stage": "embed",
                                                   "done": 320, "total": 600, "unit": "memes"}))
    release = threading.Event()

    def slow_loader(options, report):
        release.wait(30)
        raise BackboneUnavailableError("stopped by the test")

    app = _app(tmp_path, slow_loader, TINY_OPTIONS)
    client = app.test_client()
    try:
        deadline = time.monotonic() + 20
        while True:
            health = client.get("/v1/health", base_url=BASE, headers=HEADERS).get_json()
            if health["setup"]["state"] == "running" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert health["state"] == "loading" and health["setup"] == {"state": "running",
                                                                    "stage": "embed"}
        body = client.get("/v1/setup", base_url=BASE, headers=HEADERS).get_json()
        assert (body["state"], body["done"], body["total"]) == ("running", 320, 600)
        r = client.post("/v1/setup", base_url=BASE, headers=HEADERS)
        assert r.status_code == 503 and r.get_json()["error"]["code"] == "loading"
    finally:
        release.set()
        close_app(app)


def _stopped_loader(options, report):
    raise BackboneUnavailableError("stopped by the test")


def test_before_the_backbone_is_known_the_one_running_setup_on_disk_shows(tmp_path, monkeypatch):
    """The backbone's setup folder is named once the model registry (torch) is imported, seconds
    into the load: until then the one setup on disk that was running shows, not idle."""
    from backend import setup

    located = threading.Event()
    monkeypatch.setattr(setup.SetupManager, "locate", lambda self, options: located.wait(30))
    for name, state in (("simclip-tiny__random", "running"), ("other__model", "done")):
        (tmp_path / "setup" / name).mkdir(parents=True)
        (tmp_path / "setup" / name / "state.json").write_text(json.dumps(
            {"state": state, "stage": "embed", "done": 320, "total": 600, "unit": "memes"}))
    app = _app(tmp_path, _stopped_loader, TINY_OPTIONS)
    client = app.test_client()
    try:
        health = client.get("/v1/health", base_url=BASE, headers=HEADERS).get_json()
        assert health["state"] == "loading"
        assert health["setup"] == {"state": "running", "stage": "embed"}
        # two running setups on disk: which one resumes is not known yet, so none is shown
        (tmp_path / "setup" / "other__model" / "state.json").write_text(json.dumps(
            {"state": "running", "stage": "train"}))
        assert client.get("/v1/setup", base_url=BASE, headers=HEADERS).get_json()["state"] == "idle"
    finally:
        located.set()
        close_app(app)
