"""Bearer-token checks (the view decorator is exercised against real workers)."""

from __future__ import annotations

import pytest

from signals_stream.serving.auth import bearer_token, check_token

TOKEN = b"s3cret-token"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc ", "abc"),
        ("Bearer   abc", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_parses_the_header(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_the_right_token_passes() -> None:
    assert check_token("Bearer s3cret-token", TOKEN) is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing bearer token"),
        ("Basic s3cret-token", "missing bearer token"),
        ("Bearer s3cret-tokeN", "invalid bearer token"),
        ("Bearer s3cret-token-and-more", "invalid bearer token"),
    ],
)
def test_a_wrong_or_missing_token_is_refused(header: str | None, reason: str) -> None:
    refused = check_token(header, TOKEN)
    assert refused is not None and refused.startswith(reason)


def test_without_a_configured_token_everything_is_refused() -> None:
    refused = check_token("Bearer anything", None)
    assert refused is not None and "SIGNALS_API_TOKEN" in refused
