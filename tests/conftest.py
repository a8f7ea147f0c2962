"""Shared fixtures. Tests never touch the network: the Hugging Face hub is forced offline."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before open_clip/huggingface_hub are imported

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "harmeme-c-val"


@pytest.fixture(scope="session")
def harmeme_val_dir():
    """The 177 real Harm-C validation memes (../shared/data/harmeme-c-val)."""
    if not (SHARED_DATA / "val.jsonl").is_file():
        pytest.fail(f"real meme data missing at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_backbone():
    """The seeded random-weight tiny backbone (CPU)."""
    from simclip import load_backbone

    return load_backbone("simclip-tiny", "none", device="cpu")
