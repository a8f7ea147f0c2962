"""The Ray engine's deduplication registry, apart so that its actor starts fast.

A Ray actor process imports the module its class lives in; this one imports nothing but the
standard library (not torch, open_clip or rapidocr, which `work.py` brings), so the registry is
up in about a second and the first read task's claim does not wait for a model library import.
"""

from __future__ import annotations

from collections import OrderedDict

DEDUP_MEMORY = 100_000  # pictures (sha256) remembered for duplicates, the oldest forgotten first


class DedupRegistry:
    """One per run (a Ray actor): the ids already met (those in --out first), which input
    claimed each sha256 first and the later ones, and what each source gave."""

    def __init__(self, done: set[str] | None = None) -> None:
        self.done = done or set()  # ids already in --out
        self.seen: set[str] = set()  # ids met in this run
        self.already_done = 0
        self.listed_twice = 0
        self.first: OrderedDict[str, None] = OrderedDict()  # the last DEDUP_MEMORY sha256
        self.copies: dict[str, list[str]] = {}  # sha256 -> ids of later inputs
        self.sources: list[dict] = []  # SourceStats.as_dict of each unit read

    def claim_ids(self, ids: list[str]) -> list[bool]:
        """For each id, True the first time it is met and it is not in --out (the local
        engine's `Ledger.is_new`)."""
        out = []
        for item_id in ids:
            if item_id in self.done:
                self.already_done += 1
                out.append(False)
            elif item_id in self.seen:
                self.listed_twice += 1
                out.append(False)
            else:
                self.seen.add(item_id)
                out.append(True)
        return out

    def claim(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """[(id, sha256)] -> for each, True when it is the first input with those bytes among
        the last DEDUP_MEMORY distinct pictures (as the local engine: a copy met after more
        is scored again, and memory does not grow with the corpus)."""
        out = []
        for item_id, sha256 in pairs:
            if sha256 in self.first:
                self.first.move_to_end(sha256)
                self.copies.setdefault(sha256, []).append(item_id)
                out.append(False)
            else:
                self.first[sha256] = None
                if len(self.first) > DEDUP_MEMORY:
                    self.first.popitem(last=False)
                out.append(True)
        return out

    def note_sources(self, counts: list[dict]) -> None:
        """A read task's counts, one `SourceStats.as_dict` per unit it read."""
        self.sources.extend(counts)

    def get_sources(self) -> tuple[list[dict], int, int]:
        """(each unit's counts, inputs already in --out, inputs listed twice)."""
        return self.sources, self.already_done, self.listed_twice

    def take_copies(self) -> dict[str, list[str]]:
        """sha256 -> the ids of the inputs that were not first, since the last call."""
        copies, self.copies = self.copies, {}
        return copies
