"""The real data in ../shared/data (HarMeme memes and annotation files), for the tests that need it.

A clone of the project alone has no ../shared: those tests skip with the reason. CI sets
SIMCLIP_REQUIRE_SHARED_DATA=1, so there a missing folder fails instead of skipping silently.
"""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# CI sets this: there the real data must be present, and a missing folder fails instead of skipping.
REQUIRE_SHARED_DATA = os.environ.get("SIMCLIP_REQUIRE_SHARED_DATA") == "1"


def get_shared_data(name, marker):
    """../shared/data/<name> when its `marker` file exists; else skip (fail under CI) naming why."""
    folder = SHARED_DATA / name
    if not (folder / marker).is_file():
        reason = (f"real data {folder / marker} is absent: these tests need the shared HarMeme "
                  "files beside the project (a clone alone runs every other test)")
        if REQUIRE_SHARED_DATA:
            pytest.fail(reason + "; SIMCLIP_REQUIRE_SHARED_DATA=1 requires them")
        pytest.skip(reason)
    return folder
