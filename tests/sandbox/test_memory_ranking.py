"""BM25 relevance used by Recall and Knowledge Search: a fixture of documents and queries."""

from __future__ import annotations

import pytest

from tac_sandbox._ranking import BM25, stem, tokenize

pytestmark = pytest.mark.unit

DOCUMENTS = [
    "Customer prefers SMS updates over email.",  # 0
    "Customer reported a late delivery for order #4390 in December.",  # 1
    "Customer asked about a delayed order; agent issued a shipping refund.",  # 2
    "Customer is vegetarian and allergic to peanuts.",  # 3
    "Customer's preferred language is Spanish.",  # 4
    "Customer called about a refund for a broken blender, order #5521.",  # 5
    "Standard shipping takes 3-5 business days; expedited shipping takes 1-2 days.",  # 6
    "Customer lives in Lisbon and travels to Madrid for work.",  # 7
]

# (query, expected order of the documents that share a term with it)
FIXTURE = [
    ("how long does shipping take", [6, 2]),
    ("where is my order #4390", [1, 5, 2]),  # shorter document first among equals
    ("refund for the blender", [5, 2]),
    ("text messages or email", [0]),
    ("which language should I speak", [4]),
    ("food allergies peanut", [3]),
    ("Spanish", [4]),
    ("late delivery", [1]),
]


@pytest.mark.parametrize(("query", "expected"), FIXTURE)
def test_ranking_fixture(query: str, expected: list[int]) -> None:
    ranked = BM25(DOCUMENTS).rank(query)
    assert [item.index for item in ranked] == expected


def test_scores_are_normalised_and_zero_without_shared_terms() -> None:
    index = BM25(DOCUMENTS)
    scores = index.scores("late delivery for my order")
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert scores[3] == 0.0
    assert max(scores) == scores[1]
    assert index.scores("the and of") == [0.0] * len(DOCUMENTS)


def test_a_document_holding_every_query_term_scores_high() -> None:
    index = BM25(DOCUMENTS)
    full = index.scores("refund blender")[5]
    partial = index.scores("refund blender")[2]
    assert full >= 0.6
    assert partial < full


def test_threshold_and_limit() -> None:
    index = BM25(DOCUMENTS)
    everything = index.rank("order refund shipping")
    assert len(everything) >= 3
    assert [i.index for i in index.rank("order refund shipping", limit=2)] == [
        i.index for i in everything[:2]
    ]
    cut = everything[1].score
    assert all(i.score >= cut for i in index.rank("order refund shipping", threshold=cut))


def test_ties_keep_input_order() -> None:
    ranked = BM25(["tea time", "tea time", "coffee"]).rank("tea")
    assert [i.index for i in ranked] == [0, 1]


def test_a_query_term_missing_from_the_corpus_does_not_sink_the_match() -> None:
    index = BM25(["Standard shipping takes 3-5 business days."])
    assert index.scores("shipping time")[0] >= 0.3


def test_empty_corpus_and_query() -> None:
    assert BM25([]).rank("anything") == []
    assert BM25(["x y"]).rank("") == []


@pytest.mark.parametrize(
    ("words", "stemmed"),
    [
        (("shipping", "shipped", "ships", "ship"), "ship"),
        (("orders", "ordered", "order", "ordering"), "ord"),
        (("prefers", "preferred", "prefer"), "pref"),
        (("policies", "policy"), "policy"),
        (("refunds", "refunded", "refund"), "refund"),
        (("updates", "updated", "update", "updating"), "updat"),
        (("takes", "take"), "tak"),
        (("boxes", "box"), "box"),
        (("business",), "business"),
    ],
)
def test_word_families_meet(words: tuple[str, ...], stemmed: str) -> None:
    assert {stem(word) for word in words} == {stemmed}


def test_tokenize_drops_stop_words_and_keeps_numbers() -> None:
    assert tokenize("Where is my order #4521?") == ["ord", "4521"]
