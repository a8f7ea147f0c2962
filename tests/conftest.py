"""Shared fixtures. Tests never touch the network: the Hugging Face hub is forced offline."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before open_clip/huggingface_hub are imported

import pytest  # noqa: E402

from server_support import (  # noqa: E402
    TEST_PORT,
    TEST_TOKEN,
    LiveServer,
    ServerProcess,
    StubClassifier,
    _loopback_client_class,
)
from shared_data import get_shared_data  # noqa: E402


@pytest.fixture(scope="session")
def harmeme_val_dir():
    """The 177 real Harm-C validation memes (../shared/data/harmeme-c-val)."""
    return get_shared_data("harmeme-c-val", "val.jsonl")


@pytest.fixture(scope="session")
def tiny_backbone():
    """The seeded random-weight tiny backbone (CPU), fp32: the exact path, which the known-answer
    tests compare with open_clip's own encoders (int8, the CPU default: tests/test_precision.py)."""
    from simclip import load_backbone

    return load_backbone("simclip-tiny", "none", device="cpu", precision="fp32")


# ---------------------------------------------------------------------------------------------
# Backend fixtures: a stub classifier (API tests never load CLIP), the tiny real predictor,
# the flaskr-style app/client, an in-process waitress server and the real server process.

@pytest.fixture(scope="session")
def tiny_predictor(tiny_backbone):
    """A zero-shot Predictor on the tiny backbone, without OCR (fast, deterministic)."""
    from simclip import Predictor, get_ocr_engine

    return Predictor(tiny_backbone, get_ocr_engine("none"))


@pytest.fixture
def make_app(tmp_path):
    """Factory: create_app with test defaults (stub classifier, memory cache, test token)."""
    from backend import create_app
    from backend.model import close_app

    apps = []

    def make(**config):
        base = {"TESTING": True, "CLASSIFIER": StubClassifier(), "TOKEN": TEST_TOKEN,
                "CACHE_DIR": "", "PORT": TEST_PORT, "CONFIG_DIR": str(tmp_path / "config")}
        app = create_app({**base, **config})
        app.test_client_class = _loopback_client_class()
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app)


@pytest.fixture
def app(make_app):
    """The app with a stub classifier (flaskr's `app` fixture)."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client that sends a loopback Host and the token unless told otherwise."""
    return app.test_client()


@pytest.fixture
def live_server(make_app):
    """Factory: serve create_app(**config) over real HTTP; stopped after the test."""
    servers = []

    def serve(threads=8, **config):
        server = LiveServer(make_app(**config), threads=threads)
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def server_process(tmp_path_factory):
    """The real simclip-server (tiny backbone, no OCR) on a free loopback port, for the session."""
    server = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


# `simclip score`'s engines: a test that takes `engine` runs on both (issue 18, item 5).

@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance with 2 CPUs, for a module's Ray cases."""
    from score_support import require

    ray = require("ray")
    require("ray.data")
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             object_store_memory=100 * 1024 * 1024, log_to_driver=False,
             logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(params=["local", "ray"])
def engine(request):
    """`simclip score --engine`; Ray is started for the Ray cases."""
    from score_support import require

    require("pyarrow")
    if request.param == "ray":
        request.getfixturevalue("ray_instance")
    return request.param
