"""like / rlike matching: RE2-subset syntax, the guard, agreement with ``re``, linear time."""

from __future__ import annotations

import random
import re
import time

import pytest

from signals_stream.definitions import like_to_regex
from signals_stream.interventions import PatternError, compile_like, compile_rlike
from signals_stream.patterns import MAX_SUBJECT_LENGTH


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a", "xay", True),  # unanchored search
        ("^a", "xa", False),
        ("a$", "ba", True),
        ("a$", "a\n", False),  # RE2: `$` is the end of the text only
        (r"\Aab\z", "ab", True),
        ("^$", "", True),
        ("", "anything", True),
        ("(?i)HeLLo", "say hello", True),
        ("(?i)[^a]", "A", False),  # folding applies before negation
        ("(?i)[a-c]+x", "ABCX", True),
        ("[^a]", "a", False),
        ("[]a]", "]", True),
        ("[a-]", "-", True),
        (r"[\d_]+$", "12_", True),
        (r"\D\W\S", "a- ", False),
        (r"\D\W\S", "a-b", True),
        (r"\d+", "ab12", True),
        (r"\x41\u00e9", "Aé", True),
        (r"\.", "a", False),
        ("x{2,3}", "axxb", True),
        ("^x{3}", "xxb", False),
        ("^x{2,}$", "xxxx", True),
        ("a{,2}", "a{,2}", True),  # not a repeat: literal, as in RE2
        ("(ab|cd)+e", "zzcdabe", True),
        ("(?:ab)*?c", "ababc", True),
        ("(?P<n>a)b", "ab", True),
        ("a.c", "a\nc", False),
        ("(?s)a.c", "a\nc", True),
        ("^(a*)*$", "aaaa", True),  # nested repeats are fine: no backtracking
        ("^(a|aa)+$", "a" * 40 + "b", False),
        ("(^a|b$)", "cb", True),
    ],
)
def test_rlike(pattern: str, text: str, expected: bool) -> None:
    assert compile_rlike(pattern)(text) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", "backreferences"),
        ("(?P<n>a)(?P=n)", "backreferences"),
        ("(?=a)", "lookaround"),
        ("(?<!a)b", "lookaround"),
        (r"\bword", "word boundaries"),
        ("(?m)^a", "only the inline flags i and s"),
        ("a(?i)b", "inline flags only at the start"),
        ("(?(1)a|b)", "unsupported group"),
        ("[[:alpha:]]", "POSIX classes"),
        ("a{1001}", "bad repeat count"),
        ("a{3,2}", "bad repeat count"),
        ("a**", "multiple repeat"),
        ("a*+", "multiple repeat"),
        ("*a", "nothing to repeat"),
        ("^*", "nothing to repeat"),
        ("(a", "missing ')'"),
        ("a)", "unbalanced ')'"),
        ("[a", "missing ']'"),
        ("[z-a]", "bad character range"),
        ("\\", "trailing backslash"),
        (r"\q", "unknown escape"),
        (r"\x4", "needs 2 hex digits"),
        ("a" * 513, "longer than 512"),
        ("(a{1000}){1000}", "pattern too large"),
    ],
)
def test_rlike_guard_rejects(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=re.escape(message)):
        compile_rlike(pattern)


def test_rlike_agrees_with_re_on_random_patterns() -> None:
    rnd = random.Random(20240315)
    atoms = ["a", "b", ".", "[ab]", "[^a]", "(a|b)", "(ab)", "a*", "b+", "a?", "(a|bb)*",
             "x{1,2}", "^", "$", r"\d", "(?:a|)", "[a-c]{2}"]  # fmt: skip
    checked = 0
    for _ in range(1500):
        pattern = "".join(rnd.choice(atoms) for _ in range(rnd.randint(1, 5)))
        try:
            expected_re = re.compile(pattern)
        except re.error:
            continue
        ours = compile_rlike(pattern)
        for _ in range(6):
            text = "".join(rnd.choice("ab1x\n") for _ in range(rnd.randint(0, 8)))
            if "$" in pattern and text.endswith("\n"):
                continue  # Python's `$` also matches before a final newline; RE2's does not
            assert ours(text) == (expected_re.search(text) is not None), (pattern, text)
            checked += 1
    assert checked > 5000


def test_like_agrees_with_the_attribute_criteria() -> None:
    rnd = random.Random(7)
    for _ in range(1500):
        pattern = "".join(rnd.choice(["a", "b", "%", "_", "\\%", "\\_", "\\\\", "\n", "\\", "."])
                          for _ in range(rnd.randint(0, 6)))  # fmt: skip
        ours, reference = compile_like(pattern), like_to_regex(pattern)
        for _ in range(6):
            text = "".join(rnd.choice("ab%_\\\n.") for _ in range(rnd.randint(0, 8)))
            assert ours(text) == (reference.fullmatch(text) is not None), (pattern, text)


@pytest.mark.parametrize(
    ("compile_pattern", "pattern", "text"),
    [
        (compile_rlike, ".*a.*a.*a.*b", "a" * MAX_SUBJECT_LENGTH),  # ~forever with `re`
        (compile_rlike, "^(a+)+$", "a" * 5000 + "!"),  # the classic exponential case
        (compile_rlike, "(x+x+)+y", "x" * 5000),
        (compile_like, "%a%a%a%a%b", "a" * MAX_SUBJECT_LENGTH),
    ],
)
def test_pathological_patterns_run_in_linear_time(compile_pattern, pattern: str, text: str) -> None:
    matcher = compile_pattern(pattern)
    started = time.perf_counter()
    assert matcher(text) is False
    assert time.perf_counter() - started < 2.0  # ~0.05 s here; generous for 2 shared cores


def test_subject_is_bounded() -> None:
    tail = compile_rlike("b$")
    assert tail("a" * (MAX_SUBJECT_LENGTH - 1) + "b")
    assert not tail("a" * MAX_SUBJECT_LENGTH + "b")  # matched on the first 65,536 characters


def test_patterns_compile_once_and_survive_cache_resets() -> None:
    assert compile_rlike("ab+c") is compile_rlike("ab+c")
    matcher = compile_rlike("[0-9]+x")
    for n in range(60_000):  # distinct characters: more transitions than the cache keeps
        assert matcher(chr(0x10000 + n) + f"{n}x")
    assert not matcher("x")
