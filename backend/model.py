"""The classifier, its result cache and its request pipeline: one of each per process.

Like flaskr's `db.py` (`get_db` + `init_app`), but the resource lives on `app.extensions`
rather than `g`: a model is loaded once per process, not once per request. Tests inject a stub
or a shared tiny predictor through `create_app({"CLASSIFIER": ...})`.

With `LOAD_IN_BACKGROUND` (what `simclip-server` uses) the app answers at once: the model loads
in a thread while /v1/health says `state: "loading"` with the stage and its progress, and
/v1/classify and /v1/labels answer 503 `loading` with Retry-After. A load that fails leaves the
state "failed" with a typed error, and the server keeps answering /v1/health so the extension
can show what to do. `swap_classifier` replaces the served head without a restart (setup).
"""

import logging
import threading
import time

from flask import current_app

import simclip  # its model names (torch, open_clip) load on first use: health answers before
from simclip import SimCLIPError, get_user_cache_dir

from .cache import ResultCache
from .errors import ApiError
from .isolation import WorkerLimits
from .pipeline import Pipeline

logger = logging.getLogger(__name__)

EXTENSION_KEY = "simclip"
LOADING, READY, FAILED = "loading", "ready", "failed"
LOADING_STAGES = ("weights", "model", "warmup")
RETRY_AFTER_LOADING_S = 2


class ServedModel:
    """The served model's life: loading -> ready (or failed), then hot swaps.

    Thread-safe: the loader thread and setup's swap write it, request threads read it.
    """

    def __init__(self, app):
        self.app = app
        self.state = LOADING
        self.loading = {"stage": "model", "done": 0, "total": None, "unit": None,
                        "message": "starting"}
        self.error = None  # {"code", "message"} once failed
        self.pipeline = None
        self.checkpoint = None  # the head file served, if any
        self.ready = threading.Event()  # set once the state is ready or failed
        self._lock = threading.Lock()

    def report(self, stage, done=0, total=None, unit=None, message=""):
        """Loading progress: `stage` in LOADING_STAGES, `done` of `total` `unit`s."""
        with self._lock:
            self.loading = {"stage": stage, "done": done, "total": total, "unit": unit,
                            "message": message}

    def install(self, predictor, checkpoint=None):
        """Serve `predictor`: open its result cache, start the pipeline; state ready."""
        cfg = self.app.config
        cache = open_cache(self.app, predictor.identity)
        pipeline = Pipeline(predictor, cache, max_batch=cfg["MAX_BATCH"],
                            max_wait_ms=cfg["MAX_WAIT_MS"], max_queue=cfg["MAX_QUEUE"],
                            ocr_workers=cfg["OCR_WORKERS"], timeout_s=cfg["CLASSIFY_TIMEOUT_S"],
                            retry_after_s=cfg["RETRY_AFTER_S"],
                            isolation=WorkerLimits.from_config(cfg))
        with self._lock:
            self.pipeline, self.checkpoint, self.state = pipeline, checkpoint, READY
            self.loading = None
        self.ready.set()

    def fail(self, code, message):
        """Loading failed: keep answering health with the error."""
        with self._lock:
            self.state, self.error = FAILED, {"code": code, "message": message}
            self.loading = None  # health: the error, not the last loading step
        self.ready.set()

    def swap(self, predictor, checkpoint=None):
        """Serve `predictor` from now on, with a cache of its identity; requests in flight are
        answered by the old one. Raises RuntimeError when no model is served yet."""
        if self.pipeline is None:
            raise RuntimeError("no model is served yet")
        cache = open_cache(self.app, predictor.identity)
        old, old_cache = self.pipeline.swap(predictor, cache)
        if getattr(predictor, "cost", None) is None and \
                getattr(predictor, "backbone", None) is getattr(old, "backbone", False):
            predictor.cost = old.cost  # a new head on the same encoders costs the same
        old_cache.close()
        self.checkpoint = checkpoint
        logger.info("now serving %s, %s mode (%s)", predictor.backbone.info.id, predictor.mode,
                    checkpoint or "no head")


