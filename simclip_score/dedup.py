"""The Ray engine's deduplication registry, apart so that its actor starts fast.

A Ray actor process imports the module its class lives in; this one imports nothing but the
standard library (not torch, open_clip or rapidocr, which `work.py` brings), so the registry is
up in about a second and the first read task's claim does not wait for a model library import.
"""

from __future__ import annotations


class DedupRegistry:
    """One per run (a Ray actor): which input claimed each sha256 first, and the later ones."""

    def __init__(self) -> None:
        self.first: set[str] = set()
        self.copies: dict[str, list[str]] = {}  # sha256 -> ids of later inputs

    def claim(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """[(id, sha256)] -> for each, True when it is the first input with those bytes."""
        out = []
        for item_id, sha256 in pairs:
            if sha256 in self.first:
                self.copies.setdefault(sha256, []).append(item_id)
                out.append(False)
            else:
                self.first.add(sha256)
                out.append(True)
        return out

    def get_copies(self) -> dict[str, list[str]]:
        """sha256 -> the ids of the inputs that were not first."""
        return self.copies
