"""Setup inside the server: start the training pipeline as a child process, report its progress,
cancel it, resume it after a restart, and hot-swap the head it validated.

The job itself is `simclip_train.setup` (`python -m simclip_train.setup run ...`), a child
process: the server imports no training code, a training run cannot stall the request threads
(the GIL, memory), and a cancel is a signal. The child writes its progress to
`<SETUP_DIR>/<backbone>/state.json`; GET /v1/setup reads it. When the child exits after its
validate stage, the server loads the head onto the backbone it already serves, swaps it in
(`ServedModel.swap`: requests in flight finish on the old model) and only then says "done".

On start, once the model is loaded: a setup that was running resumes (its dataset download and
embedding shards are kept), and a finished one's head is served (no --checkpoint needed).
"""

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import simclip  # its model names (torch) load on first use: the server answers before
from simclip import SimCLIPError, get_user_cache_dir

from .errors import ApiError

logger = logging.getLogger(__name__)

SETUP_KEY = "simclip_setup"
STAGES = ("weights", "dataset", "embed", "train", "calibrate", "validate")
STATE_FILE = "state.json"  # simclip_train.setup.STATE_FILE: the file the child writes
LOG_FILE = "setup.log"
STOP_TIMEOUT_S = 20.0  # a cancelled child that has not exited by then is killed
ACTIVE = "running"
PLAN_WAIT_S = 10.0  # POST /v1/setup waits this long at most for the child's plan
SHARD_SIZE_ENV = "SIMCLIP_SETUP_SHARD_SIZE"  # tests: small shards, to kill a setup between two


def idle_body():
    """The GET /v1/setup body when no setup ever ran for this backbone."""
    return {"state": "idle", "stage": None, "stages": list(STAGES), "done": 0, "total": None,
            "unit": None, "eta_s": None, "error": None, "plan": None, "summary": None}


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text.replace("/", "__"))


