"""What a run read, source by source, and what it means for the exit status.

Every SOURCE gets a `SourceStats` (inputs listed, members or files skipped by reason, its own
error rows, why it gave nothing); the `Ledger` adds the inputs left out before scoring (already
in --out, or listed twice) and writes the summary's sources part. Exit status:

    0  every input of the run is scored (or was already in --out)
    1  some rows of this run are errors (inputs, or sources that could not be read)
    2  nothing could run: bad arguments, a refused --out, the model or OCR failed to load, or
       no input at all (every source empty or unreadable; the summary says why per source)
    130 / 143  interrupted (Ctrl-C) / terminated (SIGTERM): the rows written are kept
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from .sources import Item, SourceStats, Unit, expand_unit

EXIT_OK, EXIT_ERROR_ROWS, EXIT_NOTHING_RAN = 0, 1, 2
SHOWN_SOURCES = 20  # sources named in the summary (those with something to say), at most


class Ledger:
    """Per-source counts and the inputs left out before scoring (already done, listed twice).

    Args:
        done: the ids already in --out (resume).
    """

    def __init__(self, done: set[str] | None = None) -> None:
        self.done = done if done is not None else set()
        self.sources: dict[str, SourceStats] = {}
        self.already_done = 0  # inputs whose rows were in --out
        self.listed_twice = 0  # an id met again in this run: one input
        self._seen: set[str] = set()

    def stats_for(self, source: str) -> SourceStats:
        """The counts of one SOURCE argument."""
        return self.sources.setdefault(source, SourceStats(source))

    def is_new(self, item_id: str) -> bool:
        """True the first time an id not in --out is met; counts the others."""
        if item_id in self.done:
            self.already_done += 1
            return False
        if item_id in self._seen:
            self.listed_twice += 1
            return False
        self._seen.add(item_id)
        return True

    def items(self, units: Iterable[Unit]) -> Iterator[Item]:
        """The run's new inputs, streamed unit by unit (the local engine pulls them)."""
        for unit in units:
            for item in expand_unit(unit, self.stats_for(unit.source)):
                if self.is_new(item.id):
                    yield item

    def add(self, stats: dict[str, Any], already_done: int = 0, listed_twice: int = 0) -> None:
        """Merge counts made elsewhere (a Ray read task's, as `SourceStats.as_dict`)."""
        self.stats_for(stats["source"]).merge(SourceStats.from_dict(stats))
        self.already_done += already_done
        self.listed_twice += listed_twice

    @property
    def inputs(self) -> int:
        """Inputs listed by every source (scored, errors, already done, listed twice)."""
        return sum(s.inputs for s in self.sources.values())

    @property
    def source_errors(self) -> int:
        """Error rows of the sources' own (a source or part of one that could not be read)."""
        return sum(len(s.failures) for s in self.sources.values())

    def exit_code(self, error_rows: int) -> int:
        """The exit status of a run that wrote `error_rows` error rows (module docstring)."""
        if self.inputs == 0:
            return EXIT_NOTHING_RAN
        return EXIT_ERROR_ROWS if error_rows else EXIT_OK

    def empty_warning(self) -> str:
        """A line naming the sources that gave no input and why (an empty folder, a table of 0
        rows, a glob that matches nothing), for a run that had inputs from others; "" when
        every source gave some, or none did (the run's own 'no inputs' message says why)."""
        empty = [s for s in self.sources.values() if not s.inputs and not s.failures]
        if not empty or self.inputs == 0:
            return ""
        more = f"; ... {len(empty) - SHOWN_SOURCES} more" if len(empty) > SHOWN_SOURCES else ""
        return "sources that gave no input: " + "; ".join(
            f"{s.source}: {s.empty_reason or 'no input'}" for s in empty[:SHOWN_SOURCES]) + more

    def format(self) -> str:
        """The summary's sources part: counts by outcome, and the sources worth naming."""
        n = len(self.sources)
        failed = sum(1 for s in self.sources.values() if s.failures)
        empty = sum(1 for s in self.sources.values() if not s.inputs and not s.failures)
        skipped: Counter[str] = Counter()
        for s in self.sources.values():
            skipped.update(s.skipped)
        lines = [f"sources: {n} ({n - failed - empty} read, {failed} with unreadable parts, "
                 f"{empty} with no input); inputs: {self.inputs} listed, {self.already_done} "
                 f"already in --out, {self.listed_twice} listed twice, "
                 f"{sum(skipped.values())} files or members skipped"]
        if skipped:
            lines += ["", "| skipped (not inputs) | count |", "|---|---:|"]
            lines += [f"| {reason} | {count} |" for reason, count in skipped.most_common()]
        notable = [s for s in self.sources.values() if s.failures or not s.inputs]
        if notable:
            lines += ["", "| source | inputs | what happened |", "|---|---:|---|"]
            for s in notable[:SHOWN_SOURCES]:
                what = s.describe(failures=3)
                lines.append(f"| {s.source} | {s.inputs} | {what.replace('|', '/')} |")
            if len(notable) > SHOWN_SOURCES:
                lines.append(f"| ... {len(notable) - SHOWN_SOURCES} more | | |")
        if self.inputs == 0:
            lines += ["", "no inputs: " + "; ".join(
                f"{s.source}: {s.describe()}" for s in list(self.sources.values())[:SHOWN_SOURCES])]
        return "\n".join(lines)
