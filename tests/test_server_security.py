"""THREATS.md T1-T8, T12 over real HTTP (waitress with our settings, stub classifier)."""

import contextlib
import io
import json
import logging
import select
import socket
import threading
import time

import pytest
import requests
import waitress
from PIL import Image

from backend.serve import WAITRESS_SETTINGS, main
from server_support import TEST_TOKEN

CHROME_ORIGIN = "chrome-extension://" + "a" * 32
FIREFOX_ORIGIN = "moz-extension://0f8e2a4b-1c3d-4e5f-8a9b-0c1d2e3f4a5b"


def png_bytes(color=(200, 10, 10)):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, "PNG")
    return buf.getvalue()


PNG = png_bytes()


@pytest.fixture
def server(live_server):
    return live_server()


def post(server, data=PNG, headers=None, **kwargs):
    base = {"X-Auth-Token": TEST_TOKEN, "Content-Type": "image/png"}
    base.update(headers or {})
    return requests.post(server.url + "/v1/classify", data=data,
                         headers={k: v for k, v in base.items() if v is not None},
                         timeout=10, **kwargs)


def raw_request(server, head, body=b"", read_timeout=5.0):
    """Send bytes as they are (malformed framing), the body in pieces, stopping as soon as the
    server answers; return (status, the response text)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout) as s:
        data = b""
        try:
            s.sendall(head.replace(b"\n", b"\r\n"))
            for i in range(0, len(body), 1 << 16):
                if select.select([s], [], [], 0)[0]:
                    break  # the server answered (e.g. 413) before the whole body was sent
                s.sendall(body[i:i + (1 << 16)])
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    return status, data.decode("latin-1")


def handled(server):
    """How many classify requests passed the HTTP checks (T1: must not move on a refusal)."""
    with server.app.app_context():
        from backend.model import get_pipeline

        return get_pipeline().requests


# --- T1 DNS rebinding: Host must be a loopback name with our port ----------------------------

@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1.nip.io:{port}",
                                  "127.0.0.1:1", ":{port}", "127.0.0.1", "localhost",
                                  "192.168.1.5:{port}", "0.0.0.0:{port}"])
def test_rebinding_host_is_refused_with_403_before_the_handler(server, host):
    before = handled(server)
    r = post(server, headers={"Host": host.format(port=server.port)})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden_host"
    assert "Access-Control-Allow-Origin" not in r.headers
    assert handled(server) == before


def test_forwarded_headers_do_not_rescue_a_foreign_host(server):
    r = post(server, headers={"Host": f"evil.example:{server.port}",
                              "X-Forwarded-Host": f"127.0.0.1:{server.port}",
                              "Forwarded": f"host=127.0.0.1:{server.port}"})
    assert r.status_code == 403


def test_request_without_host_header_is_refused(server):
    status, _ = raw_request(server, f"GET /v1/health HTTP/1.0\nX-Auth-Token: {TEST_TOKEN}\n\n"
                            .encode())
    assert status in (400, 403)


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}",
                                  "LOCALHOST:{port}"])
def test_loopback_hosts_with_our_port_are_served(server, host):
    assert post(server, headers={"Host": host.format(port=server.port)}).status_code == 200


# --- T2/T3 Origins, Fetch-Metadata, preflight --------------------------------------------------

@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example",
                                    "http://127.0.0.1.evil.example", "null",
                                    CHROME_ORIGIN + "x", "CHROME-EXTENSION://" + "a" * 32,
                                    "http://127.0.0.1:8478"])
def test_web_and_malformed_origins_get_403_without_cors(server, origin):
    before = handled(server)
    r = post(server, headers={"Origin": origin})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden_origin"
    assert "Access-Control-Allow-Origin" not in r.headers
    assert handled(server) == before


@pytest.mark.parametrize("origin", [CHROME_ORIGIN, FIREFOX_ORIGIN])
def test_extension_origin_is_served_with_exact_cors_headers(server, origin):
    r = post(server, headers={"Origin": origin})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in r.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_only_configured_extension_ids_pass_when_origins_are_pinned(live_server):
    server = live_server(ALLOWED_ORIGINS={CHROME_ORIGIN})
    assert post(server, headers={"Origin": CHROME_ORIGIN}).status_code == 200
    assert post(server, headers={"Origin": "chrome-extension://" + "b" * 32}).status_code == 403
    assert post(server, headers={"Origin": FIREFOX_ORIGIN}).status_code == 403


ID = "a" * 32
ORIGIN_TRICKS = [
    "https://evil.example",  # a web page
    "null",  # sandboxed iframes, file: pages
    CHROME_ORIGIN + ".evil.example",  # our origin as a prefix
    "https://evil.example/" + CHROME_ORIGIN,  # our origin as a suffix
    "chrome-extension://b" + ID,  # our id as a suffix of a longer id
    "CHROME-EXTENSION://" + ID,  # case tricks
    "Chrome-Extension://" + ID,
    "chrome-extension://" + ID.upper(),
    FIREFOX_ORIGIN.upper(),
]


@pytest.mark.parametrize("pinned", [False, True], ids=["any-extension", "pinned"])
@pytest.mark.parametrize("origin", ORIGIN_TRICKS)
def test_origin_tricks_get_403_without_cors_headers(live_server, pinned, origin):
    server = live_server(ALLOWED_ORIGINS={CHROME_ORIGIN, FIREFOX_ORIGIN} if pinned else None)
    before = handled(server)
    for r in (post(server, headers={"Origin": origin}), _preflight(server, origin)):
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden_origin"
        assert not [k for k in r.headers if k.lower().startswith("access-control-")]
    assert handled(server) == before


def test_pinned_origin_gets_exactly_its_origin_echoed_and_vary_origin(live_server):
    server = live_server(ALLOWED_ORIGINS={FIREFOX_ORIGIN})
    r = post(server, headers={"Origin": FIREFOX_ORIGIN})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == FIREFOX_ORIGIN
    assert r.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in r.headers
    preflight = _preflight(server, FIREFOX_ORIGIN)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == FIREFOX_ORIGIN
    assert _preflight(server, CHROME_ORIGIN).status_code == 403  # well-formed, but not pinned


def test_a_pinned_origin_is_matched_as_a_literal_not_a_pattern(live_server):
    server = live_server(ALLOWED_ORIGINS={"http://127.0.0.1:9999"})
    assert post(server, headers={"Origin": "http://127.0.0.1:9999"}).status_code == 200
    for origin in ("http://127a0a0a1:9999", "http://127.0.0.1:99999", "HTTP://127.0.0.1:9999"):
        r = post(server, headers={"Origin": origin})
        assert r.status_code == 403
        assert "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_cross_site_fetch_metadata_is_refused(server, site):
    assert post(server, headers={"Sec-Fetch-Site": site}).status_code == 403


def test_fetch_metadata_none_from_the_extension_worker_is_served(server):
    assert post(server, headers={"Sec-Fetch-Site": "none", "Origin": CHROME_ORIGIN}) \
        .status_code == 200


def _preflight(server, origin):
    return requests.options(server.url + "/v1/classify", timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-auth-token, content-type"})


def test_preflight_from_a_web_page_is_refused_without_cors(server):
    r = _preflight(server, "https://evil.example")
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight_from_the_extension_gets_204_and_its_origin(server):
    r = _preflight(server, CHROME_ORIGIN)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == CHROME_ORIGIN
    assert "X-Auth-Token" in r.headers["Access-Control-Allow-Headers"]


def test_preflight_answer_lists_methods_headers_and_max_age_once(server):
    r = _preflight(server, FIREFOX_ORIGIN)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == FIREFOX_ORIGIN
    assert r.headers["Access-Control-Allow-Methods"] == "DELETE, GET, POST"  # DELETE: /v1/setup
    assert r.headers["Access-Control-Allow-Headers"] == \
        "X-Auth-Token, Content-Type, X-Exif-Orientation, X-Display-Rules"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in r.headers


# --- T4 token -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "query"), [
    ({"X-Auth-Token": None}, ""),
    ({"X-Auth-Token": "U" * 43}, ""),
    ({"X-Auth-Token": "T"}, ""),
    ({"X-Auth-Token": None}, f"?token={TEST_TOKEN}"),
    ({"X-Auth-Token": None, "Authorization": f"token {TEST_TOKEN}"}, ""),
])
def test_missing_or_wrong_token_gets_401_without_cors(server, headers, query):
    before = handled(server)
    r = requests.post(server.url + "/v1/classify" + query, data=PNG, timeout=10, headers={
        "Content-Type": "image/png", "Origin": CHROME_ORIGIN,
        **{k: v for k, v in headers.items() if v is not None}})
    assert r.status_code == 401
    assert "Access-Control-Allow-Origin" not in r.headers
    assert TEST_TOKEN not in r.text
    assert handled(server) == before


def test_valid_token_with_a_web_origin_is_still_refused(server):
    assert post(server, headers={"Origin": "https://evil.example"}).status_code == 403


def test_valid_token_without_origin_is_served_like_curl(server):
    assert requests.get(server.url + "/v1/labels", headers=server.headers, timeout=10) \
        .status_code == 200


def test_openapi_document_needs_no_token_but_a_loopback_host(server):
    assert requests.get(server.url + "/v1/openapi.json", timeout=10).status_code == 200
    r = requests.get(server.url + "/v1/openapi.json", timeout=10,
                     headers={"Host": f"evil.example:{server.port}"})
    assert r.status_code == 403


def test_token_never_appears_in_logs_or_responses(server, caplog):
    caplog.set_level(logging.DEBUG)
    texts = [post(server).text, post(server, data=b"junk").text,
             post(server, headers={"X-Auth-Token": "U" * 43}).text,
             requests.get(server.url + "/v1/health", headers=server.headers, timeout=10).text]
    assert all(TEST_TOKEN not in t for t in texts)
    assert TEST_TOKEN not in caplog.text


# --- T2/T6 content type, encoding, length -------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x",
                                          "application/x-www-form-urlencoded",
                                          "application/json", None])
def test_non_image_content_types_get_415_before_decoding(server, content_type):
    r = post(server, headers={"Content-Type": content_type})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "IMAGE/PNG",
                                          "application/octet-stream", "image/webp; q=1"])
def test_image_and_octet_stream_content_types_are_accepted(server, content_type):
    assert post(server, headers={"Content-Type": content_type}).status_code == 200


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_content_encoding_is_refused_with_415_never_inflated(server, encoding):
    import gzip

    r = post(server, data=gzip.compress(PNG), headers={"Content-Encoding": encoding})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_encoding"


def test_post_without_content_length_gets_411(server):
    status, text = raw_request(server, (
        f"POST /v1/classify HTTP/1.1\nHost: 127.0.0.1:{server.port}\nX-Auth-Token: {TEST_TOKEN}\n"
        "Content-Type: image/png\nConnection: close\n\n").encode())
    assert status == 411
    assert '"length_required"' in text


def test_body_over_limit_is_refused_from_content_length_before_upload(server):
    t0 = time.perf_counter()
    status, text = raw_request(server, (
        f"POST /v1/classify HTTP/1.1\nHost: 127.0.0.1:{server.port}\nX-Auth-Token: {TEST_TOKEN}\n"
        "Content-Type: image/png\nContent-Length: 10485761\n\n").encode())
    assert status == 413
    assert time.perf_counter() - t0 < 2.0  # no body was sent at all: refused from the header
    body = json.loads(text.split("\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_entity_too_large"


def test_body_at_the_limit_reaches_the_decoder(server):
    r = post(server, data=b"\0" * (10 * 1024 * 1024))
    assert r.status_code == 415  # read and refused as "not an image", not as too large


def test_chunked_body_over_limit_gets_413(server):
    chunk = b"x" * (1 << 20)
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(12)) + b"0\r\n\r\n"
    status, _ = raw_request(server, (
        f"POST /v1/classify HTTP/1.1\nHost: 127.0.0.1:{server.port}\nX-Auth-Token: {TEST_TOKEN}\n"
        "Content-Type: image/png\nTransfer-Encoding: chunked\n\n").encode(), body)
    assert status == 413


@pytest.mark.parametrize("length", ["+10", "1e3", "-1", "0x10"])
def test_malformed_content_length_gets_400(server, length):
    status, text = raw_request(server, (
        f"POST /v1/classify HTTP/1.1\nHost: 127.0.0.1:{server.port}\nX-Auth-Token: {TEST_TOKEN}\n"
        f"Content-Type: image/png\nContent-Length: {length}\n\n").encode(), b"x" * 16)
    assert status == 400
    assert '"error"' in text


def test_empty_body_gets_400(server):
    r = post(server, data=b"")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "empty_body"


def test_header_block_over_16_kib_gets_431(server):
    r = post(server, headers={"X-Padding": "a" * 20_000})
    assert r.status_code == 431
    assert r.json()["error"]["code"] == "request_header_fields_too_large"


# --- T5/T12 response headers, exposure, configuration --------------------------------------------

def test_responses_carry_nosniff_no_store_and_no_server_header(server):
    for r in (post(server), post(server, data=b"junk"),
              requests.get(server.url + "/nope", headers=server.headers, timeout=10)):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == "no-store"
        assert "Server" not in r.headers
        assert r.headers["Content-Type"] == "application/json"


def test_unknown_path_is_404_json_without_cors(server):
    r = requests.get(server.url + "/admin", timeout=10,
                     headers={**server.headers, "Origin": CHROME_ORIGIN})
    assert r.status_code == 404
    assert "Access-Control-Allow-Origin" not in r.headers


def test_server_refuses_to_bind_a_non_loopback_address(capsys):
    assert main(["--host", "0.0.0.0"]) == 2
    assert "refusing to bind" in capsys.readouterr().err
    assert main(["--host", "192.168.1.10"]) == 2


def test_waitress_settings_pin_the_documented_limits():
    assert tuple(int(x) for x in waitress.__version__.split(".")[:3]) >= (3, 0, 2) \
        if hasattr(waitress, "__version__") else True
    from importlib.metadata import version

    assert tuple(int(x) for x in version("waitress").split(".")[:3]) >= (3, 0, 2)
    assert WAITRESS_SETTINGS["channel_request_lookahead"] == 0
    assert WAITRESS_SETTINGS["max_request_body_size"] == 10 * 1024 * 1024 + 1
    assert WAITRESS_SETTINGS["channel_timeout"] == 30
    assert WAITRESS_SETTINGS["connection_limit"] == 100
    assert WAITRESS_SETTINGS["ident"] == "" and not WAITRESS_SETTINGS["expose_tracebacks"]


def test_server_keeps_serving_after_idle_connections_are_opened(server):
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    try:
        assert post(server).status_code == 200
    finally:
        for s in idle:
            s.close()


# --- Absolute-form request targets (issue 16 item 4; RFC 9112 3.2.2) ----------------------------

def absolute_form(server, target, host):
    return raw_request(server, (
        f"POST {target} HTTP/1.1\nHost: {host}\nX-Auth-Token: {TEST_TOKEN}\n"
        f"Content-Type: image/png\nContent-Length: {len(PNG)}\nConnection: close\n\n").encode(),
        PNG)


@pytest.mark.parametrize("target", ["http://evil.example:{port}/v1/classify",
                                    "http://127.0.0.1.nip.io:{port}/v1/classify",
                                    "http://127.0.0.1:1/v1/classify",
                                    "https://127.0.0.1:{port}/v1/classify",
                                    "http://user@127.0.0.1:{port}/v1/classify",
                                    "HTTP://EVIL.EXAMPLE:{port}/v1/classify"])
def test_absolute_form_target_naming_a_foreign_host_is_refused_like_a_foreign_host(server,
                                                                                    target):
    before = handled(server)
    status, text = absolute_form(server, target.format(port=server.port),
                                 f"127.0.0.1:{server.port}")
    foreign_host = post(server, headers={"Host": f"evil.example:{server.port}"})
    assert status == foreign_host.status_code == 403
    assert json.loads(text.split("\r\n\r\n", 1)[1])["error"]["code"] == "forbidden_host"
    assert "Access-Control-Allow-Origin" not in text
    assert handled(server) == before


@pytest.mark.parametrize("authority", ["127.0.0.1:{port}", "localhost:{port}",
                                       "LOCALHOST:{port}"])
def test_absolute_form_target_naming_this_server_is_served(server, authority):
    authority = authority.format(port=server.port)
    status, _ = absolute_form(server, f"http://{authority}/v1/classify",
                              f"127.0.0.1:{server.port}")
    assert status == 200


def test_absolute_form_target_does_not_rescue_a_foreign_host_header(server):
    status, _ = absolute_form(server, f"http://127.0.0.1:{server.port}/v1/classify",
                              f"evil.example:{server.port}")
    assert status == 403


# --- Slow clients at the connection limit (THREATS.md T8, issue 16) -----------------------------

class Trickler:
    """`n` sockets that each send the start of a request and then, while `trickle`, one more
    header byte every 0.3 s (slowloris); idle ones send nothing at all."""

    def __init__(self, port, n, trickle):
        self.socks = []
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", int(port)))  # beyond the limit they wait in the backlog
            self.socks.append(s)
        self.trickle = trickle
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        payload = b"GET /v1/health HTTP/1.1\r\nX-Slow: " + b"a" * 10_000
        sent = 0
        while not self.stop.wait(0.3):
            if not self.trickle:
                continue
            for s in self.socks:
                with contextlib.suppress(OSError):  # closed by the server, or not connected yet
                    s.send(payload[sent:sent + 1])
            sent += 1

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        for s in self.socks:
            s.close()


@pytest.mark.parametrize("trickle", [True, False], ids=["slowloris", "idle"])
def test_health_is_served_while_slow_sockets_hold_the_connection_limit(live_server, trickle):
    # Deadlines far away: only closing the stalest slow connection for a new one can help.
    server = live_server(HEADER_TIMEOUT_S=300, REQUEST_TIMEOUT_S=300)
    slow = Trickler(server.port, WAITRESS_SETTINGS["connection_limit"] + 10, trickle)
    try:
        r = requests.get(server.url + "/v1/health", headers=server.headers, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert post(server).status_code == 200
    finally:
        slow.close()


def wait_closed(sock, timeout=20.0):
    """True once the server closed `sock` (EOF or reset), False after `timeout` s."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_request_whose_headers_trickle_past_the_header_deadline_is_closed(live_server):
    server = live_server(HEADER_TIMEOUT_S=0.5)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /v1/health HTTP/1.1\r\n")
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.1):
                try:
                    s.send(b"a")
                except OSError:
                    return

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            assert wait_closed(s)
        finally:
            stop.set()
            thread.join(timeout=5)
    assert requests.get(server.url + "/v1/health", headers=server.headers,
                        timeout=10).status_code == 200


def test_a_body_slower_than_the_request_deadline_is_closed(live_server):
    server = live_server(REQUEST_TIMEOUT_S=1.0)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall((f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                   f"X-Auth-Token: {TEST_TOKEN}\r\nContent-Type: image/png\r\n"
                   f"Content-Length: {len(PNG)}\r\n\r\n").encode() + PNG[:10])
        assert wait_closed(s)
