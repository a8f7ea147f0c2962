"""The classifier, its result cache and its request pipeline: one of each per process.

Like flaskr's `db.py` (`get_db` + `init_app`), but the resource lives on `app.extensions`
rather than `g`: a model is loaded once per process, not once per request. Tests inject a stub
or a shared tiny predictor through `create_app({"CLASSIFIER": ...})`.
"""

import logging

from flask import current_app

from simclip import get_user_cache_dir, load_classifier

from .cache import ResultCache
from .pipeline import Pipeline

logger = logging.getLogger(__name__)

EXTENSION_KEY = "simclip"


def get_classifier():
    """The app's Predictor."""
    return current_app.extensions[EXTENSION_KEY]["classifier"]


def get_pipeline():
    """The app's batching Pipeline (with its ResultCache)."""
    return current_app.extensions[EXTENSION_KEY]["pipeline"]


def init_app(app):
    """Load the classifier (unless one is given), open the cache, start the pipeline."""
    cfg = app.config
    classifier = cfg["CLASSIFIER"]
    if classifier is None:
        classifier = load_classifier(**cfg["CLASSIFIER_OPTIONS"])
    cache_dir = cfg["CACHE_DIR"]
    if cache_dir is None:
        cache_dir = get_user_cache_dir()
    cache = ResultCache(classifier.identity, cache_dir or None,
                        memory_size=cfg["MEMORY_CACHE_SIZE"])
    pipeline = Pipeline(classifier, cache, max_batch=cfg["MAX_BATCH"],
                        max_wait_ms=cfg["MAX_WAIT_MS"], max_queue=cfg["MAX_QUEUE"],
                        ocr_workers=cfg["OCR_WORKERS"], timeout_s=cfg["CLASSIFY_TIMEOUT_S"],
                        retry_after_s=cfg["RETRY_AFTER_S"])
    app.extensions[EXTENSION_KEY] = {"classifier": classifier, "pipeline": pipeline,
                                     "cache": cache}


def close_app(app):
    """Stop the pipeline threads and close the cache (tests, server shutdown)."""
    state = app.extensions.pop(EXTENSION_KEY, None)
    if state:
        state["pipeline"].close()
        state["cache"].close()
