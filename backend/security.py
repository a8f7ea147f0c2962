"""Who may call the server: loopback Host, extension Origin, pairing token (THREATS.md T1-T5).

Every web page the user opens can send requests to 127.0.0.1. The checks run before routing,
in this order, and a refused request never reaches a view:

1. Host must be exactly 127.0.0.1, localhost or [::1] with our port (DNS rebinding, T1); an
   absolute-form request target (`POST http://host:port/path`) must name one of them too.
2. Origin, when present, must be an allowed extension origin, matched in full and case-
   sensitively; `null` and every web origin are refused (T2, T3). Fetch-Metadata cross-site/
   same-site too.
3. Preflight OPTIONS from an allowed origin is answered here (it carries no token).
4. X-Auth-Token must equal the paired token (hmac.compare_digest); a token in the query string
   is ignored, so it never lands in URLs or logs (T4).

flask-cors writes the CORS response headers (T5), matching the same anchored, case-sensitive
origin patterns as step 2. Its matching of plain strings is loose (`casefold` equality, and a
`re.match` prefix match for anything that looks like a regex), so it only ever gets compiled
patterns anchored at both ends, with every option passed explicitly so no CORS_* config key can
loosen it. This module stays the gate: its after_request runs last and removes every
Access-Control-* header from the answer to a request it refused or that matched no route.
"""

import base64
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, g, request
from flask_cors import CORS

from .errors import SECURITY_HEADERS, ApiError

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
TOKEN_HEADER = "X-Auth-Token"
TOKEN_BYTES = 32  # 256 bits -> 43 base64url characters
PUBLIC_ENDPOINTS = {"api.openapi"}  # readable without a token (still Host/Origin checked)
CORS_METHODS = ("GET", "POST", "DELETE")  # DELETE: cancel a setup
# what a preflight may ask to send
CORS_HEADERS = (TOKEN_HEADER, "Content-Type", "X-Exif-Orientation", "X-Display-Rules")
CORS_MAX_AGE_S = 600  # how long a browser may cache a preflight answer

# Extension origins as the browsers write them: Chrome ids are 32 letters a-p, Firefox ids are
# per-install UUIDs. Anchored with \A...\Z and compiled without IGNORECASE, so even a prefix
# match (`Pattern.match`, as flask-cors uses) matches only the whole origin, in lower case (T3).
EXTENSION_ORIGIN = re.compile(
    r"\A(?:chrome-extension://[a-p]{32}"
    r"|moz-extension://[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z"
)


def get_config_dir():
    """The user's config dir for simclip: $XDG_CONFIG_HOME/simclip (default ~/.config/simclip)."""
    base = os.environ.get("XDG_CONFIG_HOME") or (
        os.environ.get("APPDATA") if os.name == "nt" else None) or Path.home() / ".config"
    return Path(base) / "simclip"


