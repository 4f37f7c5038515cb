"""``SIGNALS_WAREHOUSE_URL``: which warehouse, and a form of it that is safe to print. Pure.

duckdb:///path/file.duckdb            embedded, the default (a file in the data dir)
postgresql://user:pass@host:5432/db   PostgreSQL (and Redshift-compatible servers)
snowflake://user:pass@account/db      Snowflake (optional extra)
bigquery://project                    BigQuery (optional extra)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from signals_stream.errors import ConfigurationError

__all__ = ["ENGINES", "Engine", "WarehouseUrl", "parse_warehouse_url", "redact_url"]

Engine = Literal["duckdb", "postgres", "snowflake", "bigquery"]
_SCHEMES: dict[str, Engine] = {
    "duckdb": "duckdb",
    "postgresql": "postgres",
    "postgres": "postgres",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
}
ENGINES: tuple[Engine, ...] = ("duckdb", "postgres", "snowflake", "bigquery")


@dataclass(frozen=True, slots=True)
class WarehouseUrl:
    """A parsed warehouse URL. ``url`` holds the secret; print :attr:`safe` instead."""

    engine: Engine
    url: str
    path: str  # DuckDB: the database file; others: the URL's path without its slash

    @property
    def safe(self) -> str:
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """``url`` with its password (and any query string, which may carry tokens) replaced by
    ``***``: for logs, errors and /stats."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" not in netloc and not parts.query:
        return url  # nothing secret (urlunsplit would also drop duckdb:///'s empty host)
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def parse_warehouse_url(url: str) -> WarehouseUrl:
    """Parse and check ``url``.

    Raises:
        ConfigurationError: an unknown scheme, or a DuckDB URL without a file (the message
            shows the URL redacted).
    """
    parts = urlsplit(url)
    engine = _SCHEMES.get(parts.scheme.lower())
    if engine is None:
        raise ConfigurationError(
            f"SIGNALS_WAREHOUSE_URL: unknown warehouse {redact_url(url)!r}; expected "
            "duckdb:///file.duckdb, postgresql://..., snowflake://... or bigquery://project"
        )
    if engine == "duckdb":
        path = parts.netloc + parts.path if parts.netloc else parts.path
        if not path or path == "/":
            raise ConfigurationError("SIGNALS_WAREHOUSE_URL: a duckdb URL names a file")
        return WarehouseUrl(engine, url, path)
    return WarehouseUrl(engine, url, parts.path.lstrip("/"))
