"""A TCP proxy in front of a broker that can refuse one client's produce requests.

Tansu creates any topic it is asked for and has no ACLs, so "the bad-events topic cannot be
written" is made here, on the wire: while :attr:`KafkaProxy.refusing` is set, a Produce request
(API key 0) from the client id given is never forwarded, and its connection is closed; the
broker never sees it, so nothing of it is written. Everything else passes through unchanged.
The broker must advertise the proxy's address (``LocalBroker(advertised=...)``), so clients
keep connecting through it after the bootstrap.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Iterator

__all__ = ["KafkaProxy", "running_proxy"]

_PRODUCE = 0


class KafkaProxy:
    def __init__(self, port: int, upstream_port: int) -> None:
        self.port = port
        self.upstream_port = upstream_port
        self.refused_client_id = b""
        self.refusing = threading.Event()
        self.refused = 0  # produce requests refused so far
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def refuse(self, client_id: str) -> None:
        """Refuse the produce requests of ``client_id`` from now on, until ``refusing`` is
        cleared."""
        self.refused_client_id = client_id.encode()
        self.refusing.set()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the proxy did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._started.set()
        self._loop.run_forever()
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        back = asyncio.ensure_future(self._copy(up_reader, writer))
        try:
            await self._requests(reader, up_writer)
        finally:
            back.cancel()
            for w in (writer, up_writer):
                w.close()

    async def _requests(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size_bytes = await reader.readexactly(4)
                frame = await reader.readexactly(struct.unpack(">i", size_bytes)[0])
                # Request header: api_key int16, api_version int16, correlation_id int32,
                # client_id nullable string (int16 length), in every header version.
                api_key = struct.unpack_from(">h", frame, 0)[0]
                length = struct.unpack_from(">h", frame, 8)[0]
                client_id = frame[10 : 10 + max(length, 0)]
                if (
                    api_key == _PRODUCE
                    and client_id == self.refused_client_id
                    and self.refusing.is_set()
                ):
                    self.refused += 1
                    return  # dropped whole; the connection closes
                up.write(size_bytes + frame)
                await up.drain()

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.contextmanager
def running_proxy(port: int, upstream_port: int) -> Iterator[KafkaProxy]:
    proxy = KafkaProxy(port, upstream_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
