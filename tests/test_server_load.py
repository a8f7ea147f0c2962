"""Throughput behaviour over real HTTP: 200 concurrent clients, batching, single-flight, 503."""

import hashlib
import http.client
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest
import requests
from PIL import Image

from backend.openapi import create_openapi
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


# --- Load shedding (issue 16): a bounded admission, a fast 503, health on its own threads -------

def wait_for(predicate, timeout=20.0):
    """Poll `predicate` until it is true (an event), failing after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition was not reached"
        time.sleep(0.02)


def test_a_flood_beyond_the_admission_bound_gets_503_at_once_while_health_answers(live_server):
    # 2 classify threads and 4 admitted: 2 requests wait in waitress's queue for a thread and
    # are counted; every request beyond gets 503 while all 4 are still blocked in the encoder.
    classifier = BlockingClassifier()
    server = live_server(threads=2, CLASSIFIER=classifier, MAX_ADMITTED=4, MAX_QUEUE=64,
                         MAX_BATCH=1, MAX_WAIT_MS=0)
    admitted, flood = distinct_pngs(4, seed=11), distinct_pngs(24, seed=12)
    with ThreadPoolExecutor(len(admitted) + len(flood)) as pool:
        pending = [pool.submit(post, server.url, d) for d in admitted]
        wait_for(lambda: health(server)["admission"]["admitted"] == 4)
        shed = list(pool.map(lambda d: post(server.url, d), flood))
        during = health(server)  # answered by the control threads, classify threads all held
        assert not any(f.done() for f in pending)  # the 503s did not wait for that work
        classifier.release.set()
        answered = [f.result() for f in pending]
    assert [r.status_code for r in answered] == [200] * 4  # nothing admitted is lost
    assert {r.status_code for r in shed} == {503}
    for r in shed:
        error = r.json()["error"]
        assert error["code"] == "busy"
        assert error["retry_after_ms"] >= 100
        assert int(r.headers["Retry-After"]) == -(-error["retry_after_ms"] // 1000)
        assert r.headers["Cache-Control"] == "no-store"
    assert during["state"] == "ready" and during["admission"]["admitted"] == 4
    spec = create_openapi(8478)  # the documented shapes hold for the shed answer and health
    for name, instance in (("Error", shed[0].json()), ("Health", during)):
        jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                         "components": spec["components"]}).validate(instance)
    wait_for(lambda: health(server)["admission"]["admitted"] == 0)
    stats = health(server)["admission"]
    assert stats["shed_total"] == len(flood) and stats["admitted_total"] == 4
    assert post(server.url, flood[0]).status_code == 200  # a retry is served


def test_shed_answers_go_only_to_callers_that_pass_the_checks(live_server):
    classifier = BlockingClassifier()
    server = live_server(threads=1, CLASSIFIER=classifier, MAX_ADMITTED=1, MAX_BATCH=1,
                         MAX_WAIT_MS=0)
    origin = "chrome-extension://" + "a" * 32
    first, second = distinct_pngs(2, seed=21)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, server.url, first)
        wait_for(lambda: health(server)["admission"]["admitted"] == 1)
        no_token = requests.post(server.url + "/v1/classify", data=second, timeout=30,
                                 headers={"Content-Type": "image/png"})
        web_page = requests.post(server.url + "/v1/classify", data=second, timeout=30, headers={
            "Content-Type": "image/png", "X-Auth-Token": TEST_TOKEN,
            "Origin": "https://evil.example"})
        extension = requests.post(server.url + "/v1/classify", data=second, timeout=30, headers={
            "Content-Type": "image/png", "X-Auth-Token": TEST_TOKEN, "Origin": origin})
        classifier.release.set()
        assert pending.result().status_code == 200
    assert no_token.status_code == 401 and web_page.status_code == 403
    assert "Retry-After" not in no_token.headers
    assert extension.status_code == 503
    assert extension.headers["Access-Control-Allow-Origin"] == origin
    assert extension.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert extension.headers["Vary"] == "Origin"


def test_a_shed_answer_keeps_the_connection_usable(live_server):
    classifier = BlockingClassifier()
    server = live_server(threads=1, CLASSIFIER=classifier, MAX_ADMITTED=1, MAX_BATCH=1,
                         MAX_WAIT_MS=0)
    first, second = distinct_pngs(2, seed=31)
    headers = {"X-Auth-Token": TEST_TOKEN, "Content-Type": "image/png"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, server.url, first)
        wait_for(lambda: health(server)["admission"]["admitted"] == 1)
        conn.request("POST", "/v1/classify", body=second, headers=headers)
        shed = conn.getresponse()
        shed.read()
        sock = conn.sock
        classifier.release.set()
        assert pending.result().status_code == 200
    wait_for(lambda: health(server)["admission"]["admitted"] == 0)
    conn.request("POST", "/v1/classify", body=second, headers=headers)
    again = conn.getresponse()
    again.read()
    reused = conn.sock is sock  # the second request went over the same connection
    conn.close()
    assert shed.status == 503 and not shed.will_close
    assert again.status == 200 and reused
