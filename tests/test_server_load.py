"""Throughput behaviour over real HTTP: 200 concurrent clients, batching, single-flight, 503."""

import hashlib
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from server_support import TEST_TOKEN, StubClassifier

N_CLIENTS = 200


def distinct_pngs(n, seed=0):
    """n different small PNGs (each colour pair is unique)."""
    out = []
    for i in range(n):
        im = Image.new("RGB", (48, 48), ((i * 37 + seed) % 256, (i * 11) % 256, (i // 7) % 256))
        im.paste(((i * 5) % 256, 255 - i % 256, 90), (8, 8, 24 + i % 16, 40))
        buf = io.BytesIO()
        im.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def post(url, data):
    # Connection: close, as independent clients: 200 idle keep-alive sockets would sit on
    # waitress's connection_limit (100) until channel_timeout (THREATS.md T8).
    return requests.post(url + "/v1/classify", data=data, timeout=120, headers={
        "X-Auth-Token": TEST_TOKEN, "Content-Type": "image/png", "Connection": "close"})


def health(server):
    return requests.get(server.url + "/v1/health", headers=server.headers, timeout=10).json()


@pytest.fixture(scope="module")
def load_server(tiny_predictor):
    from backend import create_app
    from backend.model import close_app
    from server_support import LiveServer

    app = create_app({"TESTING": True, "CLASSIFIER": tiny_predictor, "TOKEN": TEST_TOKEN,
                      "CACHE_DIR": "", "MAX_BATCH": 16, "MAX_WAIT_MS": 10,
                      "MAX_QUEUE": 256, "MAX_ADMITTED": 256})
    server = LiveServer(app, threads=32)
    yield server
    server.close()
    close_app(app)


def test_200_concurrent_clients_get_their_own_correct_answers_in_batches(load_server,
                                                                         tiny_predictor):
    images = distinct_pngs(N_CLIENTS)
    expected = tiny_predictor.predict(images)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(N_CLIENTS) as pool:
        responses = list(pool.map(lambda d: post(load_server.url, d), images))
    elapsed = time.perf_counter() - t0
    assert elapsed < 60
    statuses = [r.status_code for r in responses]
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses == [200] * N_CLIENTS
    for data, r, want in zip(images, responses, expected):
        body = r.json()
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        for cat, score in want["scores"].items():
            assert body["scores"][cat] == pytest.approx(score, abs=1e-4)
    batching = health(load_server)["batching"]
    assert batching["images"] >= N_CLIENTS
    assert batching["max_size"] > 1 and batching["mean_size"] > 1.5
    assert health(load_server)["queue_depth"] == 0


def test_identical_images_in_flight_are_computed_once(load_server):
    data = distinct_pngs(1, seed=99)[0]
    before = health(load_server)["batching"]["images"]
    with ThreadPoolExecutor(30) as pool:
        responses = list(pool.map(lambda _: post(load_server.url, data), range(30)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["scores"]["harmful"] for r in responses}) == 1
    assert [r.json()["cached"] for r in responses].count(False) == 1
    assert health(load_server)["batching"]["images"] == before + 1


class BlockingClassifier(StubClassifier):
    """A stub whose encoder waits for `release`, to fill the queue on purpose."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def classify(self, images, texts):
        self.release.wait(30)
        return super().classify(images, texts)


def test_full_queue_answers_503_with_retry_after_and_recovers(live_server):
    classifier = BlockingClassifier()
    server = live_server(CLASSIFIER=classifier, MAX_QUEUE=2, MAX_BATCH=1, MAX_WAIT_MS=0)
    first, second, third = distinct_pngs(3, seed=7)
    with ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(post, server.url, first), pool.submit(post, server.url, second)]
        deadline = time.monotonic() + 10
        while health(server)["queue_depth"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = post(server.url, third)
        classifier.release.set()
        assert [f.result().status_code for f in pending] == [200, 200]
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    assert busy.json()["error"]["code"] == "busy"
    assert post(server.url, third).status_code == 200
