"""Small file helpers shared by the checkpoint, backbone, dataset and server code."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def get_user_cache_dir() -> Path:
    """The user's cache dir for simclip: $XDG_CACHE_HOME/simclip (default ~/.cache/simclip).

    On Windows without XDG_CACHE_HOME, %LOCALAPPDATA%/simclip. The directory is not created.
    """
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if os.name == "nt" else None) or Path.home() / ".cache"
    return Path(base) / "simclip"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
