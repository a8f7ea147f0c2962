"""Helpers shared by the e2e conftest and tests (a plain module: `conftest` is not importable by name)."""

import json
import time
from pathlib import Path

import pytest


def wait_for(predicate, timeout_s, interval_s=0.2, message="condition"):
    """Poll `predicate` until truthy or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {message}")
        time.sleep(interval_s)


def write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True))
