"""Linear-time ``like`` / ``rlike`` matching: a Thompson NFA run as a lazily built DFA.

Why not :mod:`re`: its backtracking is polynomial or exponential in the subject length for
patterns nobody would call pathological. ``.*a.*a.*b`` takes ~100 s on 1,024 characters, and
``page_url`` is visitor-controlled, so one crafted URL would stall a partition. Heuristics such as
rejecting nested quantifiers do not catch that case. Here every subject character costs one dict
lookup once the transition is cached, whatever the pattern, so matching is O(len(subject)); a
cache miss costs O(pattern size). Syntax and limits: ``patterns.syntax``. ``rlike``
is an unanchored search; ``like`` is anchored.
"""

from __future__ import annotations

from functools import lru_cache

from signals_stream.patterns.syntax import (
    MAX_PATTERN_LENGTH,
    MAX_REPEAT,
    CharSet,
    Node,
    PatternError,
    parse_like,
    parse_rlike,
)

__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_REPEAT",
    "MAX_STATES",
    "MAX_SUBJECT_LENGTH",
    "Matcher",
    "PatternError",
    "compile_like",
    "compile_rlike",
]

MAX_STATES = 10_000  # NFA size after expanding counted repeats
MAX_SUBJECT_LENGTH = 65_536  # longer values are matched on their first 65,536 characters
_CACHE_LIMIT = 50_000  # DFA transitions kept per pattern before the cache restarts


_CHAR, _SPLIT, _BOL, _EOL, _MATCH = range(5)
_NO_CHARS = CharSet(())  # the (unread) argument of the states that consume no character


class _Nfa:
    """Thompson NFA in flat lists; states are built backwards from the accepting state."""

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.arg: list[CharSet] = []  # only _CHAR states read theirs
        self.out1: list[int] = []
        self.out2: list[int] = []

    def add(self, kind: int, out1: int = -1, out2: int = -1, arg: CharSet = _NO_CHARS) -> int:
        if len(self.kind) >= MAX_STATES:
            raise PatternError(f"pattern too large (more than {MAX_STATES} states)")
        self.kind.append(kind)
        self.arg.append(arg)
        self.out1.append(out1)
        self.out2.append(out2)
        return len(self.kind) - 1

    def emit(self, node: Node, nxt: int) -> int:
        # Tested as `node[0] == ...` (not through a local) so that mypy narrows the node type.
        if node[0] == "set":
            return self.add(_CHAR, nxt, arg=node[1])
        if node[0] == "cat":
            for child in reversed(node[1]):
                nxt = self.emit(child, nxt)
            return nxt
        if node[0] == "alt":
            starts = [self.emit(branch, nxt) for branch in node[1]]
            start = starts[-1]
            for other in reversed(starts[:-1]):
                start = self.add(_SPLIT, other, start)
            return start
        if node[0] == "rep":
            _, body, lo, hi = node
            tail = nxt
            if hi is None:
                tail = self.add(_SPLIT, -1, nxt)
                self.out1[tail] = self.emit(body, tail)
            else:
                for _ in range(hi - lo):
                    tail = self.add(_SPLIT, self.emit(body, tail), nxt)
            for _ in range(lo):
                tail = self.emit(body, tail)
            return tail
        return self.add(_BOL if node[0] == "bol" else _EOL, nxt)


