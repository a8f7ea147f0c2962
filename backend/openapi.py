"""The OpenAPI 3.1 document of API v1, served at /v1/openapi.json; tests keep it true."""

from simclip import WARNING_CATEGORIES, __version__


def _error(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(ref, description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


# A comma-separated list header of names (backend/api.py `_read_name_list`): at most 16 elements.
_NAME = "[ \t]*([A-Za-z0-9][A-Za-z0-9-]{0,31})?[ \t]*"
_NAME_LIST = f"^{_NAME}(,{_NAME}){{0,15}}$"
def _list_header(name, description):
    """An optional request header holding a list of names (`_NAME_LIST`)."""
    return {"name": name, "in": "header", "required": False,
            "schema": {"type": "string", "pattern": _NAME_LIST}, "description": description}


SCORES = {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}}

SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": False,
            "properties": {"code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                           "message": {"type": "string"},
                           "retry_after_ms": {
                               "type": "integer", "minimum": 0,
                               "description": "503 busy only: retry after this many "
                                              "milliseconds (Retry-After is the same wait in "
                                              "whole seconds, rounded up)"}}}},
    },
    "Health": {
        "type": "object",
        "description": "while the model loads (state loading or failed) the model's fields are "
                       "null and batching/cache absent",
        "required": ["status", "state", "model", "mode", "device", "ocr", "queue_depth",
                     "version", "requests", "setup"],
        "properties": {
            "status": {"const": "ok"},
            "state": {"enum": ["loading", "ready", "failed"]},
            "loading": {"type": ["object", "null"], "required": ["stage", "done", "total", "unit"],
                        "properties": {"stage": {"enum": ["weights", "model", "warmup"]},
                                       "done": {"type": "number"},
                                       "total": {"type": ["number", "null"]},
                                       "unit": {"enum": ["bytes", None]},
                                       "message": {"type": "string"}},
                        "description": "while state is loading: the stage and its progress"},
            "error": {"oneOf": [{"type": "null"},
                                {"$ref": "#/components/schemas/Error/properties/error"}],
                      "description": "when state is failed: why, and what to do"},
            "setup": {"type": "object", "required": ["state", "stage"],
                      "properties": {"state": {"$ref": "#/components/schemas/Setup/properties/state"},
                                     "stage": {"$ref": "#/components/schemas/Setup/properties/stage"}},
                      "description": "short form of GET /v1/setup"},
            "model": {"type": ["string", "null"],
                      "description": "backbone id, e.g. ViT-L-14-336/openai"},
            "mode": {"enum": ["trained", "zero-shot", None]},
            "calibrated": {"type": ["boolean", "null"],
                           "description": "false: zero-shot scores not fitted on labelled memes "
                                          "(`simclip calibrate`); they rank pictures but are "
                                          "not probabilities"},
            "device": {"type": ["string", "null"]},
            "precision": {
                "type": ["object", "null"], "required": ["served", "head"],
                "properties": {"served": {"enum": ["int8", "fp32", "fp16", "bf16"]},
                               "head": {"enum": ["int8", "fp32", "fp16", "bf16", None]}},
                "description": "the encoders' precision, and the one the head's training "
                               "embeddings were made with (null: zero-shot, or not recorded)"},
            "cost": {
                "type": ["object", "null"],
                "required": ["per_picture_ms", "encode_ms", "ocr_ms", "device", "workers"],
                "properties": {"per_picture_ms": {"type": "number"},
                               "encode_ms": {"type": "number"}, "ocr_ms": {"type": "number"},
                               "decode_ms": {"type": "number"}, "device": {"type": "string"},
                               "precision": {"type": ["string", "null"]},
                               "batch": {"type": "integer"}, "workers": {"type": "integer"}},
                "description": "ms per picture measured at startup on this device: decode + OCR "
                               "+ encode (encoders and head, per picture in a batch of `batch`) of "
                               "a meme-like picture; `workers` OCR threads; null until measured"},
            "ocr": {"type": ["string", "null"]},
            "queue_depth": {"type": "integer", "minimum": 0},
            "version": {"type": "string"},
            "requests": {"type": "integer", "minimum": 0,
                         "description": "classify requests that passed the HTTP checks"},
            "batching": {
                "type": "object", "required": ["batches", "images", "max_size", "mean_size"],
                "properties": {"batches": {"type": "integer"}, "images": {"type": "integer"},
                               "max_size": {"type": "integer"}, "mean_size": {"type": "number"},
                               "sizes": {"type": "object",
                                         "additionalProperties": {"type": "integer"}}}},
            "cache": {
                "type": "object", "required": ["memory_entries", "persistent", "hits", "misses"],
                "properties": {"memory_entries": {"type": "integer"},
                               "persistent": {"type": "boolean"},
                               "hits": {"type": "integer"}, "misses": {"type": "integer"}}},
            "admission": {
                "type": ["object", "null"],
                "required": ["limit", "admitted", "admitted_total", "shed_total", "shed_ms"],
                "properties": {"limit": {"type": "integer", "minimum": 1},
                               "admitted": {"type": "integer", "minimum": 0},
                               "admitted_total": {"type": "integer", "minimum": 0},
                               "shed_total": {"type": "integer", "minimum": 0},
                               "shed_ms": {"type": ["object", "null"],
                                           "properties": {"p50": {"type": "number"},
                                                          "max": {"type": "number"}}}},
                "description": "classify admission: its limit, requests admitted now (waiting "
                               "or running), totals, and the server-side time of recent 503 "
                               "busy answers; null outside simclip-server"},
        },
    },
    "Setup": {
        "type": "object",
        "required": ["state", "stage", "stages", "done", "total", "unit", "eta_s", "error",
                     "plan", "summary"],
        "properties": {
            "state": {"enum": ["idle", "running", "done", "failed", "cancelled"]},
            "stage": {"enum": [None, "weights", "dataset", "embed", "train", "calibrate",
                               "validate"]},
            "stages": {"type": "array", "items": {"type": "string"}},
            "done": {"type": "number"}, "total": {"type": ["number", "null"]},
            "unit": {"enum": ["bytes", "memes", "epochs", "files", None]},
            "eta_s": {"type": ["number", "null"], "description": "seconds left for the whole setup"},
            "error": {"oneOf": [{"type": "null"},
                                {"$ref": "#/components/schemas/Error/properties/error"}]},
            "plan": {"type": ["object", "null"],
                     "required": ["device", "recipe", "estimate_s", "download_bytes", "store_bytes"]},
            "summary": {"type": ["object", "null"], "required": ["categories"]},
            "embedded": {"type": "object", "description": "memes encoded by this run, and taken "
                                                          "from the shards of an earlier one"},
            "head": {"type": "string", "description": "the trained head file, once validated"},
        },
    },
    "Category": {
        "type": "object", "required": ["id", "name", "description", "default_threshold"],
        "properties": {"id": {"enum": list(WARNING_CATEGORIES)},
                       "name": {"type": "string"}, "description": {"type": "string"},
                       "default_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                       "calibrated": {"type": "boolean",
                                      "description": "the threshold comes from a trained head "
                                                     "or a fitted zero-shot calibration"},
                       "source": {"enum": ["trained", "zero-shot"],
                                  "description": "what scores it: the trained head, or CLIP "
                                                 "prompt ensembles (every category in "
                                                 "zero-shot mode; those the head lacks in "
                                                 "trained mode)"}},
    },
    "Labels": {
        "type": "object", "required": ["categories", "labels"],
        "properties": {
            "categories": {"type": "array", "items": {"$ref": "#/components/schemas/Category"},
                           "description": "the warning categories this model gives"},
            "labels": {"type": "array", "items": {"$ref": "#/components/schemas/Category"},
                       "description": "the same list under its v1 name, kept for compatibility"},
        },
    },
    "Warning": {
        "type": "object", "required": ["id", "name", "score", "threshold"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                       "score": {"type": "number"}, "threshold": {"type": "number"}},
    },
    "ClassifyResult": {
        "type": "object",
        "required": ["sha256", "mode", "scores", "warnings", "text", "cached", "timings_ms"],
        "properties": {
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "mode": {"enum": ["trained", "zero-shot"]},
            "scores": SCORES,
            "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}},
            "text": {"type": "string", "description": "OCR text of the image (an animation's "
                                                      "or a video's frames merged)"},
            "text_truncated": {"type": "boolean",
                               "description": "true when OCR ran over its time budget (or failed): "
                                              "the picture was judged on its image with the text "
                                              "read in time, often none; such results are not "
                                              "cached"},
            "calibrated": {"type": "boolean", "description": "as in /v1/health"},
            "frames": {"type": "integer", "minimum": 1,
                       "description": "frames judged: 1 for a still image, up to 4 sampled "
                                      "visible frames of an animation or a video"},
            "size": {"type": "object", "required": ["width", "height"],
                     "properties": {"width": {"type": "integer", "minimum": 1},
                                    "height": {"type": "integer", "minimum": 1}},
                     "description": "the picture (its first frame) as judged, in pixels, after "
                                    "its EXIF orientation and before any tiling; a frame over 4 "
                                    "MP is scaled down first, aspect kept; absent in results "
                                    "cached by an older server"},
            "cached": {"type": "boolean",
                       "description": "true when this request did not compute the result "
                                      "(cache hit, or an identical image was in flight)"},
            "timings_ms": {"type": "object", "required": ["total"],
                           "additionalProperties": {"type": "number"}},
        },
    },
}

