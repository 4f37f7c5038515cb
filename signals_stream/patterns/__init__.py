"""Linear-time ``LIKE`` and ``rlike`` matching for criteria on visitor-controlled values.

Python's ``re`` backtracks: ``.*a.*a.*b`` over 1,000 characters of ``a`` takes minutes, and
criteria run on every event against values such as ``page_url`` that visitors control. These
matchers simulate an automaton instead, so the cost grows linearly with the text.
"""

from signals_stream.patterns.matcher import (
    MAX_SUBJECT_LENGTH,
    Matcher,
    compile_like,
    compile_rlike,
)
from signals_stream.patterns.syntax import PatternError

__all__ = ["MAX_SUBJECT_LENGTH", "Matcher", "PatternError", "compile_like", "compile_rlike"]
