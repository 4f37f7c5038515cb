"""Pattern syntax for ``rlike`` (an RE2 / Go ``regexp`` subset) and SQL ``LIKE``, parsed to a tree.

``rlike`` accepts what RE2 accepts, within this subset (Signals' stream engine probably runs Go
regexps; the SDK mentions Bloblang, which is Go; an inference):

- literals and escaped punctuation; ``.``; classes ``[a-z]`` and ``[^…]``;
- ``\\d \\w \\s`` and their negations, ASCII only as in RE2; ``\\n \\t \\r \\f \\v
  \\xhh \\uhhhh``;
- groups ``(…)``, ``(?:…)``, ``(?P<n>…)``; alternation ``|``;
- ``* + ? {n} {n,} {n,m}``, lazy forms included (only match or no match matters);
- anchors ``^ $ \\A \\z``, where ``$`` is the end of the text only, as in RE2;
- the leading flags ``(?i)`` and ``(?s)``.

Rejected with :class:`PatternError`: backreferences, lookaround, ``\\b``, conditionals, POSIX
classes, other flags, repeat counts above :data:`MAX_REPEAT`, and patterns longer than
:data:`MAX_PATTERN_LENGTH`.

Tree nodes are tuples: ``("set", CharSet)``, ``("cat", nodes)``, ``("alt", nodes)``,
``("bol",)``, ``("eol",)`` and ``("rep", node, lo, hi)`` (``hi`` None: unbounded).
"""

from __future__ import annotations

import bisect
import re
from typing import Literal, TypeAlias

from signals_stream.errors import DefinitionError

__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_REPEAT",
    "AnchorNode",
    "CharSet",
    "Node",
    "RepNode",
    "SeqNode",
    "SetNode",
    "PatternError",
    "parse_like",
    "parse_rlike",
]

MAX_PATTERN_LENGTH = 512
MAX_REPEAT = 1000  # RE2's limit for {n,m}

_MAX_CHAR = 0x10FFFF
_Ranges: TypeAlias = tuple[tuple[int, int], ...]
# RE2's ASCII classes: \d [0-9], \w [0-9A-Za-z_], \s [\t\n\f\r ].
_SHORTHAND: dict[str, _Ranges] = {
    "d": ((48, 57),),
    "w": ((48, 57), (65, 90), (95, 95), (97, 122)),
    "s": ((9, 10), (12, 13), (32, 32)),
}
_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_QUANT = re.compile(r"\{(\d+)(,(\d*))?\}")
_LEADING_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")


class PatternError(DefinitionError, ValueError):
    """An unsupported or oversized pattern: a definition error (422), and a ``ValueError`` so
    that pydantic reports it raised in a validator."""


def _complement(ranges: _Ranges) -> _Ranges:
    out, low = [], 0
    for lo, hi in sorted(ranges):
        if lo > low:
            out.append((low, lo - 1))
        low = max(low, hi + 1)
    if low <= _MAX_CHAR:
        out.append((low, _MAX_CHAR))
    return tuple(out)


class CharSet:
    """A set of characters: sorted ranges, optionally negated and case-insensitive."""

    __slots__ = ("fold", "his", "los", "negated")

    def __init__(self, ranges: _Ranges, *, negated: bool = False, fold: bool = False) -> None:
        merged = sorted(ranges)
        self.los = [lo for lo, _ in merged]
        self.his = [hi for _, hi in merged]
        self.negated = negated
        self.fold = fold

    def _hit(self, code: int) -> bool:
        i = bisect.bisect_right(self.los, code) - 1
        return i >= 0 and code <= self.his[i]

    def __contains__(self, char: str) -> bool:
        hit = self._hit(ord(char))
        if not hit and self.fold:
            hit = any(self._hit(ord(v)) for v in (char.lower(), char.upper()) if len(v) == 1)
        return hit != self.negated


