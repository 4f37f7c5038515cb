"""The error tree of signals-stream: every exception the project raises descends from
:class:`SignalsStreamError`, and everything that answers HTTP 503 from :class:`Unavailable`.

::

    class                       HTTP answer            raised when
    SignalsStreamError          500 internal           root: an error of ours, not an HTTP answer
    ├── ConfigurationError      500 internal           invalid settings; raised at start-up
    │   └── BrokerStartError    (devtools/broker.py)   the local dev broker did not start
    ├── DefinitionError         422 invalid            a bad body or key/group/rule definition
    │   ├── PatternError        (patterns/syntax.py)   a bad like/rlike pattern; also a ValueError
    │   └── InvalidIntervention 422 invalid_intervention  a pushed InterventionInstance is invalid
    ├── BadRequest              400 bad_request        unusable parameters (version, targets)
    │   ├── AlreadyExists       400 bad_request        POST of an existing definition (SDK: PUT)
    │   ├── TooManyTargets      (delivery/push.py)     a push names too many targets; a ValueError
    │   └── HistoryTooLarge     400 history_too_large  a read of the log would pass its record bound
    ├── NotFoundError           404 not_found          no such collection, group, version, row
    ├── Conflict                409 conflict           valid, but the registry's state forbids it
    ├── Unavailable             503 unavailable        try again shortly (``Retry-After: 1``)
    │   ├── OwnerUnavailable                           the worker owning an id cannot answer
    │   ├── RegistryUnavailable                        the registry log write is not read back
    │   ├── ProfilesUnavailable                        Redis cannot answer for these ids
    │   ├── TooManySubscribers  (delivery/hub.py)      the SSE hub is full or closing
    │   ├── WorkerUnavailable   (apiserver/proxy.py)   the worker to forward to is unreachable
    │   ├── NotReady            (apiserver/server.py)  the registry log is not read yet
    │   ├── LogUnavailable                             the input log cannot be read (test, preview)
    │   └── HistoryDeadline     503 history_deadline   a read of the log did not finish in time
    ├── BadEvent                500 internal           an unusable input record (dead letters)
    └── StateError              500 internal           a state row that cannot be decoded

    anything else               500 internal           a bug: generic body, logged with traceback

Classes without a module are defined here; the others live with the one module that raises
them. Each class carries its answer: ``http_status`` and ``error_code`` (the ``"error"`` field
of the JSON body ``{"error": <error_code>, "detail": str(exc)}``), and :class:`Unavailable`
``retry_after_s``. ``signals_stream.serving.errors_http.error_answer`` turns any exception into
that answer, for the workers' views and ``signals-stream api`` alike; an exception outside the
tree answers 500 with a generic body (and is logged with its traceback).

Agents catch ``BadEvent`` only; anything else is a bug and crashes loudly.
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "AlreadyExists",
    "BadEvent",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "DefinitionError",
    "HistoryDeadline",
    "HistoryTooLarge",
    "LogUnavailable",
    "InvalidIntervention",
    "NotFoundError",
    "OwnerUnavailable",
    "ProfilesUnavailable",
    "RegistryUnavailable",
    "SignalsStreamError",
    "StateError",
    "Unavailable",
]


class SignalsStreamError(Exception):
    """Root of every error raised by signals-stream.

    Attributes:
        http_status: the status of the HTTP answer when it reaches an API view.
        error_code: the ``"error"`` field of that answer's JSON body.
    """

    http_status: ClassVar[int] = 500
    error_code: ClassVar[str] = "internal"


class ConfigurationError(SignalsStreamError):
    """A setting is invalid; the message names the environment variable."""


class DefinitionError(SignalsStreamError):
    """A definition (attribute key, group, attribute, rule) or a request body is invalid."""

    http_status = 422
    error_code = "invalid"


class InvalidIntervention(DefinitionError):
    """The body of a push (``POST /api/v1/interventions``) is not a valid
    ``InterventionInstance``."""

    error_code = "invalid_intervention"


class BadRequest(SignalsStreamError):
    """A request the API cannot serve as sent: a bad path parameter, a missing target, ..."""

    http_status = 400
    error_code = "bad_request"


class AlreadyExists(BadRequest):
    """POST of a definition that exists: the SDK answers it with a PUT."""


class HistoryTooLarge(BadRequest):
    """Reading the log for a test or preview would pass ``SIGNALS_HISTORY_MAX_RECORDS``; the
    message names the bound, the window and how far the read got."""

    error_code = "history_too_large"


class NotFoundError(SignalsStreamError):
    http_status = 404
    error_code = "not_found"


class Conflict(SignalsStreamError):
    """The request is valid but the registry's state forbids it (e.g. deleting while published)."""

    http_status = 409
    error_code = "conflict"


class Unavailable(SignalsStreamError):
    """Cannot answer right now; the same request may succeed shortly (503, ``Retry-After``).

    Attributes:
        retry_after_s: the ``Retry-After`` header of the answer, in seconds.
    """

    http_status = 503
    error_code = "unavailable"
    retry_after_s: ClassVar[int] = 1


class OwnerUnavailable(Unavailable):
    """The worker owning an entity's partition cannot answer: no partition map yet, unreachable,
    or it refused the rows request."""


class RegistryUnavailable(Unavailable):
    """The registry log could not be written, or this worker did not read the write back in
    time."""


class ProfilesUnavailable(Unavailable):
    """The profiles store cannot answer for these ids right now.

    Attributes:
        reason: ``down`` (Redis unreachable), ``syncing`` (a partition without its ``synced``
            mark) or ``corrupt`` (an unreadable row); a metric label.
    """

    def __init__(self, message: str, reason: Literal["down", "syncing", "corrupt"]) -> None:
        super().__init__(message)
        self.reason = reason


class LogUnavailable(Unavailable):
    """The input topic cannot be read for a test or preview: no broker, no such topic."""


class HistoryDeadline(Unavailable):
    """Reading and folding the log for a test or preview did not finish within
    ``SIGNALS_HISTORY_DEADLINE_S``; the message names the bound and how far it got."""

    error_code = "history_deadline"


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
