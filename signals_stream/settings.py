"""One settings object, read from ``SIGNALS_*`` environment variables (and a ``.env`` file).

Invalid settings fail at start-up with one line naming the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from signals_stream.errors import ConfigurationError

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "SIGNALS_"
_BROKER_ENTRY = re.compile(
    r"^(?:kafka://)?(?P<host>[A-Za-z0-9_.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$"
)
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")
MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of a signals-stream process. Field ``x`` is read from ``SIGNALS_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="forbid", frozen=True
    )

    # --- Kafka and topics -------------------------------------------------------------------
    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers, 'kafka://host:port', separated by ';' or ','.",
    )
    app_id: str = Field(
        "signals-stream", description="Faust app id: consumer group and prefix of internal topics."
    )
    input_topic: str = Field(
        "snowplow-enriched", description="Topic of Snowplow enriched events (TSV or JSON)."
    )
    bad_events_topic: str = Field(
        "signals-bad-events", description="Dead-letter topic for unusable records."
    )
    interventions_topic: str = Field(
        "signals-interventions", description="Output topic of interventions."
    )
    partitions: int = Field(
        8, ge=1, le=1024, description="Partitions of the topics signals-stream creates."
    )
    input_keyed_by: str | None = Field(
        None,
        description="Attribute key the input topic is already keyed by (e.g. 'domain_userid'): "
        "events for that key skip the repartition hop.",
    )

    # --- web ---------------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Address the worker's web server binds to.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's web server.")
    api_token: SecretStr | None = Field(None, description="Bearer token required by the HTTP API.")

    # --- state -------------------------------------------------------------------------------
    data_dir: Path = Field(
        Path("signals-data"), description="Directory of the worker's RocksDB state."
    )
    redis_url: str | None = Field(
        None, description="Optional Redis profiles store, e.g. redis://127.0.0.1:6379/0."
    )
    definitions: Path | None = Field(
        None, description="Attribute/intervention definitions file loaded at start-up."
    )

    # --- Faust tuning (see docs/architecture.md) ---------------------------------------------
    consumer_max_fetch_size: int = Field(
        8 * MIB, ge=64 * 1024, description="Max bytes fetched per partition."
    )
    consumer_fetch_max_wait_ms: int = Field(
        100, ge=1, le=10_000, description="Longest a fetch waits for data (Faust's own is 1.5 s)."
    )
    broker_max_poll_records: int = Field(
        2000, ge=1, description="Max records returned by one poll."
    )
    stream_buffer_maxsize: int = Field(
        16384, ge=1, description="Per-topic-partition buffer of a stream."
    )
    producer_linger_ms: int = Field(5, ge=0, le=1000, description="Producer batching delay.")
    rocksdb_block_cache_mb: int = Field(
        64, ge=1, description="RocksDB block cache per table partition."
    )
    rocksdb_write_buffer_mb: int = Field(
        8, ge=1, description="RocksDB memtable size per table partition."
    )
    table_standby_replicas: int = Field(
        0, ge=0, description="Standby replicas of each table partition."
    )
    broker_session_timeout_s: float = Field(
        60.0,
        gt=1,
        le=3600,
        description="Consumer session timeout: how long a dead worker holds partitions.",
    )
    broker_rebalance_timeout_s: float = Field(
        60.0, gt=1, le=3600, description="How long members get to rejoin a rebalance."
    )
    producer_max_batch_size: int = Field(
        64 * 1024, ge=1, description="Max bytes of one produce batch per partition."
    )
    dedupe_event_ids: int = Field(
        0,
        ge=0,
        le=10_000,
        description="Drop events whose event_id is among the last N an entity applied (0 = off).",
    )
    sweep_interval_s: float = Field(
        30.0, gt=0, le=86400, description="How often idle partitions are swept for expired rows."
    )
    agent_batch_size: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Records an agent folds per step (one write per entity).",
    )
    agent_batch_within_ms: int = Field(
        20, ge=1, le=10_000, description="How long an agent waits to fill a batch (added latency)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        entries = [e.strip() for e in re.split(r"[;,]", value) if e.strip()]
        if not entries:
            raise ValueError("must name at least one host:port")
        for entry in entries:
            match = _BROKER_ENTRY.match(entry)
            if not match or not 0 < int(match["port"]) < 65536:
                raise ValueError(f"{entry!r} is not 'kafka://host:port'")
        return ";".join(e if e.startswith("kafka://") else f"kafka://{e}" for e in entries)

    @field_validator("input_topic", "bad_events_topic", "interventions_topic", "app_id")
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value):
            raise ValueError("must be 1-249 characters of letters, digits, '.', '_' or '-'")
        return value

    @cached_property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` entries for plain Kafka clients (aiokafka)."""
        return [entry.removeprefix("kafka://") for entry in self.broker.split(";")]

    @property
    def web_url(self) -> str:
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::") else self.web_host
        return f"http://{host}:{self.web_port}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; turn validation errors into one clear line.

    Raises:
        ConfigurationError: naming the first offending ``SIGNALS_*`` variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            given = error.get("input")
            shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}{shown}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from exc
