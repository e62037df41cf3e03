"""Text relevance for the sandbox's Recall and Knowledge Search: Okapi BM25, scores in 0..1.

Pure code, no I/O. Documents and queries are tokenised the same way: lowercase words and
numbers, stop words dropped, a light suffix stemmer so "shipping" meets "ship". A raw BM25
score is divided by the score of a reference document of average length holding every query
term twice (capped at 1), so about ``0.7`` means "holds every query term once", ``1.0`` "holds
every query term strongly" and ``0.0`` "shares no term with the query", whatever the corpus.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_STOP_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its
itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
hi hello hey please thanks thank ok okay yes
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())

# Longest suffix first; a stem keeps at least three letters.
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ies", "ied", "ers", "er", "ed", "es", "s")


def stem(word: str) -> str:
    """A small, deterministic suffix stripper (not Porter: enough to match word families).

    Two passes, then a final silent ``e`` goes, so "ordered", "orders" and "order" meet, as do
    "updates", "updated" and "update".
    """
    stemmed = _strip_suffix(_strip_suffix(word))
    if len(stemmed) > 3 and stemmed.endswith("e") and not stemmed.endswith("ee"):
        stemmed = stemmed[:-1]
    return stemmed


def _strip_suffix(word: str) -> str:
    if word.isdigit() or len(word) <= 3:
        return word
    for suffix in _SUFFIXES:
        if not word.endswith(suffix) or len(word) - len(suffix) < 3:
            continue
        base = word[: -len(suffix)]
        if suffix == "s" and word.endswith(("ss", "us", "is")):
            return word
        if suffix == "es" and not base.endswith(("s", "x", "z", "ch", "sh")):
            return word[:-1]  # takes -> take, but boxes -> box
        if suffix in ("ies", "ied"):
            return base + "y"
        if len(base) >= 4 and base[-1] == base[-2] and base[-1] not in "aeiousl":
            base = base[:-1]  # shipping -> shipp -> ship
        return base
    return word


def tokenize(text: str) -> list[str]:
    """Lowercase terms of ``text`` without stop words, stemmed."""
    terms = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)
        if "'" in word:
            word = word.split("'", 1)[0]
        if word and word not in _STOP_WORDS:
            terms.append(stem(word))
    return terms


_REFERENCE_TF = 2


@dataclass(frozen=True)
class Scored:
    """One document's position in the input and its normalised score."""

    index: int
    score: float


class BM25:
    """An Okapi BM25 index over a fixed list of texts.

    ``k1`` controls term-frequency saturation, ``b`` length normalisation (the usual 1.2/0.75).
    """

    def __init__(self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._docs = [Counter(tokenize(text)) for text in texts]
        self._lengths = [sum(doc.values()) for doc in self._docs]
        total = sum(self._lengths)
        self._avg_length = total / len(self._docs) if self._docs and total else 1.0
        frequencies: Counter[str] = Counter()
        for doc in self._docs:
            frequencies.update(doc.keys())
        count = len(self._docs)
        self._idf = {
            term: math.log(1.0 + (count - n + 0.5) / (n + 0.5)) for term, n in frequencies.items()
        }
        # A query term the corpus lacks weighs as if one document held it.
        self._unseen_idf = math.log(1.0 + (max(count, 1) - 1 + 0.5) / 1.5)

    def __len__(self) -> int:
        return len(self._docs)

    def scores(self, query: str) -> list[float]:
        """Every document's score for ``query``, in input order, each in 0..1."""
        terms = Counter(tokenize(query))
        if not terms:
            return [0.0] * len(self._docs)
        # A reference document: average length, each query term twice.
        reference_tf = _REFERENCE_TF * (self.k1 + 1) / (_REFERENCE_TF + self.k1)
        ceiling = sum(
            weight * self._idf.get(term, self._unseen_idf) * reference_tf
            for term, weight in terms.items()
        )
        results = []
        for doc, length in zip(self._docs, self._lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self._avg_length)
            raw = 0.0
            for term, weight in terms.items():
                tf = doc.get(term, 0)
                if tf:
                    raw += weight * self._idf[term] * tf * (self.k1 + 1) / (tf + norm)
            results.append(min(1.0, raw / ceiling) if ceiling > 0 else 0.0)
        return results

    def rank(self, query: str, *, threshold: float = 0.0, limit: int | None = None) -> list[Scored]:
        """Documents sharing a term with ``query`` and scoring at least ``threshold``, best first.

        Ties keep input order, so callers list newer documents first to break ties by recency.
        """
        scored = [
            Scored(index, round(score, 4))
            for index, score in enumerate(self.scores(query))
            if score > 0 and score >= threshold
        ]
        scored.sort(key=lambda item: (-item.score, item.index))
        return scored if limit is None else scored[:limit]
