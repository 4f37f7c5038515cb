"""The composition root: building a worker has no side effects and shares nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agents.rows import write_rows
from signals_stream.worker import build_worker
from tests.inprocess.conftest import RecordingProducer, worker_settings
from tests.inprocess.test_entity_rows import _lines, _pending

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_worker_module_builds_nothing() -> None:
    # An invalid setting would stop a build: importing must not read it.
    code = (
        "import sys, signals_stream.worker as w\n"
        "assert w.default_worker.cache_info().currsize == 0\n"
        "assert 'signals_stream.app' in sys.modules and 'agents.entities' in sys.modules\n"
    )
    env = {"SIGNALS_WEB_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 0


def test_faust_reads_the_app_attribute_lazily_and_an_invalid_setting_is_one_line() -> None:
    code = "import signals_stream.worker as w\nw.app\n"
    env = {"SIGNALS_WEB_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, timeout=60, capture_output=True, text=True
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("signals-stream: ") and "SIGNALS_WEB_PORT" in line


async def test_two_workers_in_one_process_share_no_state(tmp_path: Path) -> None:
    first = build_worker(worker_settings(tmp_path / "a", app_id="first"))
    second = build_worker(worker_settings(tmp_path / "b", app_id="second", definitions=None))
    for state in (first, second):
        state.app.producer = RecordingProducer()  # type: ignore[assignment]
    await write_rows(first, _pending(first, _lines(50)))

    assert first.stats.applied > 0 and second.stats.applied == 0
    assert first.live is not second.live and first.hub is not second.hub
    assert first.live.catalog.programs and not second.live.catalog.programs
    assert first.rows.changelog_topic == "first-entity-state-changelog"
    assert second.rows.changelog_topic == "second-entity-state-changelog"
