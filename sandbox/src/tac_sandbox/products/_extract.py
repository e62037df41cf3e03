"""Deterministic, extractive conversation summaries and observations (no model involved).

The sandbox's stand-in for Conversation Intelligence's language operators: the same
conversation always gives the same summary, built from its most informative sentences.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tac_sandbox._ranking import tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_FACT = re.compile(
    r"\b("
    r"i(?:'d| would)? prefer|i (?:really )?(?:like|love|hate|want|need)|"
    r"i (?:don't|do not) (?:like|want)|i(?:'m| am) allergic|i(?:'m| am) (?:a|an|vegetarian|vegan)|"
    r"my (?:name|email|address|birthday|favorite|favourite|preferred)\b[\w ]* is|"
    r"call me|i live|i work|i usually|i always|i never|please (?:always|never|only)|"
    r"(?:don't|do not) (?:call|text|email|message) me|contact me"
    r")\b",
    re.IGNORECASE,
)
MAX_OBSERVATIONS = 10


@dataclass(frozen=True)
class Utterance:
    """One message: who said it (``CUSTOMER``, ``AI_AGENT``, …) and its text."""

    speaker: str
    text: str


def sentences(text: str) -> list[str]:
    parts = (part.strip() for part in _SENTENCE_END.split(text.strip()))
    return [part for part in parts if part]


def _is_customer(speaker: str) -> bool:
    return speaker.upper() in ("CUSTOMER", "UNKNOWN", "")


def summarize(utterances: Sequence[Utterance], channel: str | None = None) -> str | None:
    """A short extractive summary: the customer's two and the agent's one most salient sentences.

    A sentence's salience is how often its terms occur in the whole conversation, damped by its
    length; ties go to the earlier sentence. ``None`` when nothing was said.
    """
    said = [(u, s) for u in utterances for s in sentences(u.text)]
    if not said:
        return None
    frequencies = Counter(term for _, s in said for term in set(tokenize(s)))

    def salience(sentence: str) -> float:
        terms = set(tokenize(sentence))
        return sum(frequencies[t] for t in terms) / math.sqrt(len(terms)) if terms else 0.0

    def best(is_customer: bool, count: int) -> list[str]:
        candidates = [
            (index, s)
            for index, (u, s) in enumerate(said)
            if _is_customer(u.speaker) == is_customer
        ]
        chosen = sorted(candidates, key=lambda item: (-salience(item[1]), item[0]))[:count]
        return [s for _, s in sorted(chosen)]

    messages = len(utterances)
    medium = f"{channel.upper()} " if channel else ""
    parts = [f"{medium}conversation of {messages} message{'s' if messages != 1 else ''}."]
    customer = best(True, 2)
    agent = best(False, 1)
    if customer:
        parts.append("The customer said: " + " ".join(_closed(s) for s in customer))
    if agent:
        parts.append("The agent said: " + " ".join(_closed(s) for s in agent))
    return " ".join(parts)[:4096]


def observations(utterances: Sequence[Utterance]) -> list[str]:
    """The customer's sentences that state a preference or a fact about themselves."""
    found: list[str] = []
    for utterance in utterances:
        if not _is_customer(utterance.speaker):
            continue
        for sentence in sentences(utterance.text):
            if _FACT.search(sentence):
                text = f'Customer said: "{_closed(sentence)}"'
                if text not in found:
                    found.append(text[:4096])
    return found[:MAX_OBSERVATIONS]


def _closed(sentence: str) -> str:
    return sentence if sentence[-1:] in ".!?" else sentence + "."
