"""HTTP API v1, setup: GET /v1/setup (progress), POST (start), DELETE (cancel).

The contract (state, stage, stages, done, total, unit, eta_s, error, plan, summary) is in
docs/setup.md; the work is `backend.setup.SetupManager`'s.
"""

from flask import Blueprint, jsonify

from .setup import get_setup

bp = Blueprint("setup", __name__, url_prefix="/v1")


@bp.get("/setup")
def setup_status():
    """Where the setup stands: stage, progress, time left, and at the end what it gave."""
    return jsonify(get_setup().status())


@bp.post("/setup")
def setup_start():
    """Start the setup (202); 409 `setup_running` when one runs."""
    return jsonify(get_setup().start()), 202


@bp.delete("/setup")
def setup_cancel():
    """Cancel the running setup; answers once it stopped. 409 `setup_not_running` if none."""
    return jsonify(get_setup().cancel())
