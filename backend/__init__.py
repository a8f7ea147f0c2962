"""The local classification server: a Flask app factory, served by waitress (`backend.serve`)."""

from flask import Flask

from simclip import DEFAULT_PORT

BODY_MAX = 10 * 1024 * 1024  # bytes; THREATS.md T6 (waitress gets BODY_MAX + 1: it refuses >=)
HEADER_MAX = 16 * 1024  # bytes of request line + headers; over it waitress answers 431


def create_app(test_config=None):
    """Create the Flask app: security guard, JSON errors, the v1 API and the model pipeline.

    Args:
        test_config: a mapping overriding the defaults and the instance config, e.g.
            {"CLASSIFIER": predictor, "TOKEN": "...", "CACHE_DIR": "", "PORT": 8478}.

    Returns:
        The Flask app; its pipeline threads stop with `backend.model.close_app(app)`.
    """
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.from_mapping(
        PORT=DEFAULT_PORT,  # the Host header must carry this port
        EXTRA_HOSTS=(),  # more exact Host names (only for a deliberate non-loopback bind)
        ALLOWED_ORIGINS=None,  # exact extension origins; None: any well-formed extension origin
        TOKEN=None,  # None: read or create the token file in CONFIG_DIR
        CONFIG_DIR=None,  # None: $XDG_CONFIG_HOME/simclip
        CLASSIFIER=None,  # a ready Predictor; None: load one with CLASSIFIER_OPTIONS
        CLASSIFIER_OPTIONS={"model": None, "pretrained": None, "checkpoint": None,
                            "device": None, "ocr": "auto"},
        CACHE_DIR=None,  # result cache dir; None: $XDG_CACHE_HOME/simclip; "": memory only
        MEMORY_CACHE_SIZE=4096,  # results kept in the in-memory LRU
        MAX_BATCH=16,  # images per encoder batch
        MAX_WAIT_MS=5.0,  # how long the encoder waits for a batch to fill after its first image
        MAX_QUEUE=64,  # images in the pipeline before new ones get 503
        OCR_WORKERS=2,  # decode + OCR threads
        CLASSIFY_TIMEOUT_S=60.0,  # a request waiting longer gets 503
        MAX_CONTENT_LENGTH=BODY_MAX,
        BODY_MAX=BODY_MAX,
    )
    app.config.from_pyfile("config.py", silent=True)
    if test_config is not None:
        app.config.from_mapping(test_config)

    from . import api, errors, model, security

    errors.init_app(app)
    security.init_app(app)
    model.init_app(app)
    app.register_blueprint(api.bp)
    return app
