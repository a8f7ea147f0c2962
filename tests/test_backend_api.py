"""The Flask app through its test client: factory, endpoints, JSON errors, OpenAPI (stub model)."""

import io
import stat

import jsonschema
import pytest
from PIL import Image

from backend import create_app
from backend.openapi import create_openapi
from backend.security import create_token, get_or_create_token, is_origin_allowed
from server_support import TEST_TOKEN

CHROME_ORIGIN = "chrome-extension://" + "a" * 32


def png_bytes(color=(200, 10, 10), size=(32, 32)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def post_image(client, data, content_type="image/png", **headers):
    return client.post("/v1/classify", data=data, headers={"Content-Type": content_type,
                                                          **headers})


def test_factory_applies_test_config_over_defaults(app):
    assert app.config["TESTING"] is True
    assert app.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024
    assert app.config["TOKEN"] == TEST_TOKEN
    assert not app.static_folder  # no endpoint ever serves files


def test_factory_without_test_config_is_not_testing(make_app):
    assert not make_app(TESTING=False).testing


def test_server_flags_and_the_pipeline_default_to_the_app_config_defaults(app):
    import inspect

    from backend.config import DEFAULT_CONFIG
    from backend.pipeline import Pipeline
    from backend.serve import parse_args

    args = parse_args([])
    pipeline_defaults = inspect.signature(Pipeline).parameters
    for key, flag, param in [("MAX_BATCH", "max_batch", "max_batch"),
                             ("MAX_WAIT_MS", "max_wait_ms", "max_wait_ms"),
                             ("MAX_QUEUE", "max_queue", "max_queue"),
                             ("OCR_WORKERS", "ocr_workers", "ocr_workers"),
                             ("CLASSIFY_TIMEOUT_S", None, "timeout_s"),
                             ("THREADS", "threads", None), ("PORT", "port", None)]:
        if key != "PORT":  # the test app pins its own port
            assert app.config[key] == DEFAULT_CONFIG[key], key
        if flag:
            assert getattr(args, flag) == DEFAULT_CONFIG[key], flag
        if param:
            assert pipeline_defaults[param].default == DEFAULT_CONFIG[key], param


def test_health_names_model_mode_device_and_queue_depth(client):
    r = client.get("/v1/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    assert (body["model"], body["mode"], body["device"]) == ("stub/none", "zero-shot", "cpu")
    assert body["queue_depth"] == 0


def test_labels_lists_the_models_categories_with_default_thresholds(client):
    r = client.get("/v1/labels")
    assert r.status_code == 200
    assert r.get_json()["labels"][0] == {"id": "harmful", "name": "Harmful",
                                         "description": "stub", "default_threshold": 0.5,
                                         "calibrated": False}  # issue 9: says what 0.5 means


def test_labels_lists_the_same_categories_under_categories_and_the_v1_labels_key(client):
    body = client.get("/v1/labels").get_json()
    assert set(body) == {"categories", "labels"}
    assert body["categories"] == body["labels"] == [
        {"id": "harmful", "name": "Harmful", "description": "stub", "default_threshold": 0.5,
         "calibrated": False}]


def test_openapi_documents_both_keys_of_the_labels_answer():
    schema = create_openapi(8478)["components"]["schemas"]["Labels"]
    assert set(schema["required"]) == {"categories", "labels"}
    assert schema["properties"]["categories"]["items"] == {"$ref": "#/components/schemas/Category"}


def test_classify_returns_sha256_scores_and_timings_then_a_cache_hit(client):
    import hashlib

    data = png_bytes((255, 0, 0))
    first = post_image(client, data)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["scores"] == {"harmful": 1.0}
    assert [w["id"] for w in body["warnings"]] == ["harmful"]
    assert body["cached"] is False
    assert {"queue", "decode", "ocr", "encode", "head", "total"} <= set(body["timings_ms"])
    second = post_image(client, data).get_json()
    assert second["cached"] is True and second["scores"] == body["scores"]


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("get", "/nope", 404, "not_found"),
    ("get", "/v1/classify", 405, "method_not_allowed"),
    ("post", "/v1/health", 405, "method_not_allowed"),
])
def test_routing_errors_are_json_with_one_shape_and_no_cors(client, method, path, status, code):
    r = getattr(client, method)(path, headers={"Origin": CHROME_ORIGIN})
    assert r.status_code == status
    assert r.get_json()["error"]["code"] == code
    assert set(r.get_json()["error"]) == {"code", "message"}
    assert "Access-Control-Allow-Origin" not in r.headers


def test_a_bug_in_a_view_gives_a_generic_500_without_traceback(app, client, monkeypatch):
    from backend import pipeline

    def boom(self, data):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(pipeline.Pipeline, "classify", boom)
    r = post_image(client, png_bytes())
    assert r.status_code == 500
    assert r.get_json() == {"error": {"code": "internal_error",
                                      "message": "internal server error"}}
    assert b"Traceback" not in r.data and b"secret" not in r.data


def test_token_file_is_created_once_with_mode_0600(tmp_path):
    token, path = get_or_create_token(tmp_path / "simclip")
    assert len(token) == 43 and path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert get_or_create_token(tmp_path / "simclip") == (token, path)
    assert create_token() != create_token()


def test_malformed_token_file_stops_startup_with_what_to_do(tmp_path):
    (tmp_path / "simclip").mkdir()
    (tmp_path / "simclip" / "token").write_text("short\n")
    with pytest.raises(RuntimeError, match="delete it"):
        get_or_create_token(tmp_path / "simclip")


