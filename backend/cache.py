"""The result cache: sha256 of the image bytes + the predictor identity -> the result.

An in-memory LRU in front of a SQLite file in the cache dir, so a restart keeps what was
scored. The identity (backbone, checkpoint digest, OCR engine) is part of every key, so a
different model never sees another model's results. A corrupted, unreadable or locked file is
detected, logged once, and the server goes on with the memory cache alone: the persistent store
is an optimisation, never a reason to fail a request.
"""

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path

from .config import DEFAULT_CONFIG

logger = logging.getLogger(__name__)

CACHE_FILE = "results.sqlite3"
RESULT_KEYS = {"mode", "scores", "warnings", "text"}  # what a cached result must hold


class ResultCache:
    """Thread-safe two-level cache of classification results for one predictor identity."""

    def __init__(self, identity, cache_dir=None, memory_size=DEFAULT_CONFIG["MEMORY_CACHE_SIZE"],
                 max_rows=200_000, lock_timeout_s=0.2):
        self.identity = identity
        self.memory_size = memory_size
        self.max_rows = max_rows
        self._memory = OrderedDict()
        self._lock = threading.Lock()
        self._db = None
        self._writes = 0
        self.path = None
        self.hits = 0
        self.misses = 0
        if cache_dir:
            self.path = Path(cache_dir) / CACHE_FILE
            self._open(lock_timeout_s)

    @property
    def is_persistent(self):
        """True while the SQLite store is in use."""
        return self._db is not None

    def _open(self, lock_timeout_s):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=lock_timeout_s, check_same_thread=False,
                                 isolation_level=None)
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                db.close()
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS results (identity TEXT NOT NULL, "
                       "sha256 TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL, "
                       "PRIMARY KEY (identity, sha256)) WITHOUT ROWID")
            self._db = db
        except (sqlite3.Error, OSError) as e:
            self._disable(e)

    def _disable(self, error):
        """Go on without the persistent store, saying so once."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        logger.warning("result cache %s is unusable (%s); going on with the memory cache only",
                       self.path, error)

    def get(self, sha256):
        """The cached result for these bytes, or None."""
        with self._lock:
            result = self._memory.get(sha256)
            if result is not None:
                self._memory.move_to_end(sha256)
                self.hits += 1
                return result
            result = self._read(sha256)
            if result is None:
                self.misses += 1
                return None
            self._remember(sha256, result)
            self.hits += 1
            return result

    def _read(self, sha256):
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT result FROM results WHERE identity = ? AND sha256 = ?",
                                   (self.identity, sha256)).fetchone()
        except sqlite3.Error as e:
            self._disable(e)
            return None
        if row is None:
            return None
        try:
            result = json.loads(row[0])
        except ValueError:
            return None
        return result if isinstance(result, dict) and set(result) >= RESULT_KEYS else None

    def _remember(self, sha256, result):
        self._memory[sha256] = result
        self._memory.move_to_end(sha256)
        while len(self._memory) > self.memory_size:
            self._memory.popitem(last=False)

    def put_many(self, items):
        """Store [(sha256, result)] in memory and, in one transaction, on disk."""
        with self._lock:
            for sha256, result in items:
                self._remember(sha256, result)
            if self._db is None or not items:
                return
            now = time.time()
            rows = [(self.identity, s, json.dumps(r), now) for s, r in items]
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                                         rows)
                self._writes += len(rows)
                if self._writes >= 1000:
                    self._writes = 0
                    self._prune()
            except sqlite3.Error as e:
                self._disable(e)

    def _prune(self):
        """Keep at most max_rows rows, dropping the oldest."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM results").fetchone()
        if count > self.max_rows:
            self._db.execute("DELETE FROM results WHERE created <= (SELECT created FROM results "
                             "ORDER BY created LIMIT 1 OFFSET ?)", (count - self.max_rows,))

    def stats(self):
        """Counters for /v1/health."""
        with self._lock:
            return {"memory_entries": len(self._memory), "persistent": self._db is not None,
                    "hits": self.hits, "misses": self.misses}

    def close(self):
        """Close the SQLite connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