def open_cache(app, identity):
    """A ResultCache for `identity` in the app's CACHE_DIR ("" keeps it in memory)."""
    cache_dir = app.config["CACHE_DIR"]
    if cache_dir is None:
        cache_dir = get_user_cache_dir()
    return ResultCache(identity, cache_dir or None, memory_size=app.config["MEMORY_CACHE_SIZE"])


def get_served_model(app=None):
    """The app's ServedModel."""
    return (app or current_app).extensions[EXTENSION_KEY]


def _require_ready():
    served = get_served_model()
    if served.state == READY:
        return served
    if served.state == LOADING:
        stage = served.loading["stage"] if served.loading else "model"
        raise ApiError(503, "loading", f"the model is loading ({stage}); retry shortly",
                       {"Retry-After": str(RETRY_AFTER_LOADING_S)})
    raise ApiError(503, served.error["code"], served.error["message"])


def get_classifier():
    """The app's Predictor; ApiError 503 while it loads or when loading failed."""
    return _require_ready().pipeline.predictor


def get_pipeline():
    """The app's batching Pipeline (with its ResultCache); 503 as `get_classifier`."""
    return _require_ready().pipeline


def load_default(options, report):
    """The server's loader: `load_classifier(**options)`, then one warm-up prediction and the
    cost per picture measured on this device (`Predictor.measure_cost`, /v1/health `cost`).

    While the CLIP weights are downloaded the stage is "weights", with the bytes done and the
    file's total (the library's `weights_progress` callback); then "model", then "warmup".
    """

    def on_weights(done, total):
        if total is not None and done >= total:
            report("model", 0, None, None, "building the model")
        else:
            report("weights", done, total, "bytes", "downloading the CLIP weights")

    report("model", 0, None, None, "building the model")
    predictor = simclip.load_classifier(**options, weights_progress=on_weights)
    report("warmup", 0, 1, None, "warming up, measuring the cost per picture")
    predictor.measure_cost()  # warms every stage, then times one picture (/v1/health `cost`)
    return predictor


def _load(app, served, loader, options):
    """The loader thread: load, adopt setup's head, serve; or fail with a typed error."""
    from . import setup

    t0 = time.perf_counter()
    setup.get_setup(app).locate(options)  # an interrupted setup shows while the model loads
    try:
        predictor = loader(options, served.report)
        predictor, checkpoint = setup.adopt_setup_head(app, predictor, options)
    except (SimCLIPError, RuntimeError, ValueError, OSError, ImportError) as e:
        code = getattr(e, "code", None) or "model_load_failed"
        logger.error("loading the model failed: %s", e)
        served.fail(code, str(e))
        return
    served.install(predictor, checkpoint or options.get("checkpoint"))
    logger.info("serving %s, %s mode, device %s, OCR %s (loaded in %.1f s)",
                predictor.backbone.info.id, predictor.mode, predictor.device,
                predictor.ocr.name, time.perf_counter() - t0)
    setup.resume_setup(app)


def init_app(app):
    """Load the classifier (unless one is given), open the cache, start the pipeline.

    With LOAD_IN_BACKGROUND the load runs in a thread (CLASSIFIER_LOADER, default
    `load_default`, called as loader(options, report)) and the app answers at once.
    """
    cfg = app.config
    served = ServedModel(app)
    app.extensions[EXTENSION_KEY] = served
    classifier = cfg["CLASSIFIER"]
    options = dict(cfg["CLASSIFIER_OPTIONS"])
    if classifier is not None:
        if isinstance(classifier, simclip.Predictor):  # tests: a real predictor can run setup too
            from . import setup

            setup.get_setup(app).attach(classifier, options)
        served.install(classifier, options.get("checkpoint"))
        return
    loader = cfg.get("CLASSIFIER_LOADER") or load_default
    if cfg.get("LOAD_IN_BACKGROUND"):
        threading.Thread(target=_load, args=(app, served, loader, options),
                         name="simclip-model-load", daemon=True).start()
        return
    served.install(simclip.load_classifier(**options), options.get("checkpoint"))


def close_app(app):
    """Stop the pipeline threads and close the cache (tests, server shutdown)."""
    from . import setup

    setup.close_setup(app)
    served = app.extensions.pop(EXTENSION_KEY, None)
    if served is not None and served.pipeline is not None:
        served.pipeline.close()
        served.pipeline.cache.close()