ERRORS = {"400": _error("malformed request or empty body"),
          "401": _error("missing or wrong X-Auth-Token"),
          "403": _error("Host is not a loopback name with our port, or a web Origin")}


def create_openapi(port):
    """The OpenAPI document (a dict) for a server on `port`."""
    image_body = {"required": True,
                  "description": "the raw image or video bytes (at most 10 MiB); the format is "
                                 "decided by the magic bytes, never by the Content-Type",
                  "content": {t: {"schema": {"type": "string", "format": "binary"}}
                              for t in ("application/octet-stream", "image/*", "video/mp4",
                                        "video/webm")}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "simclip meme shield", "version": __version__,
                 "description": "Local meme classifier (SimCLIP). See docs/api.md."},
        "servers": [{"url": f"http://127.0.0.1:{port}"}],
        "security": [{"token": []}],
        "paths": {
            "/v1/health": {"get": {
                "operationId": "health", "summary": "What the server serves, how busy it is",
                "responses": {"200": _json("Health", "server status"), **ERRORS}}},
            "/v1/labels": {"get": {
                "operationId": "labels", "summary": "The warning categories of this model",
                "responses": {"200": _json("Labels", "warning categories"), **ERRORS}}},
            "/v1/classify": {"post": {
                "operationId": "classify", "summary": "Classify one image or video (raw body)",
                "parameters": [_list_header(
                    "X-Exif-Orientation", "the image formats (jpeg or jpg, png, webp) whose EXIF "
                                   "orientation the client's browser applies when it paints them, "
                                   "comma-separated (spaces, tabs and empty elements ignored, at "
                                   "most 16 elements); none (or empty) for no format; unknown "
                                   "names are ignored, case-insensitive. Absent: applied in every "
                                   "format"), _list_header(
                    "X-Display-Rules", "the rules the client's browser follows where browsers read "
                                   "the same picture differently, a list as for "
                                   "X-Exif-Orientation: exif-last-entry (of several EXIF "
                                   "orientation entries the last valid one before any invalid "
                                   "one counts, as in Firefox; by default the first valid one, as "
                                   "in Chromium), apng-exif-ignored (an APNG painted as stored), "
                                   "cmyk-profile-ignored, png-icc-checksum-ignored, "
                                   "png-gama-beside-srgb (as Firefox), lab-profile-on-rgb (as "
                                   "Chromium); docs/api.md, What is judged. Absent or none: the "
                                   "defaults")],
                "requestBody": image_body,
                "responses": {
                    "200": _json("ClassifyResult", "scores and warnings"), **ERRORS,
                    "411": _error("no Content-Length"),
                    "413": _error("body over 10 MiB (decided from Content-Length)"),
                    "415": _error("not an accepted Content-Type, Content-Encoding or format "
                                  "(image format, video container or codec)"),
                    "422": _error("an image or video refused: too many pixels, too long, too "
                                  "many frames, truncated, malformed"),
                    "431": _error("request headers over 16 KiB"),
                    "503": {**_error("busy (more classify requests waiting than the server "
                                     "admits; answered at once, retry after retry_after_ms), "
                                     "or loading (the model is not loaded yet): retry after "
                                     "Retry-After seconds"),
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}}},
            "/v1/setup": {
                "get": {"operationId": "setupStatus", "summary": "Where setup stands",
                        "responses": {"200": _json("Setup", "setup progress"), **ERRORS}},
                "post": {"operationId": "setupStart",
                         "summary": "Set up protection: fetch Harm-C, embed, train, calibrate, "
                                    "validate, then serve the head (no restart)",
                         "responses": {"202": _json("Setup", "started"), **ERRORS,
                                       "409": _error("setup_running: one runs already"),
                                       "503": _error("loading: the model is not loaded yet; "
                                                     "setup_storage_unavailable: its folder "
                                                     "cannot be written")}},
                "delete": {"operationId": "setupCancel", "summary": "Cancel the running setup",
                           "responses": {"200": _json("Setup", "stopped (state cancelled)"),
                                         **ERRORS,
                                         "409": _error("setup_not_running: none runs")}}},
            "/v1/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {
                                          "type": "object"}}}}, "403": ERRORS["403"]}}},
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"token": {"type": "apiKey", "in": "header",
                                          "name": "X-Auth-Token"}},
        },
    }
