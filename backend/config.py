"""The server's options and their defaults, defined once.

`create_app` starts from DEFAULT_CONFIG (then the instance folder's config.py, then the caller's
mapping); `simclip-server`'s flags default to the same values, and `Pipeline`/`ResultCache` take
theirs from here, so a default changes in one place.
"""

from simclip import DEFAULT_PORT, MAX_BODY_BYTES

BODY_MAX = MAX_BODY_BYTES  # bytes; THREATS.md T6 (waitress gets BODY_MAX + 1: it refuses >=)
HEADER_MAX = 16 * 1024  # bytes of request line + headers; over it waitress answers 431

DEFAULT_CONFIG = {
    "PORT": DEFAULT_PORT,  # the Host header must carry this port
    "EXTRA_HOSTS": (),  # more exact Host names (only for a deliberate non-loopback bind)
    "ALLOWED_ORIGINS": None,  # exact extension origins; None: any well-formed extension origin
    "TOKEN": None,  # None: read or create the token file in CONFIG_DIR
    "CONFIG_DIR": None,  # None: $XDG_CONFIG_HOME/simclip
    "CLASSIFIER": None,  # a ready Predictor; None: load one with CLASSIFIER_OPTIONS
    "CLASSIFIER_OPTIONS": {"checkpoint": None},  # load_classifier's arguments (ClassifierOptions)
    "LOAD_IN_BACKGROUND": False,  # load the model in a thread, answering health meanwhile
    "CLASSIFIER_LOADER": None,  # loader(options, report) -> Predictor; None: model.load_default
    "SETUP_DIR": None,  # where setups live; None: $XDG_CACHE_HOME/simclip/setup
    "SETUP_DATA_DIR": None,  # datasets + embeddings of setup; None: $XDG_CACHE_HOME/simclip/data
    "SETUP_RECIPE": None,  # 'paper' or 'cpu'; None: 'paper' on CUDA, else 'cpu'
    "SETUP_SHARD_SIZE": None,  # memes per resumable embedding shard; None: EmbedConfig's
    "CACHE_DIR": None,  # result cache dir; None: $XDG_CACHE_HOME/simclip; "": memory only
    "MEMORY_CACHE_SIZE": 4096,  # results kept in the in-memory LRU
    "MAX_BATCH": 16,  # images per encoder batch
    "MAX_WAIT_MS": 5.0,  # how long the encoder waits for a batch to fill after its first image
    "MAX_QUEUE": 64,  # images in the pipeline before new ones get 503
    "OCR_WORKERS": 2,  # decode + OCR worker processes (threads without DECODE_ISOLATION)
    "DECODE_ISOLATION": True,  # decode + OCR in worker processes with hard limits (isolation.py)
    "DECODE_BUDGET_S": 3.0,  # wall-clock seconds to decode one picture; over it: 422
    "OCR_BUDGET_S": 3.0,  # seconds of OCR per picture; over it: judged with text_truncated
    "WORKER_MEMORY_MB": 2048,  # address space a decode worker may add past its start (RLIMIT_AS)
    "WORKER_OUTPUT_PIXELS": 4 * 1024 * 1024,  # pixels per frame a worker sends back at most
    "CLASSIFY_TIMEOUT_S": 60.0,  # a request waiting longer gets 503
    "RETRY_AFTER_S": 1,  # the Retry-After of a 503 busy answer
    "THREADS": 32,  # waitress request threads for classify requests
    "CONTROL_THREADS": 4,  # request threads for everything else (health, labels, setup, refusals)
    "MAX_ADMITTED": 16,  # classify requests waiting or running at once; beyond: 503 busy at once
    "HEADER_TIMEOUT_S": 5.0,  # a request's headers must arrive within this from its first byte
    "REQUEST_TIMEOUT_S": 30.0,  # and its whole body within this (slow clients are closed)
    "MAX_CONTENT_LENGTH": BODY_MAX,  # Flask's own cap (waitress refuses larger bodies first)
    "BODY_MAX": BODY_MAX,  # the classify body limit the API checks from Content-Length
}