def test_app_without_a_token_reads_the_token_file(tmp_path):
    from backend.model import close_app
    from server_support import StubClassifier

    app = create_app({"CLASSIFIER": StubClassifier(), "CACHE_DIR": "",
                      "CONFIG_DIR": str(tmp_path)})
    try:
        assert app.config["TOKEN"] == (tmp_path / "token").read_text().strip()
    finally:
        close_app(app)


@pytest.mark.parametrize(("origin", "allowed"), [
    (CHROME_ORIGIN, True),
    ("moz-extension://0f8e2a4b-1c3d-4e5f-8a9b-0c1d2e3f4a5b", True),
    ("chrome-extension://" + "a" * 32 + "x", False),
    ("CHROME-EXTENSION://" + "a" * 32, False),
    ("chrome-extension://" + "z" * 32, False),
    ("null", False),
    ("https://evil.example", False),
    ("http://localhost.evil.example", False),
])
def test_extension_origins_match_in_full_and_nothing_else(origin, allowed):
    assert is_origin_allowed(origin) is allowed


def test_configured_origins_are_compared_exactly():
    paired = {CHROME_ORIGIN}
    assert is_origin_allowed(CHROME_ORIGIN, paired)
    assert not is_origin_allowed("chrome-extension://" + "b" * 32, paired)


# --- CORS headers: written by flask-cors, from patterns that only match a whole origin ---------

def _acao(client, origin):
    return client.get("/v1/labels", headers={"Origin": origin}).headers.get(
        "Access-Control-Allow-Origin")


def test_flask_cors_is_what_writes_the_cors_headers(app, client):
    hooks = app.after_request_funcs[None]
    cors_hooks = [f for f in hooks if f.__module__.startswith("flask_cors.")]
    assert cors_hooks, "flask-cors is not installed on the app"
    assert _acao(client, CHROME_ORIGIN) == CHROME_ORIGIN
    for hook in cors_hooks:
        hooks.remove(hook)
    r = client.get("/v1/labels", headers={"Origin": CHROME_ORIGIN})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers  # security.py never writes it


@pytest.mark.parametrize("allowed_origins", [None, {CHROME_ORIGIN}], ids=["any", "pinned"])
@pytest.mark.parametrize("origin", [
    "https://evil.example", "null", CHROME_ORIGIN + ".evil", CHROME_ORIGIN + "a",
    "https://evil.example/" + CHROME_ORIGIN, "chrome-extension://b" + "a" * 32,
    "CHROME-EXTENSION://" + "a" * 32, "chrome-extension://" + "A" * 32,
])
def test_flask_cors_alone_echoes_only_a_whole_exact_origin(allowed_origins, origin):
    """The patterns given to flask-cors are strict by themselves, without security.py's gate."""
    from flask import Flask

    from backend.security import init_cors

    bare = Flask(__name__)
    bare.config["ALLOWED_ORIGINS"] = allowed_origins
    bare.add_url_rule("/v1/labels", "labels", lambda: {"labels": []})
    init_cors(bare)
    client = bare.test_client()
    assert _acao(client, CHROME_ORIGIN) == CHROME_ORIGIN
    assert _acao(client, origin) is None
    assert "Access-Control-Allow-Origin" not in client.get("/v1/labels").headers  # no Origin


def test_cors_config_keys_cannot_loosen_the_cors_headers(make_app):
    client = make_app(CORS_ORIGINS="*", CORS_SEND_WILDCARD=True, CORS_ALWAYS_SEND=True,
                      CORS_SUPPORTS_CREDENTIALS=True, CORS_EXPOSE_HEADERS="X-Auth-Token").test_client()
    r = client.get("/v1/labels", headers={"Origin": CHROME_ORIGIN})
    assert r.headers["Access-Control-Allow-Origin"] == CHROME_ORIGIN
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert "Access-Control-Expose-Headers" not in r.headers
    assert "Access-Control-Allow-Origin" not in client.get("/v1/labels").headers


# --- OpenAPI: the document matches the routes, and real responses match its schemas ---------

def _routes(app):
    return {(rule.rule, method.lower()) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_openapi_paths_and_methods_match_the_url_map(app):
    spec = create_openapi(8478)
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert documented == _routes(app)


def _validate(spec, schema_name, instance):
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_real_responses_validate_against_the_openapi_schemas(client):
    spec = client.get("/v1/openapi.json", headers={"X-Auth-Token": None}).get_json()
    assert spec["openapi"].startswith("3.1")
    jsonschema.Draft202012Validator.check_schema(
        {"$defs": spec["components"]["schemas"]})
    _validate(spec, "Health", client.get("/v1/health").get_json())
    _validate(spec, "Labels", client.get("/v1/labels").get_json())
    ok = post_image(client, png_bytes())
    _validate(spec, "ClassifyResult", ok.get_json())
    _validate(spec, "ClassifyResult", post_image(client, png_bytes()).get_json())  # cached
    for response in (post_image(client, b"not an image"), post_image(client, b""),
                     client.get("/v1/health", headers={"X-Auth-Token": None}),
                     post_image(client, png_bytes(), content_type="text/plain")):
        assert str(response.status_code) in spec["paths"]["/v1/classify"]["post"]["responses"]
        _validate(spec, "Error", response.get_json())
