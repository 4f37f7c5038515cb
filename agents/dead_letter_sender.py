"""Dead letters to the bad-events topic, through a producer of their own, never lost.

A dead letter the topic does not take (deleted where auto-creation is off, no write permission,
a schema or size the broker refuses, a timeout) is logged, counted
(``signals_dead_letter_send_failures``, ``signals_dead_letters_pending``) and kept, in input
order, for a retry with back-off; the ingest stage never commits an input offset past a letter
still pending (:meth:`DeadLetterSender.hold`), so a restart re-reads and re-sends it, and good
events keep flowing meanwhile. Past ``SIGNALS_DEAD_LETTER_MAX_PENDING`` kept letters the ingest
stage pauses its input (:attr:`DeadLetterSender.full`).

Why a producer of its own: the app's producer waits up to Faust's 20-minute request timeout
before it fails a send, and shares batches with the entity events; this one fails a send after
``SIGNALS_DEAD_LETTER_TIMEOUT_S``, so a letter is either acknowledged or known to be retried.
A broker refusal means the record was not written, so a retry delivers it exactly once; a
timeout after the broker wrote it but before it answered may deliver it twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from agents.ingest_step import DeadLetter
from signals_stream.kafka.auth import client_auth
from signals_stream.worker_state import WorkerState

__all__ = ["DeadLetterSender", "register_dead_letter_sender"]

logger = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 15.0
_LOG_EVERY_S = 30.0
_RECORD_OVERHEAD = 64 * 1024  # the record key (<= 16 KiB), headers, batch framing

Position = tuple[str, int]  # input (topic, partition)


class DeadLetterSender(Service):
    """Sends dead letters; keeps those that failed and retries them in order."""

    def __init__(self, state: WorkerState) -> None:
        super().__init__()
        self._state = state
        self._topic = state.settings.bad_events_topic
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[DeadLetter] = []  # input order
        self._changed = asyncio.Event()  # a letter was parked, or the pending list drained
        self._last_log = 0.0
        # Called once the pending letters of some partitions are all delivered.
        self.on_cleared: Callable[[], None] = lambda: None

    async def on_start(self) -> None:
        settings = self._state.settings
        timeout_ms = int(settings.dead_letter_timeout_s * 1000)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.app_id}-dead-letters",
            acks="all",
            enable_idempotence=False,  # the local broker has none; a retry is a new record
            request_timeout_ms=timeout_ms,
            max_request_size=settings.dead_letter_max_bytes + _RECORD_OVERHEAD,
            linger_ms=settings.producer_linger_ms,
            **client_auth(settings),
        )
        await self._producer.start()

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    @property
    def full(self) -> bool:
        """As many letters pending as the ingest stage may keep: pause the input."""
        return len(self._pending) >= self._state.settings.dead_letter_max_pending

    @property
    def pending(self) -> int:
        return len(self._pending)

    def hold(self) -> dict[Position, int]:
        """Per input partition, the offset of its first pending letter: commit no further."""
        first: dict[Position, int] = {}
        for letter in self._pending:
            first.setdefault((letter.topic, letter.partition), letter.offset)
        return first

    def drop(self, partitions: Iterable[Position]) -> None:
        """Forget the pending letters of partitions this worker lost: their new owner re-reads
        them from the held commit and sends them."""
        gone = set(partitions)
        self._pending = [p for p in self._pending if (p.topic, p.partition) not in gone]
        self._state.stats.dead_letters_pending = len(self._pending)

    async def deliver(self, letters: list[DeadLetter]) -> None:
        """Send ``letters``; return once each is acknowledged or kept for a retry."""
        if not letters:
            return
        if self._pending:
            self._park(letters, None)  # behind older ones: keep the order, retry together
            return
        failed = await self._send_all(letters)
        if failed:
            self._park(failed, self._failure)

    async def drained(self) -> None:
        """Wait until no letter is pending (the Faust agent holds its batch until then)."""
        while self._pending and not self.should_stop:
            await self._wait_changed(1.0)

    _failure: BaseException | None = None

    async def _send_all(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """Send in order; return the letters not acknowledged (from the first failure on,
        so a retry keeps the input order)."""
        producer = self._producer
        assert producer is not None, "the dead-letter producer is not started"
        timeout_s = self._state.settings.dead_letter_timeout_s
        acks: list[asyncio.Future[object]] = []
        try:
            for letter in letters:
                acks.append(
                    await asyncio.wait_for(
                        producer.send(self._topic, letter.value, key=_record_key(letter)),
                        timeout_s,
                    )
                )
        except (KafkaError, TimeoutError) as exc:
            self._failure = exc
        results = await asyncio.gather(*acks, return_exceptions=True)
        for index, result in enumerate(results):
            if isinstance(result, BaseException):
                self._failure = result
                return letters[index:]
        return letters[len(acks) :]

    def _park(self, letters: list[DeadLetter], failure: BaseException | None) -> None:
        stats = self._state.stats
        self._pending.extend(letters)
        stats.dead_letters_pending = len(self._pending)
        if failure is not None:
            stats.dead_letter_send_failures += len(letters)
            self._log_failure(len(letters))
        self._changed.set()

    def _log_failure(self, count: int) -> None:
        """An ERROR at the first failure of an outage, then at most one every 30 s."""
        now = time.monotonic()
        if self._last_log and now - self._last_log < _LOG_EVERY_S:
            return
        self._last_log = now
        first = self._pending[0]
        logger.error(
            "dead letters: %s did not take %d letter(s): %r; %d pending, input %s[%d] is not "
            "committed past offset %d until they are written (retrying)",
            self._topic,
            count,
            self._failure,
            len(self._pending),
            first.topic,
            first.partition,
            first.offset,
        )

    @Service.task
    async def _retry(self) -> None:
        delay = _RETRY_FIRST_S
        while not self.should_stop:
            if not self._pending:
                delay = _RETRY_FIRST_S
                await self._wait_changed(1.0)
                continue
            await self.sleep(delay)
            batch = list(self._pending)
            failed = await self._send_all(batch)
            # Letters parked meanwhile stay behind; those dropped meanwhile (a rebalance) stay
            # dropped.
            sent = {id(letter) for letter in batch[: len(batch) - len(failed)]}
            self._pending = [letter for letter in self._pending if id(letter) not in sent]
            stats = self._state.stats
            stats.dead_letters_pending = len(self._pending)
            if failed:
                stats.dead_letter_send_failures += len(failed)
                delay = min(delay * 2, _RETRY_MAX_S)
                self._log_failure(len(failed))
                continue
            logger.warning("dead letters: %d written to %s on a retry", len(sent), self._topic)
            self._last_log = 0.0
            self._changed.set()
            self.on_cleared()

    async def _wait_changed(self, timeout_s: float) -> None:
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            pass


def _record_key(letter: DeadLetter) -> bytes | None:
    key = letter.key
    return key if key is None or len(key) <= 16 * 1024 else None


def register_dead_letter_sender(state: WorkerState) -> DeadLetterSender:
    """The dead-letter producer, started and stopped with the app."""
    sender = DeadLetterSender(state)
    state.app.service(sender)  # type: ignore[arg-type]
    return sender
