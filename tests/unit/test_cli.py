"""The command line as users run it (subprocesses; no broker needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("mode", "agents"),
    # lean: the input is read by a plain consumer (agents/lean_ingest.py), not a Faust agent
    [("faust", {"@ingest", "@entities"}), ("lean", {"@entities"})],
)
def test_faust_finds_the_app_and_its_agents(mode: str, agents: set[str]) -> None:
    env = {"SIGNALS_INGEST_MODE": mode}
    result = _run("faust", "-A", "signals_stream.worker", "--json", "agents", env=env)
    assert result.returncode == 0, result.stderr
    names = {row["name"] for row in orjson.loads(result.stdout)}
    assert names == agents


def test_an_invalid_setting_stops_the_worker_with_one_line_naming_it() -> None:
    result = _run("signals_stream.cli", "worker", env={"SIGNALS_WEB_PORT": "nope"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SIGNALS_WEB_PORT" in lines[0]


def test_a_bad_definitions_file_stops_the_worker_with_one_line(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "defs.yaml"
    bad.write_text(
        "attribute_groups:\n  - name: g\n    attribute_key: {name: domain_userid}\n"
        "    attributes: [{name: a, type: int32, aggregation: no_such_thing}]\n"
    )
    result = _run("signals_stream.cli", "worker", "--definitions", str(bad))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "aggregation" in lines[0], result.stderr


def test_generate_writes_valid_enriched_tsv() -> None:
    result = _run("signals_stream.cli", "generate", "--count", "50", "--users", "5", "--seed", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 50
    from signals_stream.events.parse import parse_record

    assert all(parse_record(line.encode()).event_id for line in lines)
