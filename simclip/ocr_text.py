"""OCR text clean-up: what the engines of `simclip.ocr` do to the lines they read.

- `clean_text`: lines joined into one caption, empty lines and extra spaces dropped;
- `merge_passes`: the texts of several preprocessing passes of one picture merged (tesseract);
- `WordSplitter`: caption words the recognizer glued together split again (rapidocr).
"""

from __future__ import annotations

import gzip
import math
import re
import threading
from collections import Counter
from importlib.util import find_spec
from pathlib import Path


def clean_text(lines):
    """Join OCR lines into one caption string, dropping empty lines and extra spaces."""
    out = []
    for line in lines:
        line = " ".join(str(line).split())
        if line:
            out.append(line)
    return "\n".join(out)


def merge_passes(texts):
    """First pass as is, then the words of later passes that it lacks (bag of words)."""
    if not texts:
        return ""
    merged = [texts[0]]
    have = Counter(w.lower() for w in texts[0].split())
    for text in texts[1:]:
        extra = []
        for word in text.split():
            key = word.lower()
            if have[key] > 0:
                have[key] -= 1
            else:
                extra.append(word)
        if extra:
            merged.append(" ".join(extra))
        have = Counter(w.lower() for w in " ".join(merged).split())
    return clean_text(merged)


_CONTRACTION_TAILS = {"ll", "re", "ve", "s", "t", "d", "m"}  # from "we'll" etc., not words


class WordSplitter:
    """Splits caption words the recognizer glued together ('HAPPYBIRTHDAY' -> 'HAPPY BIRTHDAY').

    PP-OCR often drops the spaces of all-caps Impact captions. A run of capital letters that is
    not among the 100,000 most frequent English words (the unigram list shipped in the wordninja
    wheel) is split by dynamic programming, cost log(rank), only if every piece is frequent
    enough for its length: 1 letter 'a' or 'i', 2 letters top 1,000 (no contraction tails such
    as 'll'), 3 and 4 letters top 10,000, longer top 100,000. Runs under 5 letters are kept, so
    are names the pieces cannot cover ('LINDELL'), words with a lower-case letter ('Instagram',
    'WorkFromHome': the recognizer keeps the spaces of mixed-case text, and such words are names
    more often than glued words) and hashtags and handles ('#WUHANVIRUS', '@SCOTTADAMS').
    Thresholds chosen on the 400 HarMeme training memes of ../shared/data/harmeme-c-train-400,
    not on the validation set (docs/ocr.md).
    """

    def __init__(self, min_len=5, max_ranks=(1000, 10000, 10000), max_rank=100000,
                 upper_only=True, skip_tags=True):
        self.min_len = min_len
        self.max_ranks = max_ranks  # max rank of 2-letter, 3-letter, ... pieces
        self.max_rank = max_rank  # max rank of longer pieces, and of words kept whole
        self.upper_only = upper_only
        self.skip_tags = skip_tags
        self._rank = None
        self._lock = threading.Lock()

    @property
    def identity(self):
        """The settings the split depends on (part of the engine's identity)."""
        return (f"wordninja(min_len={self.min_len},ranks={'/'.join(map(str, self.max_ranks))},"
                f"max_rank={self.max_rank},upper_only={int(self.upper_only)},"
                f"skip_tags={int(self.skip_tags)})")

    @staticmethod
    def find_word_list():
        """Path of the word list in the wordninja install (beside its module), or None."""
        spec = find_spec("wordninja")
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / "wordninja" / "wordninja_words.txt.gz"
        return path if path.is_file() else None

    def _load(self):
        """word -> frequency rank, read once (about 0.1 s)."""
        with self._lock:
            if self._rank is None:
                words = gzip.decompress(self.find_word_list().read_bytes()).decode().split()
                self._cost_base = math.log(len(words))
                self._rank = {w: i for i, w in enumerate(words[:self.max_rank])
                              if w not in _CONTRACTION_TAILS}
        return self._rank

    def _is_piece(self, piece, rank):
        """Whether a dictionary word of this rank may be a piece of a split."""
        if len(piece) == 1:
            return piece in ("a", "i")
        if len(piece) - 2 < len(self.max_ranks):
            return rank < self.max_ranks[len(piece) - 2]
        return True

    def split_word(self, word):
        """The pieces of one letter run, or None to keep it whole."""
        rank = self._rank or self._load()
        low = word.lower()
        if len(low) < self.min_len or low in rank:
            return None
        n = len(low)
        best = [(0.0, 0)] + [(math.inf, 0)] * n  # (cost, start of last piece) per prefix
        for i in range(1, n + 1):
            for j in range(max(0, i - 24), i):
                r = rank.get(low[j:i])
                if r is None or best[j][0] == math.inf:
                    continue
                if not self._is_piece(low[j:i], r):
                    continue
                cost = best[j][0] + math.log((r + 1) * self._cost_base)
                if cost < best[i][0]:
                    best[i] = (cost, j)
        if best[n][0] == math.inf:
            return None
        pieces, i = [], n
        while i > 0:
            j = best[i][1]
            pieces.append(word[j:i])
            i = j
        return pieces[::-1] if len(pieces) > 1 else None

    def __call__(self, text):
        def repl(m):
            word = m.group(0)
            if self.upper_only and not word.isupper():
                return word
            if self.skip_tags and m.start() and text[m.start() - 1] in "#@":
                return word
            pieces = self.split_word(word)
            return " ".join(pieces) if pieces else word
        return re.sub(r"[A-Za-z]+", repl, text)
