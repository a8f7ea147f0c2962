"""Helpers of the `simclip score` tests: a corpus folder, reading rows back, the optional extra."""

import importlib
import os
import shutil

import pytest

from tiny import TINY  # noqa: F401  (the score tests import it from here)

# CI installs the 'scale' extra (ray, pyarrow): there a missing module fails instead of skipping.
REQUIRE_SCALE = bool(os.environ.get("SIMCLIP_REQUIRE_SCALE") or os.environ.get("CI"))  # .ci/run sets it


def require(module):
    """Import a module of the 'scale' extra, or skip naming it (fail under CI)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} is not installed (pip install -e '.[scale]')"
        if REQUIRE_SCALE:
            pytest.fail(reason + "; CI installs the scale extra")
        pytest.skip(reason)


def make_corpus(folder, memes_dir, n):
    """`n` real memes, one of them twice (dup.png), plus two broken files; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    memes = sorted(p for p in memes_dir.iterdir() if p.suffix == ".png")[:n]
    for p in memes:
        shutil.copy(p, folder / p.name)
    shutil.copy(memes[0], folder / "dup.png")
    (folder / "cut.png").write_bytes(memes[1].read_bytes()[:300])  # corrupt_image
    (folder / "notes.jpg").write_bytes(b"these are not pixels" * 10)  # unsupported_format
    return folder


def by_path(rows):
    """Rows keyed by their path (the input's id)."""
    return {r["path"]: r for r in rows}


def assert_same_rows(a, b, tol=1e-4):
    """Same inputs, same results: scores within `tol`, every other column equal."""
    a, b = by_path(a), by_path(b)
    assert a.keys() == b.keys()
    for path, ra in a.items():
        rb = b[path]
        for key in ra:
            if key == "scores" and ra[key] is not None:
                assert ra[key].keys() == rb[key].keys(), path
                for c, s in ra[key].items():
                    assert abs(s - rb[key][c]) <= tol, (path, c, s, rb[key][c])
            else:
                assert ra[key] == rb[key], (path, key, ra[key], rb[key])
