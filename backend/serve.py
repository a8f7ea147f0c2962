"""`simclip-server`: serve the API with waitress on loopback at once, load and warm the model
in the background (/v1/health says how far it is).

    simclip-server                          # zero-shot ViT-L-14-336, 127.0.0.1:8478
    simclip-server --checkpoint head.safetensors --device cuda
    simclip-server --print-token            # the pairing token for the extension
"""

import argparse
import ipaddress
import logging
import os
import socket
import sys
import threading

from simclip import OCR_ENGINES, ClassifierOptions, SimCLIPError

from . import create_app
from .config import BODY_MAX, DEFAULT_CONFIG, HEADER_MAX
from .security import get_or_create_token
from .transport import create_guarded_server

logger = logging.getLogger("simclip.server")

# waitress settings (THREATS.md T6-T8). waitress refuses bodies with Content-Length >= its limit.
# connection_limit is kept by closing the stalest idle or reading connection for a new one, and
# request deadlines (HEADER_TIMEOUT_S, REQUEST_TIMEOUT_S) close slow ones (backend/transport.py).
WAITRESS_SETTINGS = {
    "max_request_body_size": BODY_MAX + 1,
    "max_request_header_size": HEADER_MAX,
    "channel_timeout": 30,
    "cleanup_interval": 10,
    "connection_limit": 100,
    "channel_request_lookahead": 0,
    "expose_tracebacks": False,
    "ident": "",
    "clear_untrusted_proxy_headers": True,
}


def parse_args(argv):
    """Command-line options of simclip-server."""
    p = argparse.ArgumentParser(prog="simclip-server", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="trained SimCLIP head (.safetensors); "
                   "without it the server runs in zero-shot mode")
    ClassifierOptions.add_arguments(p, ocr_choices=OCR_ENGINES)
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback only unless "
                   "--allow-non-loopback)")
    p.add_argument("--allow-non-loopback", action="store_true",
                   help="allow a non-loopback --host (exposes the server to the network)")
    p.add_argument("--port", type=int, default=DEFAULT_CONFIG["PORT"])
    p.add_argument("--cache-dir", help="result cache dir (default $XDG_CACHE_HOME/simclip)")
    p.add_argument("--no-cache", action="store_true", help="keep results in memory only")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="exact extension origin to allow, e.g. chrome-extension://<id> "
                   "(repeatable; default: any extension origin, the token still required)")
    p.add_argument("--config-dir", help="where the pairing token lives "
                   "(default $XDG_CONFIG_HOME/simclip)")
    p.add_argument("--print-token", action="store_true",
                   help="print the pairing token (creating it if needed) and exit")
    service = p.add_mutually_exclusive_group()  # backend/service.py; never on by default
    service.add_argument("--install-service", action="store_true",
                         help="start simclip-server at every login with the other options given "
                         "here (systemd user unit, LaunchAgent, Startup folder), start it now, exit")
    service.add_argument("--uninstall-service", action="store_true",
                         help="stop the login service and remove it, then exit")
    p.add_argument("--threads", type=int, default=DEFAULT_CONFIG["THREADS"],
                   help="request threads for classify requests (health and the rest have "
                   f"{DEFAULT_CONFIG['CONTROL_THREADS']} of their own)")
    p.add_argument("--max-admitted", type=_positive_int, default=DEFAULT_CONFIG["MAX_ADMITTED"],
                   help="classify requests waiting or running at once; more get 503 busy "
                   "with Retry-After at once")
    p.add_argument("--max-batch", type=int, default=DEFAULT_CONFIG["MAX_BATCH"],
                   help="images per encoder batch")
    p.add_argument("--max-wait-ms", type=float, default=DEFAULT_CONFIG["MAX_WAIT_MS"],
                   help="how long a batch waits to fill after its first image")
    p.add_argument("--max-queue", type=int, default=DEFAULT_CONFIG["MAX_QUEUE"],
                   help="images in flight before new requests get 503")
    p.add_argument("--ocr-workers", type=int, default=DEFAULT_CONFIG["OCR_WORKERS"],
                   help="decode + OCR worker processes")
    p.add_argument("--decode-budget", type=_positive_float, default=DEFAULT_CONFIG["DECODE_BUDGET_S"],
                   metavar="SECONDS", help="wall-clock seconds to decode one picture in its worker; "
                   "over it the picture gets 422 decode_timeout (default %(default)s)")
    p.add_argument("--ocr-budget", type=_positive_float, default=DEFAULT_CONFIG["OCR_BUDGET_S"],
                   metavar="SECONDS", help="seconds of OCR per picture; over it the picture is judged "
                   "on its image with text_truncated (default %(default)s)")
    return p.parse_args(argv)


