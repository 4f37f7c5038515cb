"""One settings object, read from ``SIGNALS_*`` environment variables (and a ``.env`` file).

Invalid settings fail at start-up with one line naming the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import re
import socket
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

from pydantic import (
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from signals_stream.errors import ConfigurationError
from signals_stream.warehouse.urls import parse_warehouse_url

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
    dead_letter_max_bytes: int = Field(
        900 * 1024,
        ge=4096,
        le=64 * MIB,
        description="Largest dead letter; a bigger one keeps a prefix of the record, flagged "
        "truncated, with its size (keep it below the bad-events topic's max.message.bytes).",
    )
    dead_letter_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="How long a dead letter's send may take before it counts as failed and is "
        "retried (the input offset is held before it meanwhile).",
    )
    dead_letter_max_pending: int = Field(
        10_000,
        ge=1,
        description="Dead letters kept for retry while the bad-events topic cannot be written; "
        "beyond, the ingest stage pauses its input.",
    )
    partitions: int = Field(
        8, ge=1, le=1024, description="Partitions of the topics signals-stream creates."
    )
    topic_replication_factor: int = Field(
        1,
        ge=1,
        le=16,
        description="Replicas of each topic signals-stream creates (3 on a production cluster; "
        "Confluent Cloud refuses anything else).",
    )
    input_keyed_by: str | None = Field(
        None,
        description="Attribute key the input topic is already keyed by (e.g. 'domain_userid'): "
        "events for that key skip the repartition hop (SIGNALS_INGEST_MODE=faust only).",
    )
    ingest_mode: Literal["lean", "faust"] = Field(
        "lean",
        description="How the input topic is read: 'lean', a plain consumer of its own group "
        "(<app_id>-ingest), or 'faust', a Faust agent (slower; needed by SIGNALS_INPUT_KEYED_BY).",
    )

    # --- broker security (managed Kafka: MSK, Confluent Cloud, Redpanda Cloud) ----------------
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client of the process connects to the broker."
    )
    broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (SASL_* protocols only)."
    )
    broker_sasl_username: str | None = Field(None, description="SASL user name (API key).")
    broker_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    broker_ssl_cafile: FilePath | None = Field(
        None, description="PEM bundle of CAs to trust instead of the system's (SSL protocols)."
    )
    broker_ssl_certfile: FilePath | None = Field(
        None, description="PEM client certificate for mutual TLS (SSL protocols)."
    )
    broker_ssl_keyfile: FilePath | None = Field(
        None, description="PEM private key of the client certificate, if not in that file."
    )

    # --- web ---------------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Address the worker's web server binds to.")
    web_advertised_host: str | None = Field(
        None,
        description="Host name other workers reach this one by (proxied per-entity reads); "
        "default: SIGNALS_WEB_HOST, or this machine's host name when that is a wildcard.",
    )
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's web server.")
    api_token: SecretStr | None = Field(None, description="Bearer token required by the HTTP API.")

    # --- state -------------------------------------------------------------------------------
    data_dir: Path = Field(
        Path("signals-data"), description="Directory of the worker's RocksDB state."
    )
    redis_url: str | None = Field(
        None, description="Optional Redis profiles store, e.g. redis://127.0.0.1:6379/0."
    )
    redis_max_pending_mb: int = Field(
        64,
        ge=1,
        le=65536,
        description="Rows a worker keeps for Redis while it is slow or down; beyond, they are "
        "dropped and copied again from the table when it answers.",
    )
    warehouse_url: SecretStr | None = Field(
        None,
        description="Warehouse the sync engine reads warehouse groups from: "
        "duckdb:///path/file.duckdb, postgresql://user:pass@host/db, snowflake://... or "
        "bigquery://project (their connectors are extras); default: the DuckDB file "
        "warehouse.duckdb in SIGNALS_DATA_DIR. "
        "A secret: shown redacted.",
    )
    sync_chunk_rows: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Warehouse rows a sync run reads, sends and commits (watermark) at a time: "
        "a run holds about one chunk in memory.",
    )
    batch_events_table: str = Field(
        "atomic.events",
        pattern=r"^([A-Za-z0-9_-]+\.)?[A-Za-z0-9_]+\.[A-Za-z0-9_]+$",
        description="The Snowplow atomic events table batch groups are computed from "
        "([database.]schema.table).",
    )
    backfill_from_warehouse: bool = Field(
        False,
        description="A backfill whose backfill_since_tstamp is older than the input log's "
        "first record takes the events collected before the log's start from the warehouse "
        "(SIGNALS_BATCH_EVENTS_TABLE in SIGNALS_WAREHOUSE_URL), the rest from the log.",
    )
    batch_schema: str = Field(
        "signals",
        pattern=r"^[A-Za-z0-9_]+$",
        description="Schema `signals-stream batch run` writes <group>_<version>_attributes to "
        "(the sync engine serves batch groups from there).",
    )
    worker_url: str | None = Field(
        None,
        description="A worker's URL, e.g. http://worker:6066: `signals-stream api` asks it when "
        "Redis cannot answer, and forwards registry writes to it.",
    )
    definitions: Path | None = Field(
        None, description="Attribute/intervention definitions file loaded at start-up."
    )

    # --- Faust tuning (see docs/architecture.md) ---------------------------------------------
    consumer_max_fetch_size: int = Field(
        8 * MIB, ge=64 * 1024, description="Max bytes fetched per partition."
    )
    # 30 ms wait, 10 ms window, 1 ms linger: event -> SSE p99 ~60 ms on Tansu, not ~160 ms, same
    # throughput, twice the idle polling (bench/bench_latency.py, docs/architecture.md).
    consumer_fetch_max_wait_ms: int = Field(
        30, ge=1, le=10_000, description="Longest a fetch waits for data (Faust's own is 1.5 s)."
    )
    broker_max_poll_records: int = Field(
        2000, ge=1, description="Max records returned by one poll."
    )
    stream_buffer_maxsize: int = Field(
        16384, ge=1, description="Per-topic-partition buffer of a stream."
    )
    producer_linger_ms: int = Field(1, ge=0, le=1000, description="Producer batching delay.")
    rocksdb_block_cache_mb: int = Field(
        64, ge=1, description="RocksDB block cache per table partition."
    )
    rocksdb_write_buffer_mb: int = Field(
        8, ge=1, description="RocksDB memtable size per table partition."
    )
    table_standby_replicas: int = Field(
        0, ge=0, description="Standby replicas of each table partition."
    )
    # 10 s (Kafka's default before 3.0): a dead worker's partitions move within ~10 s, and on
    # Tansu a group's first join completes after about half of it (60 s made a fresh worker
    # wait ~62 s for its first event: one wait for Faust's group, one for the ingest group).
    broker_session_timeout_s: float = Field(
        10.0,
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
        10, ge=1, le=10_000, description="How long an agent waits to fill a batch (added latency)."
    )
    push_receipt_timeout_ms: int = Field(
        1500,
        ge=1,
        le=60_000,
        description="How long a direct push waits for a subscriber's delivery receipt before "
        "answering 'undelivered'.",
    )
    sse_resume_lookback_s: int = Field(
        300,
        ge=0,
        le=86_400,
        description="How far back a Server-Sent Events stream that reconnects with "
        "Last-Event-ID is sent what it missed (0: no resume).",
    )
    sse_resume_max_entries: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        description="Interventions each worker holds in memory for reconnecting streams "
        "(oldest dropped first; about 1 KB each).",
    )
    # --- history: test() and the intervention preview read the input log ------------------
    history_max_records: int = Field(
        500_000,
        ge=1,
        le=1_000_000_000,
        description="Most input records one test() or intervention preview may read in its "
        "window (more: 400 naming this bound).",
    )
    history_deadline_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest one test() or intervention preview may read and fold the log "
        "(longer: 503 naming this bound).",
    )
    # --- backfill: a group published with backfill_since_tstamp is filled from the log ------
    backfill_max_rate: float = Field(
        0.0,
        ge=0,
        description="Most input records per second one backfill task reads (0: no limit; the "
        "task yields to the live stream between slices of 500 records either way).",
    )
    backfill_checkpoint_records: int = Field(
        5_000,
        ge=1,
        le=10_000_000,
        description="Input records a backfill task reads between two checkpoints (what a "
        "killed task reads again).",
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

    @field_validator("redis_url", "worker_url")
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        redis = info.field_name == "redis_url"
        schemes = ("redis://", "rediss://", "unix://") if redis else ("http://", "https://")
        if value is not None and not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return value

    @field_validator("warehouse_url")
    @classmethod
    def _check_warehouse_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_warehouse_url(value.get_secret_value())
            except ConfigurationError as exc:
                raise ValueError(str(exc).removeprefix("SIGNALS_WAREHOUSE_URL: ")) from None
        return value

    @property
    def warehouse(self) -> str:
        """The warehouse URL in force (a secret: log ``redact_url`` of it)."""
        if self.warehouse_url is not None:
            return self.warehouse_url.get_secret_value()
        return f"duckdb:///{(self.data_dir / 'warehouse.duckdb').resolve()}"

    @model_validator(mode="after")
    def _check_broker_security(self) -> Settings:
        sasl = self.broker_security_protocol.startswith("SASL_")
        tls = self.broker_security_protocol.endswith("SSL")
        if sasl and not (self.broker_sasl_username and self.broker_sasl_password):
            raise ValueError(
                f"SIGNALS_BROKER_SECURITY_PROTOCOL={self.broker_security_protocol} needs "
                "SIGNALS_BROKER_SASL_USERNAME and SIGNALS_BROKER_SASL_PASSWORD"
            )
        if not sasl and (self.broker_sasl_username or self.broker_sasl_password):
            raise ValueError(
                "SIGNALS_BROKER_SASL_USERNAME/PASSWORD are set but "
                "SIGNALS_BROKER_SECURITY_PROTOCOL is not SASL_SSL or SASL_PLAINTEXT"
            )
        files = (self.broker_ssl_cafile, self.broker_ssl_certfile, self.broker_ssl_keyfile)
        if not tls and any(files):
            raise ValueError(
                "SIGNALS_BROKER_SSL_* files are set but SIGNALS_BROKER_SECURITY_PROTOCOL is "
                "not SSL or SASL_SSL"
            )
        if self.broker_ssl_keyfile and not self.broker_ssl_certfile:
            raise ValueError("SIGNALS_BROKER_SSL_KEYFILE needs SIGNALS_BROKER_SSL_CERTFILE")
        return self

    @cached_property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` entries for plain Kafka clients (aiokafka)."""
        return [entry.removeprefix("kafka://") for entry in self.broker.split(";")]

    @property
    def advertised_web_host(self) -> str:
        """The host of this worker's canonical URL: a wildcard bind address reaches nothing
        from another machine or container."""
        if self.web_advertised_host:
            return self.web_advertised_host
        if self.web_host in ("0.0.0.0", "::"):
            return socket.gethostname()
        return self.web_host

    @property
    def web_url(self) -> str:
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::") else self.web_host
        return f"http://{host}:{self.web_port}"


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and SecretStr in (info.annotation, *get_args(info.annotation))


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
            if not error["loc"]:  # a check across fields: its message names the variables
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            field = str(error["loc"][0])
            given = error.get("input")
            shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
            if _is_secret(field):  # a password or a URL holding one: never echoed
                shown = ""
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}{shown}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from exc
