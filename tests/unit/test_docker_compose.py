"""The Docker image and compose file agree with the settings model and with Faust's topics.

No Docker engine is needed: the files are parsed, the topic creation script runs against a
stand-in for ``kafka-topics.sh``, and ``docker-compose config`` validates the file when the
binary is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from signals_stream.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
WORKERS = ("worker-1", "worker-2")
SETTING_VARIABLES = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=VALUE` form
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _dockerfile_env() -> dict[str, str]:
    """``ENV`` instructions of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("FROM "):
            env = {}  # only the last stage is the image
        elif line.startswith("ENV "):
            env |= dict(pair.split("=", 1) for pair in line[4:].split())
    return env


def _as_settings(env: dict[str, str]) -> Settings:
    """The settings a process with exactly these SIGNALS_* variables would get."""
    values = {
        key.removeprefix(ENV_PREFIX).lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX)
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_every_signals_variable_in_the_compose_file_is_a_setting() -> None:
    services = _compose()["services"]
    seen = set()
    for name, service in services.items():
        env = _environment(service)
        unknown = {key for key in env if key.startswith(ENV_PREFIX)} - SETTING_VARIABLES
        assert not unknown, f"{name}: {sorted(unknown)} are not fields of Settings"
        seen |= env.keys()
        _as_settings(env)  # and every value validates
    assert {"SIGNALS_BROKER", "SIGNALS_PARTITIONS", "SIGNALS_WEB_PORT"} <= seen


def test_every_signals_variable_in_the_dockerfile_is_a_setting() -> None:
    env = _dockerfile_env()
    signals = {key for key in env if key.startswith(ENV_PREFIX)}
    assert signals, "the image sets no SIGNALS_* variable"
    assert signals <= SETTING_VARIABLES, sorted(signals - SETTING_VARIABLES)
    settings = _as_settings(env)
    assert settings.web_host == "0.0.0.0"
    text = DOCKERFILE.read_text()
    assert f'VOLUME ["{settings.data_dir}"]' in text
    assert f"EXPOSE {settings.web_port}" in text
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE), "the image must not run as root"
    assert 'ENTRYPOINT ["signals-stream", "worker"]' in text
    assert "signals_stream.ops.healthcheck" in text


def test_workers_have_their_own_state_port_and_advertised_host() -> None:
    services = _compose()["services"]
    settings = {name: _as_settings(_environment(services[name])) for name in WORKERS}
    assert len({s.web_port for s in settings.values()}) == len(WORKERS)
    for name, worker in settings.items():
        # Another worker proxies reads to this name, which the compose network resolves.
        assert worker.advertised_web_host == name
        assert any(str(worker.web_port) in port for port in services[name]["ports"])
    volumes = [services[name]["volumes"] for name in WORKERS]
    assert all(len(v) == 1 and v[0].endswith(":/data") for v in volumes)
    assert len({v[0] for v in volumes}) == len(WORKERS)
    # Same app, same topics: they form one consumer group.
    shared = {"broker", "app_id", "input_topic", "partitions", "interventions_topic"}
    first, second = settings.values()
    assert {k: getattr(first, k) for k in shared} == {k: getattr(second, k) for k in shared}


def _faust_changelog_topics(env: dict[str, str]) -> dict[str, int]:
    """Changelog topic name -> partitions of the app's tables, from Faust itself (a fresh
    process: importing the app reads its settings from the environment)."""
    code = (
        "from signals_stream.worker import default_worker\n"
        "app = default_worker().app\n"
        "for table in app.tables.values():\n"
        "    print(table.changelog_topic.get_topic_name(), table.partitions)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **{k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}},
    )
    assert result.returncode == 0, result.stderr
    return {name: int(n) for name, n in (line.split() for line in result.stdout.splitlines())}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to run the script")
def test_topic_init_creates_every_topic_with_the_workers_partitions(tmp_path: Path) -> None:
    services = _compose()["services"]
    init = services["topic-init"]
    env = _environment(init)
    settings = _as_settings(env)
    assert (
        settings.model_dump()
        == _as_settings(
            {k: v for k, v in _environment(services["worker-1"]).items() if k in env}
        ).model_dump()
    )
    # Run the script as the container would, against a kafka-topics.sh that records its args.
    calls = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    script = (
        init["command"][0].replace("$$", "$").replace("/opt/kafka/bin/kafka-topics.sh", str(fake))
    )
    result = subprocess.run(
        [*init["entrypoint"], script], env={**env, "PATH": os.environ["PATH"]}, timeout=30
    )
    assert result.returncode == 0
    created: dict[str, tuple[int, bool]] = {}
    for line in calls.read_text().splitlines():
        args = line.split()
        assert args[args.index("--bootstrap-server") + 1] == ",".join(settings.bootstrap_servers)
        assert "--if-not-exists" in args
        replicas = args[args.index("--replication-factor") + 1]
        assert int(replicas) == settings.topic_replication_factor
        topic = args[args.index("--topic") + 1]
        created[topic] = (
            int(args[args.index("--partitions") + 1]),
            "cleanup.policy=compact" in args,
        )

    partitions = settings.partitions
    assert created[settings.input_topic] == (partitions, False)
    assert created[settings.bad_events_topic] == (partitions, False)
    assert created[settings.interventions_topic] == (partitions, False)
    assert created[f"{settings.app_id}-entity-events"] == (partitions, False)
    # Faust's own changelog names and partition counts for every table the app has today.
    changelogs = _faust_changelog_topics(env)
    assert changelogs, "the app defines no table"
    for topic, table_partitions in changelogs.items():
        assert created[topic] == (table_partitions, True), topic
    # The registry GlobalTable's log: one compacted partition.
    assert created[f"{settings.app_id}-registry-changelog"] == (1, True)


def _compose_binary() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(
    _compose_binary() is None,
    reason="docker-compose is not installed (Debian: apt-get install docker-compose)",
)
def test_docker_compose_config_accepts_the_file() -> None:
    binary = _compose_binary()
    assert binary is not None
    command = [*binary, "-f", str(COMPOSE), "config", "-q"]
    env = {k: v for k, v in os.environ.items() if k != "SIGNALS_API_TOKEN"}
    ok = subprocess.run(
        command, env={**env, "SIGNALS_API_TOKEN": "t"}, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    # Without a token the file refuses to start rather than run an API that refuses everyone.
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "SIGNALS_API_TOKEN" in missing.stderr
