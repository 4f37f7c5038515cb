from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals_stream.definitions.criteria import like_to_regex
from signals_stream.patterns.like import like_predicate

ALPHABET = "ab/%"


@settings(max_examples=400, deadline=None)
@given(pattern=st.text(alphabet=ALPHABET, max_size=8), text=st.text(alphabet="ab/", max_size=12))
def test_fast_like_agrees_with_the_regex_translation(pattern: str, text: str) -> None:
    assert like_predicate(pattern)(text) == (like_to_regex(pattern).fullmatch(text) is not None)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("%/product%", "https://shop.example.com/product/1", True),
        ("%/product%", "https://shop.example.com/cart", False),
        ("https://%", "https://x", True),
        ("%.pdf", "a.pdf", True),
        ("a%a", "a", False),  # the two literals may not overlap
        ("a_c", "abc", True),  # '_' takes the automaton
        ("", "", True),
    ],
)
def test_fast_like_examples(pattern: str, text: str, expected: bool) -> None:
    assert like_predicate(pattern)(text) is expected


def test_pathological_like_patterns_stay_linear() -> None:
    text = "a" * 50_000
    for pattern in ("%a%a%a%a%b", "%a_a%a_a%b"):
        assert like_predicate(pattern)(text) is False
