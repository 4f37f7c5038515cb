"""Mutated enriched lines for the bad-input tests, each with the outcome expected of it.

The base lines are real enriched TSV from ``shared/data`` (the files its README lists as valid).
Each mutation knows what it did, and the expected outcome is worked out from that with a few
plain rules, not by the parser: a strict UTF-8 check first, then the number of tab-separated
fields, then what the mutation targeted (a free-text field, a JSON field). When the rules cannot
tell (a bit flipped inside a typed field may or may not break it), the expectation is
:data:`ANY`: good, or a dead letter with one of :data:`REASON_KINDS`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from signals_stream.events.dead_letters import original_bytes
from tests.datafiles import read_lines

__all__ = [
    "ANY",
    "GOOD",
    "REASON_KINDS",
    "Mutant",
    "base_lines",
    "mutants",
]

GOOD = "good"
ANY = "any"
# Every reason kind the parser documents (signals_stream/events/parse.py).
REASON_KINDS = frozenset(
    {
        "NotUtf8",
        "NotTSV",
        "FieldNumberMismatch",
        "MissingEventId",
        "MissingCollectorTstamp",
        "InvalidValue",
        "InvalidTimestamp",
        "InvalidJson",
        "InvalidSchema",
    }
)
FIELDS = 131

_HEADER = read_lines("kafka-live-viewer-profiles/header.tsv")[0].split(b"\t")
assert len(_HEADER) == FIELDS
_INDEX = {name.decode(): i for i, name in enumerate(_HEADER)}
CONTEXTS = _INDEX["contexts"]
# Free-text atomic fields: nothing about their content is validated.
_FREE_TEXT = (_INDEX["page_url"], _INDEX["page_title"], _INDEX["useragent"])
_INVALID_UTF8 = (b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80")
# What the README says is valid: every line of these files (and the 131-field widerow lines).
_VALID_FILES = (
    "kafka-live-viewer-profiles/micro.1.tsv",
    "snowplow-rdb-loader/input-events-custom-contexts.tsv",
    "snowplow-rdb-loader/input-events-custom-unstruct.tsv",
)


@dataclass(frozen=True, slots=True)
class Mutant:
    """One mutated line: what was done, the bytes, and the expected outcome (:data:`GOOD`,
    :data:`ANY`, or the exact dead-letter reason)."""

    kind: str
    value: bytes
    expected: str


def base_lines() -> list[bytes]:
    lines = [line for name in _VALID_FILES for line in read_lines(name)]
    widerow = read_lines("snowplow-rdb-loader/widerow-json.input-events.tsv")
    lines += [line for line in widerow if line.count(b"\t") == FIELDS - 1]
    return lines


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def classify_framing(value: bytes) -> str | None:
    """The outcome decided before any field is read: bad UTF-8, no tab, wrong field count;
    None when the line has 131 fields of valid UTF-8."""
    if not _utf8(value):
        return "NotUtf8"
    fields = value.count(b"\t") + 1
    if fields == 1:
        return "NotTSV"
    if fields != FIELDS:
        return f"FieldNumberMismatch({fields})"
    return None


def _boundaries(line: bytes, rng: random.Random) -> int:
    """A position that does not split a UTF-8 character."""
    while True:
        at = rng.randrange(len(line) + 1)
        if at == len(line) or line[at] & 0xC0 != 0x80:
            return at


def _truncated(line: bytes, rng: random.Random) -> Mutant:
    value = line[: rng.randrange(len(line))]
    # A cut inside the last field leaves 131 fields: any outcome (it may be a JSON field).
    return Mutant("truncated", value, classify_framing(value) or ANY)


def _bit_flipped(line: bytes, rng: random.Random) -> Mutant:
    value = bytearray(line)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(value))
        value[at] ^= 1 << rng.randrange(8)
    data = bytes(value)
    expected = classify_framing(data) or ANY
    if data[:1] != line[:1]:
        expected = ANY  # a new first byte may make it look like JSON
    return Mutant("bit_flipped", data, expected)


def _text_bit_flipped(line: bytes, rng: random.Random) -> Mutant:
    """A bit flipped in an ASCII byte of a free-text field: high bit -> invalid UTF-8 (an
    ASCII byte is never followed by a continuation byte), a tab -> 132 fields, else good."""
    fields = line.split(b"\t")
    candidates = [i for i in _FREE_TEXT if any(b < 0x80 for b in fields[i])]
    if not candidates:
        return _invalid_utf8(line, rng)
    index = rng.choice(candidates)
    field = bytearray(fields[index])
    at = rng.choice([i for i, b in enumerate(field) if b < 0x80])
    field[at] ^= 1 << rng.randrange(8)
    fields[index] = bytes(field)
    value = b"\t".join(fields)
    return Mutant("text_bit_flipped", value, classify_framing(value) or GOOD)


def _field_count(line: bytes, rng: random.Random) -> Mutant:
    fields = line.split(b"\t")
    if rng.random() < 0.5:
        for _ in range(rng.randint(1, 5)):  # merge neighbours: fewer fields
            at = rng.randrange(len(fields) - 1)
            fields[at : at + 2] = [fields[at] + fields[at + 1]]
        value = b"\t".join(fields)
    else:
        value = line
        for _ in range(rng.randint(1, 5)):  # split somewhere: more fields
            at = _boundaries(value, rng)
            value = value[:at] + b"\t" + value[at:]
    return Mutant("field_count", value, classify_framing(value) or ANY)


def _invalid_utf8(line: bytes, rng: random.Random) -> Mutant:
    at = _boundaries(line, rng)
    value = line[:at] + rng.choice(_INVALID_UTF8) + line[at:]
    return Mutant("invalid_utf8", value, "NotUtf8")


def _oversize(line: bytes, rng: random.Random) -> Mutant:
    """Bigger than a Kafka message: a good event with a long URL, or bad ones whose dead
    letter cannot hold the original (plain text, bytes that need base64, control characters
    that JSON escapes six-fold)."""
    size = rng.randint(1_100_000, 2_500_000)
    fields = line.split(b"\t")
    choice = rng.randrange(4)
    if choice == 0:
        fields[_FREE_TEXT[0]] = b"https://example.com/?" + b"q" * size
        return Mutant("oversize_good", b"\t".join(fields), GOOD)
    if choice == 1:
        value = line + b"\tx" * (size // 2)
        return Mutant("oversize_fields", value, classify_framing(value) or ANY)
    if choice == 2:
        value = b"\xff" + rng.randbytes(size)
        return Mutant("oversize_binary", value, "NotUtf8")
    fields[_FREE_TEXT[1]] = b"\x01" * (size // 4)
    value = b"\t".join([*fields, b"extra"])
    return Mutant("oversize_escaped", value, f"FieldNumberMismatch({FIELDS + 1})")


def _huge_contexts(line: bytes, rng: random.Random) -> Mutant:
    fields = line.split(b"\t")
    entity = {
        "schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
        "data": {"id": "0" * 36},
    }
    wrapper = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
        "data": [entity] * rng.randint(500, 4_000),
    }
    big = orjson.dumps(wrapper)
    choice = rng.randrange(4)
    if choice == 0:
        fields[CONTEXTS] = big  # valid, only large
        return Mutant("huge_contexts", b"\t".join(fields), GOOD)
    if choice == 1:
        fields[CONTEXTS] = big[: rng.randrange(1, len(big) - 1)]  # cut: not JSON any more
        return Mutant("huge_contexts_cut", b"\t".join(fields), "InvalidJson(contexts)")
    if choice == 2:
        depth = rng.randint(250, 5_000)
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        entity_text = b'{"schema":"iglu:com.acme/deep/jsonschema/1-0-0","data":' + nested + b"}"
        fields[CONTEXTS] = wrapper_text(entity_text)
        return Mutant("deep_contexts", b"\t".join(fields), "InvalidJson(contexts)")
    fields[CONTEXTS] = wrapper_text(b'{"schema":"iglu:com.acme/x/jsonschema/1-0-0","data":[1,2]}')
    return Mutant("contexts_not_object", b"\t".join(fields), "InvalidJson(contexts)")


def wrapper_text(entity: bytes) -> bytes:
    return b'{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1","data":[' + (
        entity + b"]}"
    )


def _unchanged(line: bytes, rng: random.Random) -> Mutant:
    return Mutant("unchanged", line, GOOD)


Mutation = Callable[[bytes, random.Random], Mutant]
# (mutation, weight): cheap ones often, the megabyte ones rarely.
MIX: tuple[tuple[Mutation, float], ...] = (
    (_unchanged, 20),
    (_truncated, 20),
    (_bit_flipped, 15),
    (_text_bit_flipped, 10),
    (_field_count, 15),
    (_invalid_utf8, 15),
    (_huge_contexts, 0.3),
    (_oversize, 0.02),
)
# Only mutations whose every outcome the rules decide (for exact counts on the real broker).
DETERMINED: tuple[tuple[Mutation, float], ...] = (
    (_unchanged, 25),
    (_text_bit_flipped, 20),
    (_field_count, 20),
    (_invalid_utf8, 20),
    (_huge_contexts, 0.5),
    (_oversize, 0.05),
)


def mutants(
    count: int, seed: int, mix: tuple[tuple[Mutation, float], ...] = MIX
) -> Iterator[Mutant]:
    """``count`` mutants of the real lines, reproducible from ``seed``."""
    rng = random.Random(seed)
    lines = base_lines()
    functions = [function for function, _ in mix]
    weights = [weight for _, weight in mix]
    chosen = rng.choices(functions, weights, k=count)
    for function in chosen:
        yield function(rng.choice(lines), rng)


def check_letter(letter: dict[str, object], raw: bytes, expected: str) -> None:
    """A dead letter keeps its reason, the original size, and the original bytes (whole, or a
    prefix flagged ``truncated``)."""
    reason = str(letter["reason"])
    if expected == ANY:
        assert reason.split("(", 1)[0] in REASON_KINDS, reason
    else:
        assert reason == expected, (reason, expected)
    assert letter["raw_size"] == len(raw)
    kept = original_bytes(letter)
    if letter["truncated"]:
        assert len(kept) < len(raw) and raw.startswith(kept)
        assert len(kept) > 0  # the prefix is worth keeping: a letter is ~0.9 MB
    else:
        assert kept == raw
