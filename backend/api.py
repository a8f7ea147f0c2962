"""HTTP API v1: health, warning categories, classify (raw image or video bytes), and its OpenAPI
document."""

import re

from flask import Blueprint, current_app, jsonify, request

from simclip import DISPLAY_RULES, EXIF_ORIENTATION_FORMATS, TRAINED, ImageError, __version__

from .admission import EXTENSION_KEY as ADMISSION_KEY
from .admission import busy_response, get_admission
from .errors import ApiError
from .model import READY, get_classifier, get_pipeline, get_served_model
from .openapi import create_openapi
from .pipeline import Busy, PipelineError
from .setup import get_setup

bp = Blueprint("api", __name__, url_prefix="/v1")

# Content types of a classify body: any image/*, the two video containers the library decodes,
# or octet-stream. The format is decided by the body's magic bytes, never by this header.
ACCEPTED_TYPES = ("image/", "application/octet-stream")
ACCEPTED_VIDEO_TYPES = ("video/mp4", "video/webm")
# `X-Exif-Orientation: jpeg,png`: the image formats whose EXIF orientation the client's browser
# applies when it paints them (docs/api.md, "What is judged"); absent, every format is turned.
EXIF_ORIENTATION_HEADER = "X-Exif-Orientation"
# `X-Display-Rules: exif-last-entry`: the rules the client's browser follows where browsers read
# the same picture differently (simclip.display.DISPLAY_RULES); absent or `none`: the defaults.
DISPLAY_RULES_HEADER = "X-Display-Rules"
_LIST_ELEMENT = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_MAX_LIST_ELEMENTS = 16  # list elements, empty ones included
_FORMAT_ALIASES = {"jpg": "jpeg"}


@bp.get("/health")
def health():
    """What the server serves, and how busy it is (or how far its model has loaded)."""
    served = get_served_model()
    if served.state != READY:
        return jsonify(_health_not_ready(served))
    classifier, pipeline = get_classifier(), get_pipeline()
    return jsonify({"status": "ok", "state": READY, "setup": get_setup().short_status(),
                    "model": classifier.backbone.info.id,
                    "mode": classifier.mode, "calibrated": classifier.calibrated,
                    "random_weights": classifier.backbone.info.random_weights,
                    "device": classifier.device, "precision": _get_precision(classifier),
                    "cost": _get_cost(classifier),
                    "ocr": classifier.ocr.name, "queue_depth": pipeline.queue_depth,
                    "version": __version__, "batching": pipeline.stats.as_dict(),
                    "cache": pipeline.cache.stats(), "requests": pipeline.requests,
                    "admission": _get_admission_stats()})


def _get_admission_stats():
    """The admission's limit and counts (`backend.admission`), or null when the app is not
    served by `backend.serve` (Flask's test client)."""
    admission = current_app.extensions.get(ADMISSION_KEY)
    return None if admission is None else admission.as_dict()


def _health_not_ready(served):
    """/v1/health while the model loads (`loading`: stage and progress) or after it failed
    (`error`); the model's fields are null until it is ready."""
    return {"status": "ok", "state": served.state, "loading": served.loading,
            "error": served.error, "setup": get_setup().short_status(), "model": None,
            "mode": None, "calibrated": None, "device": None, "ocr": None, "queue_depth": 0,
            "version": __version__, "requests": 0, "admission": _get_admission_stats()}


def _get_precision(classifier):
    """{"served": the encoders' precision, "head": the one the head's embeddings were made with
    (null in zero-shot mode, or for a head that does not record it)}."""
    head = classifier.metadata.get("precision") if classifier.mode == TRAINED else None
    return {"served": classifier.backbone.info.precision, "head": head}


def _get_cost(classifier):
    """The cost per picture measured at startup (`Predictor.measure_cost`) with the server's OCR
    threads, or null before it was measured."""
    cost = getattr(classifier, "cost", None)
    return None if cost is None else {**cost, "workers": current_app.config["OCR_WORKERS"]}


