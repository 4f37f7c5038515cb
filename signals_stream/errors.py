"""The error tree of signals-stream.

::

    SignalsStreamError            (http_status 500)
    ├── ConfigurationError        invalid settings; raised at start-up
    ├── DefinitionError           (422) a bad attribute / group / rule definition
    ├── NotFoundError             (404)
    ├── BadEvent                  an input record that cannot be used; goes to the dead-letter topic
    └── StateError                a state row that cannot be decoded

Agents catch ``BadEvent`` only; anything else is a bug and crashes loudly.
"""

from __future__ import annotations

__all__ = [
    "BadEvent",
    "ConfigurationError",
    "DefinitionError",
    "NotFoundError",
    "SignalsStreamError",
    "StateError",
]


class SignalsStreamError(Exception):
    """Root of every error raised by signals-stream."""

    http_status: int = 500


class ConfigurationError(SignalsStreamError):
    """A setting is invalid; the message names the environment variable."""


class DefinitionError(SignalsStreamError):
    """A definition (attribute key, group, attribute, rule) is invalid."""

    http_status = 422


class NotFoundError(SignalsStreamError):
    http_status = 404


class StateError(SignalsStreamError):
    """A stored entity row cannot be decoded."""


class BadEvent(SignalsStreamError):  # noqa: N818 - it names the record, not a failure mode
    """An input record that cannot be turned into an event.

    Args:
        reason: machine-readable reason, e.g. ``FieldNumberMismatch(130)`` or
            ``InvalidTimestamp(etl_tstamp)``; stable, used as a metric label.
        detail: human-readable explanation.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    @property
    def reason_kind(self) -> str:
        """The reason without its argument (``FieldNumberMismatch``), for low-cardinality labels."""
        return self.reason.split("(", 1)[0]