class Matcher:
    """A compiled pattern; ``matcher(text)`` is True when it matches (see module docs)."""

    __slots__ = ("_at_end", "_dead", "_hit", "_ids", "_mid", "_nfa", "_search", "_start",
                 "_start_id", "_start_states", "_states", "_trans", "pattern")  # fmt: skip

    def __init__(self, pattern: str, tree: Node, *, search: bool) -> None:
        self.pattern = pattern
        self._nfa = nfa = _Nfa()
        accept = nfa.add(_MATCH)
        self._start = nfa.emit(tree, accept)
        self._search = search
        # A match may begin at any later position in search mode (an implicit leading `.*?`).
        self._mid = self._closure((self._start,), at_start=False) if search else frozenset()
        self._start_states = self._closure((self._start,), at_start=True)
        self._reset()

    def _reset(self) -> None:
        self._states: list[frozenset[int]] = []
        self._ids: dict[frozenset[int], int] = {}
        self._hit: list[bool] = []  # search mode: a match already ended here
        self._dead: list[bool] = []  # nothing can match any more
        self._at_end: dict[int, bool] = {}
        self._trans: dict[tuple[int, str], int] = {}
        self._start_id = self._intern(self._start_states)

    def _closure(self, seeds: tuple[int, ...] | list[int], *, at_start: bool) -> frozenset[int]:
        nfa, seen, out, stack = self._nfa, set(), set(), list(seeds)
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            kind = nfa.kind[s]
            if kind == _SPLIT:
                stack += (nfa.out1[s], nfa.out2[s])
            elif kind == _BOL:
                if at_start:
                    stack.append(nfa.out1[s])
            else:  # _CHAR and _MATCH consume / accept; _EOL waits for the end of the text
                out.add(s)
        return frozenset(out)

    def _intern(self, states: frozenset[int]) -> int:
        sid = self._ids.get(states)
        if sid is None:
            sid = self._ids[states] = len(self._states)
            self._states.append(states)
            self._hit.append(self._search and any(self._nfa.kind[s] == _MATCH for s in states))
            self._dead.append(not states)
        return sid

    def _step(self, sid: int, char: str) -> int:
        nfa = self._nfa
        moved = [
            nfa.out1[s] for s in self._states[sid] if nfa.kind[s] == _CHAR and char in nfa.arg[s]
        ]
        nxt = self._intern(self._closure(moved, at_start=False) | self._mid)
        self._trans[(sid, char)] = nxt
        return nxt

    def _accepts_at_end(self, sid: int, *, at_start: bool) -> bool:
        found = None if at_start else self._at_end.get(sid)
        if found is None:
            nfa, states = self._nfa, self._states[sid]
            seeds = [nfa.out1[s] for s in states if nfa.kind[s] == _EOL]
            # Past the end every `$` holds: follow them until nothing new appears.
            closure = frozenset(states)
            while seeds:
                new = self._closure(seeds, at_start=at_start) - closure
                closure |= new
                seeds = [nfa.out1[s] for s in new if nfa.kind[s] == _EOL]
            found = any(nfa.kind[s] == _MATCH for s in closure)
            if not at_start:
                self._at_end[sid] = found
        return found

    def __call__(self, text: str) -> bool:
        if len(self._trans) > _CACHE_LIMIT:
            self._reset()
        if len(text) > MAX_SUBJECT_LENGTH:
            text = text[:MAX_SUBJECT_LENGTH]
        sid = self._start_id
        trans, hit, dead = self._trans, self._hit, self._dead
        for char in text:
            if hit[sid]:
                return True
            if dead[sid]:
                return False
            nxt = trans.get((sid, char))
            sid = self._step(sid, char) if nxt is None else nxt
        return self._accepts_at_end(sid, at_start=not text)

    def __repr__(self) -> str:
        return f"Matcher({self.pattern!r})"


@lru_cache(maxsize=1024)
def compile_rlike(pattern: str) -> Matcher:
    """Compile an ``rlike`` regex (unanchored search), once per pattern.

    Raises:
        PatternError: unsupported syntax or past the limits of ``pattern_syntax``.
    """
    return Matcher(pattern, parse_rlike(pattern), search=True)


@lru_cache(maxsize=1024)
def compile_like(pattern: str) -> Matcher:
    """Compile a SQL ``LIKE`` pattern (anchored, case-sensitive), once per pattern.

    Raises:
        PatternError: longer than :data:`MAX_PATTERN_LENGTH`.
    """
    return Matcher(pattern, parse_like(pattern), search=False)