def _read_json(path):
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _write_json(path, data):
    import json

    path = Path(path)
    tmp = path.with_name(path.name + ".server.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def create_trained_predictor(base, head_path):
    """A Predictor serving the head at `head_path` on `base`'s backbone and OCR engine (no model
    is loaded twice). Raises CheckpointError for a head of another backbone."""
    head, meta = simclip.load_checkpoint(head_path, base.backbone.info)
    calibration = simclip.find_calibration(None, base.backbone.info.id)  # setup's new fit
    return simclip.Predictor(base.backbone, base.ocr, head=head, metadata=meta,
                             checkpoint_id=simclip.checkpoint_digest(head_path),
                             batch_size=base.batch_size, max_pixels=base.max_pixels,
                             max_frames=base.max_frames, max_views=base.max_views,
                             calibration=calibration)


class SetupManager:
    """The setup job of one server: at most one child process at a time."""

    def __init__(self, app):
        cfg = app.config
        self.app = app
        self.root = Path(cfg.get("SETUP_DIR") or get_user_cache_dir() / "setup")
        self.data_dir = Path(cfg.get("SETUP_DATA_DIR") or get_user_cache_dir() / "data")
        self.recipe = cfg.get("SETUP_RECIPE")  # None: by device
        # memes per embedding shard (the unit of resume); None: the embedding cache's default
        self.shard_size = cfg.get("SETUP_SHARD_SIZE") or os.environ.get(SHARD_SIZE_ENV)
        self.dir = None  # <root>/<backbone>: from the options (`locate`), else once loaded
        self.base = None  # the zero-shot predictor the head is built on
        self.options = {}
        self.proc = None
        self._lock = threading.Lock()
        self._cancelling = False
        self._closing = False

    @property
    def state_path(self):
        """The state file of this backbone's setup."""
        return self.dir / STATE_FILE

    def locate(self, options):
        """Before the model is built: this backbone's setup folder, from the options alone, so
        that GET /v1/setup and /v1/health show a setup a restart interrupted (it resumes once
        the model is loaded) instead of idle. Skipped with a --checkpoint or unresolvable
        options (the folder is then known at `attach`)."""
        if options.get("checkpoint"):
            return
        names = {f.name for f in dataclasses.fields(simclip.ClassifierOptions)}
        kwargs = {k: v for k, v in options.items() if k in names}
        kwargs["weights_cache_dir"] = options.get("cache_dir")
        try:
            backbone_id = simclip.ClassifierOptions(**kwargs).get_backbone_id()
        except (SimCLIPError, ValueError, OSError) as e:
            logger.debug("no setup folder before the model loads: %s", e)
            return
        with self._lock:
            if self.dir is None:
                self.dir = self.root / _slug(backbone_id)

    def attach(self, predictor, options):
        """Bind to the loaded backbone: its setup folder and the options the child needs."""
        self.base = predictor
        self.options = dict(options)
        self.dir = self.root / _slug(predictor.backbone.info.id)

    def read(self):
        """The stored state (None when none). Before the backbone's folder is known (its name
        needs the model registry, i.e. torch, imported in the first seconds of the load), the
        one setup on disk that was running, if there is exactly one: it is the one that
        resumes, and the popup must not offer to start another meanwhile."""
        if self.dir is not None:
            return _read_json(self.state_path)
        try:
            states = [_read_json(d / STATE_FILE) for d in self.root.iterdir() if d.is_dir()]
        except OSError:
            return None
        running = [s for s in states if s and s.get("state") == ACTIVE]
        return running[0] if len(running) == 1 else None

    def status(self):
        """The GET /v1/setup body."""
        state = self.read()
        if not state:
            return idle_body()
        body = idle_body()
        body.update({k: v for k, v in state.items() if k not in ("pid", "updated")})
        return body

    def short_status(self):
        """The `setup` field of /v1/health."""
        body = self.status()
        return {"state": body["state"], "stage": body["stage"]}

    def is_running(self):
        """True while a child process runs."""
        return self.proc is not None and self.proc.poll() is None

    def _command(self):
        """The child's command line: this server's backbone, device, precision and OCR."""
        o, info = self.options, self.base.backbone.info
        pretrained = o.get("pretrained")
        if pretrained is None:
            pretrained = "none" if info.pretrained == "random" else info.pretrained
        quick_gelu = o.get("quick_gelu")
        if quick_gelu is None:
            quick_gelu = info.activation == "quick_gelu"
        device = self.base.device
        recipe = self.recipe or ("paper" if device.startswith("cuda") else "cpu")
        ocr = o.get("ocr") if isinstance(o.get("ocr"), str) else self.base.ocr.name
        cmd = [sys.executable, "-m", "simclip_train.setup", "run",
               "--state-dir", str(self.dir), "--data-dir", str(self.data_dir),
               "--recipe", recipe, "--parent-pid", str(os.getpid()),
               "--model", o.get("model") or info.model, "--pretrained", str(pretrained),
               "--device", device, "--ocr", ocr or "auto",
               "--quick-gelu" if quick_gelu else "--no-quick-gelu"]
        precision = o.get("precision") or info.precision  # embed as the server serves
        if precision:
            cmd += ["--precision", precision]
        if o.get("cache_dir"):
            cmd += ["--weights-cache-dir", str(o["cache_dir"])]
        if self.shard_size:
            cmd += ["--shard-size", str(self.shard_size)]
        cost = getattr(self.base, "cost", None)  # measured at load: the child plans with it
        if cost:
            cmd += ["--encoder-ms", str(cost["encode_ms"]), "--ocr-ms", str(cost["ocr_ms"]),
                    "--embed-dim", str(info.embed_dim)]
        return cmd

    def _spawn(self):
        """Start the child (the lock is held); its monitor thread waits for it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / LOG_FILE, "ab")  # noqa: SIM115 (the child writes it)
        try:
            self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            log.close()
        self._cancelling = False
        threading.Thread(target=self._monitor, args=(self.proc,), name="simclip-setup-monitor",
                         daemon=True).start()
        logger.info("setup started (pid %d), progress in %s", self.proc.pid, self.state_path)

    def start(self):
        """POST /v1/setup: start a setup; the 202 body. ApiError 409 when one runs, 503 while
        the model loads."""
        with self._lock:
            if self.base is None:
                raise ApiError(503, "loading", "the model is loading; start setup once it is "
                               "ready", {"Retry-After": "2"})
            if self.is_running():
                raise ApiError(409, "setup_running", "a setup is already running; follow it "
                               "with GET /v1/setup or stop it with DELETE /v1/setup")
            state = {**idle_body(), "state": ACTIVE, "started": time.time()}
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                _write_json(self.state_path, state)
            except OSError as e:
                raise ApiError(503, "setup_storage_unavailable",
                               f"setup cannot write its folder {self.dir} ({e.strerror or e}): "
                               f"make it writable, or start the server with XDG_CACHE_HOME set "
                               f"to a writable folder") from None
            self._spawn()
            proc = self.proc
        self._wait_for_plan(proc)
        return self.status()

    def _wait_for_plan(self, proc, timeout_s=PLAN_WAIT_S):
        """Give the child a few seconds to write its plan (time, download and disk it needs)
        so that the 202 carries it; a slow start answers without it (GET /v1/setup has it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            state = self.read() or {}
            if state.get("plan") or state.get("state") != ACTIVE:
                return
            time.sleep(0.1)

    def resume(self):
        """After a restart: continue a setup that was running."""
        with self._lock:
            state = self.read()
            if not state or state.get("state") != ACTIVE or self.is_running():
                return
            logger.info("resuming the setup that was running (stage %s)", state.get("stage"))
            self._spawn()

    def cancel(self):
        """DELETE /v1/setup: stop the child at its next unit of work; the body once stopped.
        ApiError 409 when none runs."""
        with self._lock:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                raise ApiError(409, "setup_not_running", "no setup is running")
            self._cancelling = True
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        self._settle(proc)
        return self.status()

    def _monitor(self, proc):
        proc.wait()
        self._settle(proc)

    def _settle(self, proc):
        """Once the child exited: swap its head in (done), or record why it stopped."""
        with self._lock:
            if self.proc is not proc or self._closing:
                return
            self.proc = None
            state = self.read() or idle_body()
            if self._cancelling:
                if state.get("state") == ACTIVE:
                    _write_json(self.state_path, {**state, "state": "cancelled", "eta_s": None})
                return
            if state.get("state") != ACTIVE:
                return  # the child wrote failed or cancelled itself
            if proc.returncode == 0 and state.get("head"):
                self._finish(state)
                return
            _write_json(self.state_path, {**state, "state": "failed", "eta_s": None, "error": {
                "code": "setup_crashed",
                "message": f"the setup process exited with code {proc.returncode} during "
                           f"{state.get('stage') or 'its start'}; its log is "
                           f"{self.dir / LOG_FILE}. Start setup again to resume"}})

    def _finish(self, state):
        """Serve the validated head (hot swap), then say done."""
        from .model import get_served_model

        try:
            predictor = create_trained_predictor(self.base, state["head"])
            get_served_model(self.app).swap(predictor, state["head"])
        except (SimCLIPError, OSError, RuntimeError, KeyError, ValueError) as e:
            logger.error("the new head could not be served: %s", e)
            _write_json(self.state_path, {**state, "state": "failed", "eta_s": None, "error": {
                "code": "swap_failed", "message": f"the trained head could not be served: {e}"}})
            return
        _write_json(self.state_path, {**state, "state": "done", "eta_s": 0,
                                      "done": state.get("total") or 1})
        logger.info("setup done: serving %s", state["head"])

    def close(self):
        """Server shutdown: stop the child without marking it stopped (the next start resumes)."""
        with self._lock:
            self._closing = True
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def get_setup(app=None):
    """The app's SetupManager."""
    from flask import current_app

    return (app or current_app).extensions[SETUP_KEY]


def adopt_setup_head(app, predictor, options):
    """At load: bind setup to the loaded backbone, and serve a finished setup's head unless a
    --checkpoint was given. Returns (predictor to serve, its head file or None)."""
    manager = get_setup(app)
    manager.attach(predictor, options)
    if options.get("checkpoint"):
        return predictor, None
    state = manager.read() or {}
    head = state.get("head")
    if state.get("state") != "done" or not head:
        return predictor, None
    try:
        return create_trained_predictor(predictor, head), head
    except (SimCLIPError, OSError) as e:
        logger.warning("the head of the last setup (%s) cannot be served (%s); serving "
                       "zero-shot, run setup again", head, e)
        return predictor, None


def resume_setup(app):
    """At load, once serving: resume a setup that was running."""
    get_setup(app).resume()


def close_setup(app):
    """At shutdown: stop a running child (it resumes on the next start)."""
    manager = app.extensions.get(SETUP_KEY)
    if manager is not None:
        manager.close()


def init_app(app):
    """Create the app's SetupManager."""
    app.extensions[SETUP_KEY] = SetupManager(app)