SetNode: TypeAlias = tuple[Literal["set"], CharSet]
SeqNode: TypeAlias = tuple[Literal["cat", "alt"], tuple["Node", ...]]
AnchorNode: TypeAlias = tuple[Literal["bol", "eol"]]
RepNode: TypeAlias = tuple[Literal["rep"], "Node", int, int | None]
Node: TypeAlias = SetNode | SeqNode | AnchorNode | RepNode  # see the module docstring


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p, self.pos, self.fold, self.dotall = pattern, 0, False, False

    def fail(self, message: str) -> PatternError:
        return PatternError(f"{message} at position {self.pos} of {self.p!r}")

    def parse(self) -> Node:
        while flags := _LEADING_FLAGS.match(self.p, self.pos):
            if set(flags[1]) - {"i", "s"}:
                raise self.fail("only the inline flags i and s are supported")
            self.fold |= "i" in flags[1]
            self.dotall |= "s" in flags[1]
            self.pos = flags.end()
        node = self.alt()
        if self.pos < len(self.p):
            raise self.fail("unbalanced ')'")
        return node

    def alt(self) -> Node:
        branches = [self.cat()]
        while self.pos < len(self.p) and self.p[self.pos] == "|":
            self.pos += 1
            branches.append(self.cat())
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def cat(self) -> Node:
        items: list[Node] = []
        while self.pos < len(self.p) and self.p[self.pos] not in "|)":
            items.append(self.repeat())
        return ("cat", tuple(items))

    def quantifier(self) -> tuple[int, int | None] | None:
        char = self.p[self.pos : self.pos + 1]
        if char and char in "*+?":
            self.pos += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        found = _QUANT.match(self.p, self.pos) if char == "{" else None
        if found is None:
            return None
        self.pos = found.end()
        lo = int(found[1])
        hi = lo if found[2] is None else (int(found[3]) if found[3] else None)
        if lo > MAX_REPEAT or (hi is not None and (hi > MAX_REPEAT or hi < lo)):
            raise self.fail(f"bad repeat count (at most {MAX_REPEAT}, min <= max)")
        return lo, hi

    def repeat(self) -> Node:
        atom = self.atom()
        bounds = self.quantifier()
        if bounds is None:
            return atom
        if atom[0] in ("bol", "eol"):
            raise self.fail("nothing to repeat")
        if self.pos < len(self.p) and self.p[self.pos] == "?":
            self.pos += 1  # lazy: same set of matches
        if self.quantifier() is not None:
            raise self.fail("multiple repeat (possessive quantifiers are not supported)")
        return ("rep", atom, bounds[0], bounds[1])

    def atom(self) -> Node:
        char = self.p[self.pos]
        if char in "*+?" or (char == "{" and _QUANT.match(self.p, self.pos)):
            raise self.fail("nothing to repeat")
        self.pos += 1
        if char == "(":
            return self.group()
        if char == "[":
            return ("set", self.charclass())
        if char == ".":
            return ("set", CharSet(() if self.dotall else ((10, 10),), negated=True))
        if char in "^$":
            return ("bol",) if char == "^" else ("eol",)
        if char == "\\":
            return self.escape()
        return self.literal(char)

    def literal(self, char: str) -> Node:
        return ("set", CharSet(((ord(char), ord(char)),), fold=self.fold))

    def group(self) -> Node:
        if self.p.startswith("?", self.pos):
            rest = self.p[self.pos :]
            named = re.match(r"\?P?<[A-Za-z_][A-Za-z0-9_]*>", rest)
            if rest.startswith("?:"):
                self.pos += 2
            elif named:
                self.pos += named.end()
            elif rest[:2] in ("?=", "?!") or rest[:3] in ("?<=", "?<!"):
                raise self.fail("lookaround is not supported")
            elif rest.startswith("?P="):
                raise self.fail("backreferences are not supported")
            else:
                raise self.fail("unsupported group (inline flags only at the start)")
        inner = self.alt()
        if self.pos >= len(self.p) or self.p[self.pos] != ")":
            raise self.fail("missing ')'")
        self.pos += 1
        return inner

    def escaped(self) -> _Ranges | str:
        """After a backslash: shorthand ranges (negated: complemented) or a char.

        The anchors ``\\A \\z \\Z`` (outside a class only) are read by :meth:`escape`."""
        if self.pos >= len(self.p):
            raise self.fail("trailing backslash")
        char = self.p[self.pos]
        self.pos += 1
        if char.lower() in _SHORTHAND:
            ranges = _SHORTHAND[char.lower()]
            return _complement(ranges) if char.isupper() else ranges
        if char in _CONTROL:
            return _CONTROL[char]
        if char in "xu":
            size = 2 if char == "x" else 4
            digits = self.p[self.pos : self.pos + size]
            if len(digits) != size or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise self.fail(f"\\{char} needs {size} hex digits")
            self.pos += size
            return chr(int(digits, 16))
        if char.isdigit():
            raise self.fail("backreferences and octal escapes are not supported")
        if char in "bB":
            raise self.fail("word boundaries (\\b, \\B) are not supported")
        if char.isalnum() or char == "_":
            raise self.fail(f"unknown escape \\{char}")
        return char

    def escape(self) -> Node:
        char = self.p[self.pos : self.pos + 1]
        if char in ("A", "z", "Z"):
            self.pos += 1
            return ("bol",) if char == "A" else ("eol",)
        found = self.escaped()
        if isinstance(found, str):
            return self.literal(found)
        return ("set", CharSet(found))

    def charclass(self) -> CharSet:
        negated = self.p.startswith("^", self.pos)
        self.pos += negated
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            if self.pos >= len(self.p):
                raise self.fail("missing ']'")
            char = self.p[self.pos]
            if char == "]" and not first:
                self.pos += 1
                return CharSet(tuple(ranges), negated=negated, fold=self.fold)
            first = False
            if self.p.startswith("[:", self.pos):
                raise self.fail("POSIX classes ([:alpha:]) are not supported")
            self.pos += 1
            low: str | _Ranges = self.escaped() if char == "\\" else char
            if not isinstance(low, str):
                ranges.extend(low)
                continue
            after_dash = self.p[self.pos + 1 : self.pos + 2]
            if self.p.startswith("-", self.pos) and after_dash not in ("]", ""):
                self.pos += 1
                high_char = self.p[self.pos]
                self.pos += 1
                high = self.escaped() if high_char == "\\" else high_char
                if not isinstance(high, str) or ord(high) < ord(low):
                    raise self.fail("bad character range")
                ranges.append((ord(low), ord(high)))
            else:
                ranges.append((ord(low), ord(low)))


def _check_length(pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")


def parse_rlike(pattern: str) -> Node:
    """Parse an ``rlike`` regex into a tree.

    Raises:
        PatternError: unsupported syntax or past the limits (the message gives the position).
    """
    _check_length(pattern)
    return _Parser(pattern).parse()


def parse_like(pattern: str) -> Node:
    r"""Parse a SQL ``LIKE`` pattern as ``definitions.criteria.like_to_regex`` reads it.

    ``%`` is any run (newlines included), ``_`` one character, ``\`` makes the next character
    literal (a trailing ``\`` is literal); the caller anchors the match at both ends.

    Raises:
        PatternError: longer than :data:`MAX_PATTERN_LENGTH`.
    """
    _check_length(pattern)
    anything: SetNode = ("set", CharSet((), negated=True))
    items: list[Node] = []
    chars = iter(pattern)
    for char in chars:
        if char == "%":
            items.append(("rep", anything, 0, None))
        elif char == "_":
            items.append(anything)
        else:
            literal = next(chars, "\\") if char == "\\" else char
            items.append(("set", CharSet(((ord(literal), ord(literal)),))))
    return ("cat", tuple(items))
