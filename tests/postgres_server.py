"""A throwaway PostgreSQL server for tests: Debian's binaries, initdb into a temporary
directory, a free port on loopback, stopped (and removed) afterwards.

initdb and postgres refuse to run as root: as root, the server runs as the ``postgres``
system user (Debian's package creates it)."""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from signals_stream.devtools.broker import free_port

__all__ = ["postgres_server", "postgres_table"]


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_server(timeout_s: float = 30.0) -> Iterator[str]:
    """Start a server; yields ``postgresql://postgres@127.0.0.1:<port>/postgres``."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        missing = "PostgreSQL server binaries are not installed (apt-get install postgresql)"
        if os.environ.get("CI"):  # .ci/run installs them: a CI run must not skip these
            pytest.fail(missing)
        pytest.skip(missing)
    root = Path(tempfile.mkdtemp(prefix="signals-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    log = root / "server.log"
    subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A",
                         "trust"]),
        check=True, capture_output=True, timeout=timeout_s,
    )  # fmt: skip
    server = subprocess.Popen(
        _as_server_user([
            str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
            "-c", "fsync=off",
        ]),
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"PostgreSQL did not start: {tail}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=timeout_s)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_table(create: str) -> Iterator[tuple[str, Callable[[list[tuple[Any, ...]]], None]]]:
    """A server with schema ``crm`` and the table of ``create``; yields its URL and a function
    inserting rows (a ``datetime`` is written naive, in UTC) into ``crm.customers``."""
    with postgres_server() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA crm")
            conn.execute(create.encode())

        def insert(rows: list[tuple[Any, ...]]) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                for row in rows:
                    values = tuple(
                        v.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(v, dt.datetime)
                        else v
                        for v in row
                    )  # fmt: skip
                    conn.execute("INSERT INTO crm.customers VALUES (%s, %s, %s, %s)", values)

        yield url, insert