@bp.get("/labels")
def categories():
    """The warning categories this model gives, for the popup's toggles.

    Under `categories`, and under `labels` as well: the v1 name, kept for compatibility.
    """
    categories = get_classifier().list_categories()
    return jsonify({"categories": categories, "labels": categories})


def _read_image_body():
    """The raw body, refused by headers alone before reading where possible (T2, T6)."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding and encoding != "identity":
        raise ApiError(415, "unsupported_encoding",
                       "Content-Encoding is not accepted; send the image bytes as they are")
    mimetype = request.mimetype
    if not mimetype.startswith(ACCEPTED_TYPES[0]) and mimetype != ACCEPTED_TYPES[1] \
            and mimetype not in ACCEPTED_VIDEO_TYPES:
        raise ApiError(415, "unsupported_media_type", "Content-Type must be image/*, video/mp4, "
                       "video/webm or application/octet-stream")
    length = request.content_length
    if length is None:
        raise ApiError(411, "length_required", "Content-Length is required")
    body_max = current_app.config["BODY_MAX"]
    if length > body_max:
        raise ApiError(413, "body_too_large", f"the body is over {body_max} bytes")
    if length == 0:
        raise ApiError(400, "empty_body", "the body is empty; send the image bytes")
    data = request.get_data(cache=False)
    if len(data) != length:
        raise ApiError(400, "incomplete_body", "the body is shorter than its Content-Length")
    return data


def _read_name_list(header, known, example):
    """A list header as a frozenset of the `known` names it holds (lower case; names this
    server does not know are left out, so a newer client's list still works; `none` or empty:
    no name); None when absent. A list as RFC 9110 5.6.1 writes one: elements separated by
    commas with optional spaces or tabs, empty elements ignored, a repeated field one list,
    case-insensitive. More than 16 elements, or one that is not a name: a 400."""
    values = request.headers.getlist(header)
    if not values:
        return None
    elements = [e.strip(" \t").lower() for e in ",".join(values).split(",")]
    names = [_FORMAT_ALIASES.get(e, e) for e in elements if e]
    if len(elements) > _MAX_LIST_ELEMENTS or not all(_LIST_ELEMENT.fullmatch(n) for n in names):
        raise ApiError(400, "bad_request", f"{header} must be a comma-separated list of names "
                       f"(e.g. {example}), or none")
    return frozenset(names) & {k.lower() for k in known}


def _read_exif_formats():
    """X-Exif-Orientation as a frozenset of Pillow format names ('JPEG', 'PNG'...), None
    when absent (`_read_name_list`)."""
    names = _read_name_list(EXIF_ORIENTATION_HEADER, EXIF_ORIENTATION_FORMATS, "jpeg,png")
    return None if names is None else frozenset(n.upper() for n in names)


def _read_display_rules():
    """X-Display-Rules as a frozenset of DISPLAY_RULES names, empty when absent."""
    return _read_name_list(DISPLAY_RULES_HEADER, DISPLAY_RULES, "exif-last-entry") or frozenset()


@bp.post("/classify")
def classify():
    """Classify one picture (an image or a video) sent as the raw request body."""
    exif_formats, display_rules = _read_exif_formats(), _read_display_rules()
    data = _read_image_body()
    try:
        return jsonify(get_pipeline().classify(data, exif_formats=exif_formats,
                                               display_rules=display_rules))
    except ImageError as e:
        raise ApiError(e.status, e.code, str(e)) from None
    except Busy as e:  # the pipeline's own bound, or a wait past CLASSIFY_TIMEOUT_S
        return busy_response(str(e), get_admission().retry_after_ms()
                             if ADMISSION_KEY in current_app.extensions else e.retry_after * 1000)
    except PipelineError as e:
        raise ApiError(500, "internal_error", str(e)) from None


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API."""
    return jsonify(create_openapi(current_app.config["PORT"]))