def _positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _positive_float(text):
    """argparse type: a number of seconds > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def is_loopback(host):
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host="127.0.0.1", port=DEFAULT_CONFIG["PORT"]):
    """Bind the listening socket first, so a busy port fails before the model loads."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":  # a restart must not wait for TIME_WAIT; never shares a live port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    return sock


def create_server(app, host="127.0.0.1", port=DEFAULT_CONFIG["PORT"], threads=None, sock=None):
    """A waitress server for `app` with our limits, admission and thread pools
    (`backend.transport`); port 0 picks a free one (tests).

    `threads` (the classify request threads) defaults to the app's THREADS; the other requests
    get the app's CONTROL_THREADS.
    """
    if sock is None:
        sock = bind_socket(host, port)
    if threads is None:
        threads = app.config["THREADS"]
    server = create_guarded_server(app, sock, threads, app.config["CONTROL_THREADS"],
                                   **WAITRESS_SETTINGS)
    app.config["PORT"] = int(server.effective_port)
    return server


class ServerThread:
    """`app` served by waitress with our limits and pools (`create_server`) in a daemon thread:
    for tests, benchmarks and programs that embed the server. Port 0 picks a free one; `url` is
    the base URL once built. `close()` stops the loop and closes every socket it opened.
    """

    def __init__(self, app, host="127.0.0.1", port=0, threads=None):
        self.app = app
        self.server = create_server(app, host, port, threads=threads)
        self.port = int(self.server.effective_port)
        self.url = f"http://{host}:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        """Serve in the thread; returns self."""
        self._thread.start()
        return self

    def _serve(self):
        """waitress's loop in short steps, so the same thread can close every socket at the end."""
        from waitress import wasyncore

        while not self._stop.is_set():
            wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.close()
        for channel in list(self.server._map.values()):
            channel.close()

    def close(self):
        """Stop serving (waits up to 5 s for the loop) and stop the request threads."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.server.task_dispatcher.shutdown()


def main(argv=None):
    """Run the server until interrupted; returns the exit status."""
    args = parse_args(argv)
    if args.install_service or args.uninstall_service:
        from .service import main as service_main

        return service_main(args, sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.print_token:
        token, path = get_or_create_token(args.config_dir)
        print(token)
        print(f"(stored in {path}; paste it into the extension's options page)", file=sys.stderr)
        return 0
    from .model import close_app

    extra_hosts = ()
    if not is_loopback(args.host):
        if not args.allow_non_loopback:
            print(f"simclip-server: refusing to bind {args.host}: not a loopback address "
                  "(pass --allow-non-loopback to expose the server to your network)",
                  file=sys.stderr)
            return 2
        logger.warning("binding %s: the server is reachable from the network; anyone who "
                       "has the token can use it", args.host)
        extra_hosts = (args.host.lower(),)
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        print(f"simclip-server: --checkpoint {args.checkpoint}: no such file", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as e:
        print(f"simclip-server: cannot listen on {args.host}:{args.port}: {e} (is another "
              "simclip-server running? pick another --port)", file=sys.stderr)
        return 2
    try:
        token, token_path = get_or_create_token(args.config_dir)
    except (SimCLIPError, OSError) as e:
        sock.close()
        print(f"simclip-server: {e}", file=sys.stderr)
        return 2
    # The app answers at once (/v1/health: state "loading"); the model loads in a thread, and a
    # load that fails leaves the server up with state "failed" and the error, for the extension.
    options = {"checkpoint": args.checkpoint,
               **ClassifierOptions.from_args(args).classifier_kwargs()}
    app = create_app({
        "CLASSIFIER": None, "CLASSIFIER_OPTIONS": options, "LOAD_IN_BACKGROUND": True,
        "TOKEN": token, "PORT": args.port, "EXTRA_HOSTS": extra_hosts,
        "ALLOWED_ORIGINS": set(args.allow_origin) or None,
        "CACHE_DIR": "" if args.no_cache else args.cache_dir,
        "MAX_BATCH": args.max_batch, "MAX_WAIT_MS": args.max_wait_ms,
        "MAX_QUEUE": args.max_queue, "OCR_WORKERS": args.ocr_workers, "THREADS": args.threads,
        "MAX_ADMITTED": args.max_admitted, "DECODE_BUDGET_S": args.decode_budget,
        "OCR_BUDGET_S": args.ocr_budget})
    server = create_server(app, sock=sock)
    logger.info("listening on http://%s:%d (token in %s); loading the model", args.host,
                app.config["PORT"], token_path)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        close_app(app)
    return 0

if __name__ == "__main__":
    sys.exit(main())