def create_token():
    """32 random bytes, base64url without padding (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()


def is_valid_token(token):
    """True for a 43-character base64url token as `create_token` makes."""
    return re.fullmatch(r"[A-Za-z0-9_-]{43}", token or "") is not None


def get_or_create_token(config_dir=None):
    """Read the pairing token, creating it (mode 0600) on first start.

    Returns:
        (token, path of the token file)
    """
    config_dir = Path(config_dir) if config_dir else get_config_dir()
    path = config_dir / "token"
    config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if os.name != "nt" and stat.S_IMODE(path.stat().st_mode) & 0o077:
            logger.warning("token file %s was readable by others; setting mode 0600", path)
            path.chmod(0o600)
        token = path.read_text().strip()
        if not is_valid_token(token):
            raise RuntimeError(f"the token file {path} is malformed; delete it and restart "
                               "the server to create a new one (then pair the extension again)") from None
        return token, path
    token = create_token()
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    logger.info("created a new pairing token in %s", path)
    return token, path


def list_allowed_hosts(port, extra_hosts=()):
    """The exact Host header values accepted: loopback names with our port, lowercased."""
    return {f"{h}:{port}".lower() for h in (*LOOPBACK_HOSTS, *extra_hosts)}


def list_origin_patterns(allowed_origins=None):
    """The allowed origins as anchored, case-sensitive patterns: one per configured origin
    (escaped, so it matches only that exact string), else the extension-origin shapes."""
    if allowed_origins:
        return [re.compile(rf"\A{re.escape(origin)}\Z") for origin in sorted(allowed_origins)]
    return [EXTENSION_ORIGIN]


def is_origin_allowed(origin, allowed_origins=None):
    """Exact match against the configured origins, else any well-formed extension origin."""
    return any(p.match(origin) for p in list_origin_patterns(allowed_origins))


def get_target_authority(target):
    """The authority of an absolute-form request target (RFC 9112 3.2.2), lowercased, with its
    scheme: ("http", "127.0.0.1:8478") for "http://127.0.0.1:8478/v1/classify"; None for the
    origin-form ("/v1/classify") and the asterisk-form ("*") every browser sends."""
    if not target or target.startswith("/") or target == "*":
        return None
    parts = urlsplit(target)
    return parts.scheme.lower(), parts.netloc.lower()


def check_caller(cfg, host, origin=None, fetch_site=None, target=None):
    """Raise ApiError when the Host, an absolute-form target, the Origin or Fetch-Metadata
    refuse the request (steps 1-2 of the module docstring); `cfg` is the app's config.

    An absolute-form target names the request's host (RFC 9112 3.2.2): it must be an allowed
    loopback authority with our port and the http scheme, exactly as Host must, and the Host
    header is checked as well (a request passes only when both name this server).
    """
    allowed = list_allowed_hosts(cfg["PORT"], cfg["EXTRA_HOSTS"])
    absolute = get_target_authority(target)
    if (host or "").lower() not in allowed or (
            absolute is not None and (absolute[0] != "http" or absolute[1] not in allowed)):
        raise ApiError(403, "forbidden_host", "the Host header and the request target must be "
                       "a loopback name with the server's port (DNS rebinding protection)")
    if origin is not None and not is_origin_allowed(origin, cfg["ALLOWED_ORIGINS"]):
        raise ApiError(403, "forbidden_origin", "requests from web pages are not allowed")
    if (fetch_site or "").lower() in ("cross-site", "same-site"):
        raise ApiError(403, "forbidden_origin", "cross-site requests are not allowed")


def check_token(cfg, token):
    """Raise ApiError 401 unless `token` (the X-Auth-Token header) is the paired token."""
    if not token:
        raise ApiError(401, "missing_token", f"pair the extension: send the {TOKEN_HEADER} "
                       "header (simclip-server --print-token shows the token)")
    if not hmac.compare_digest(token.encode(), cfg["TOKEN"].encode()):
        raise ApiError(401, "invalid_token", "the token does not match; pair the extension again")


def _check_request():
    """before_request guard: Host and request target, Origin, Fetch-Metadata, preflight, token."""
    cfg = current_app.config
    g.cors_origin = None
    origin = request.headers.get("Origin")
    check_caller(cfg, request.environ.get("HTTP_HOST"), origin,
                 request.headers.get("Sec-Fetch-Site"), request.environ.get("REQUEST_URI"))
    if request.method == "OPTIONS":
        # flask-cors adds Allow-Origin, Allow-Methods and Max-Age; it can only echo the header
        # names a preflight asks for, in the caller's spelling, so the fixed list is set here.
        g.cors_origin = origin
        return current_app.response_class(status=204, headers={
            "Access-Control-Allow-Headers": ", ".join(CORS_HEADERS)})
    if request.endpoint not in PUBLIC_ENDPOINTS:
        check_token(cfg, request.headers.get(TOKEN_HEADER, ""))
    g.cors_origin = origin
    return None


def _add_headers(response):
    """after_request, after flask-cors's: nosniff, no-store, Vary: Origin, and CORS headers
    kept only for an allowed origin whose request passed `_check_request` and hit a route
    (with Retry-After exposed to it when the answer has one)."""
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    response.vary.add("Origin")
    origin = g.get("cors_origin")
    passed = origin and (request.url_rule is not None or request.method == "OPTIONS")
    if not passed or response.headers.get("Access-Control-Allow-Origin") != origin:
        for key in {k for k, _ in response.headers if k.lower().startswith("access-control-")}:
            del response.headers[key]
    elif "Retry-After" in response.headers:  # a 503's hint, readable by a CORS caller too
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    response.headers.pop("Server", None)
    return response


def init_cors(app):
    """flask-cors with exact origins (see the module docstring), every option explicit.

    allow_headers is empty because `_check_request` writes the preflight's fixed list itself.
    """
    CORS(app, origins=list_origin_patterns(app.config["ALLOWED_ORIGINS"]), resources=r"/*",
         methods=list(CORS_METHODS), allow_headers=[], expose_headers=None,
         max_age=CORS_MAX_AGE_S, supports_credentials=False, send_wildcard=False,
         always_send=False, vary_header=True, automatic_options=False,
         intercept_exceptions=False, allow_private_network=False)


def init_app(app):
    """Install the guard, flask-cors and the response headers; resolve the token."""
    if not app.config.get("TOKEN"):
        app.config["TOKEN"], _ = get_or_create_token(app.config.get("CONFIG_DIR"))
    app.before_request(_check_request)
    # Flask calls after_request functions in reverse order: _add_headers runs after flask-cors's.
    app.after_request(_add_headers)
    init_cors(app)
