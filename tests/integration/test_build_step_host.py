"""The build step and the runner all the way through, with a fake build root but the
host's real tools: ``twine check`` and the smoke test's ``pip install --target`` run for
real, as do the process-tree kills of :mod:`refinery.builder.proc` and a native session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fixtures.buildroot import PURE_SDIST, FakeRoot, FakeSession, node_for, ready_cache, run_step
from fixtures.sdists import write_sdist

from refinery.builder import native, proc
from refinery.builder.options import BuildOptions, RunOptions
from refinery.builder.proc import ProcResult
from refinery.builder.roots import Mounts
from refinery.builder.runner import BuildEvent, build_plan
from refinery.builder.tools import Tools
from refinery.core.cache import CacheRoot
from refinery.core.models import NodeStatus, Plan, Target
from refinery.store import Store


@pytest.fixture(autouse=True)
def no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    """No uv download; the uv path is tested with a fake home."""
    monkeypatch.setattr("refinery.builder.phases.ensure_uv", lambda tools, arch: None)


@pytest.fixture
def ready(tmp_path: Path) -> tuple[CacheRoot, Tools]:
    return ready_cache(tmp_path / "cache")


# --- step ----------------------------------------------------------------------------
def test_pure_package_builds_checks_and_smokes(
    tmp_path: Path, ready: tuple[CacheRoot, Tools]
) -> None:
    cache, tools = ready
    root = FakeRoot()
    outcome = run_step(
        tmp_path,
        root,
        cache,
        PURE_SDIST,
        options={"extra_index": ("https://x.example/simple",)},
        env={"CFLAGS": "-O1"},
        constraints=("cython<3",),
    )
    assert outcome.status is NodeStatus.BUILT, outcome.reason
    assert outcome.wheel is not None and outcome.wheel.name == "demo-1.0-py3-none-any.whl"
    assert outcome.smoke is not None and outcome.smoke.modules == ("demo",)
    build_call = next(c for c in root.calls if "--wheel" in c[1])
    env = build_call[2]
    assert env["CFLAGS"] == "-O1"
    assert env["PIP_CONSTRAINT"].endswith("constraints.txt")
    assert env["PIP_FIND_LINKS"].split()[0] == str(tools.seed)
    assert env["PIP_EXTRA_INDEX_URL"].split()[0] == "https://x.example/simple"
    assert env["PIP_CACHE_DIR"] == str(cache.pip)
    # the wheel's build, the SBOM's questions to the build root, the import smoke test
    assert [c[0] for c in root.calls] == ["build", "build", "smoke"]
    assert "refinery-sbom" in root.calls[1][1]
    assert outcome.durations.total >= outcome.durations.build


def test_uv_installer_when_available(
    tmp_path: Path, ready: tuple[CacheRoot, Tools], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, tools = ready
    home = tools.uv_dir("s390x")
    monkeypatch.setattr("refinery.builder.phases.ensure_uv", lambda t, arch: t.uv_dir(arch))
    root = FakeRoot()
    outcome = run_step(tmp_path, root, cache, PURE_SDIST, constraints=("cython<3",))
    assert outcome.status is NodeStatus.BUILT, outcome.reason
    _purpose, argv, env = next(c for c in root.calls if "--wheel" in c[1])
    assert argv[3] == f"{tools.site}:{home}"
    assert argv[4:7] == ("--wheel", "--installer", "uv")
    assert env["UV_FIND_LINKS"] == str(tools.seed)
    assert env["UV_CACHE_DIR"] == str(cache.pip) + "/uv"
    assert env["UV_CONSTRAINT"] == env["PIP_CONSTRAINT"]


# --- proc ----------------------------------------------------------------------------
def test_run_streams_and_logs(tmp_path: Path) -> None:
    seen: list[str] = []
    log = tmp_path / "logs" / "a.log"
    result = proc.run(["sh", "-c", "echo one; echo two >&2; exit 3"], on_line=seen.append, log=log)
    assert result.exit_code == 3 and not result.ok
    assert sorted(seen) == ["one", "two"]
    assert "one" in log.read_text() and log.read_text().startswith("$ sh -c")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_run_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; sleep 300"], timeout=1.0)
    assert result.timed_out and result.exit_code == -9
    assert time.monotonic() - started < 10
    assert "timed out" in result.tail[-1]
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


# --- native session ------------------------------------------------------------------
def test_native_session_runs_with_its_own_tmpdir_and_the_given_host_env(tmp_path: Path) -> None:
    root = native.NativeRoot(machine="s390x", env={"PATH": os.environ["PATH"], "LANG": "C.X"})
    mounts = Mounts(work=tmp_path, pip_cache=tmp_path, tools=tmp_path)
    with root.build_session(mounts) as session:
        result = session.run(["sh", "-c", 'echo "$TMPDIR"; echo "${LANG}:${HOME:-none}"'])
    assert result.ok
    assert "refinery-native." in result.tail[-2]
    assert result.tail[-1] == "C.X:none"  # only what the caller passed is kept


# --- runner --------------------------------------------------------------------------
def test_build_plan_records_waves_and_offers_wheels(
    tmp_path: Path, ready: tuple[CacheRoot, Tools]
) -> None:
    cache, _tools = ready
    first = write_sdist(tmp_path / "in", "base", "1.0", PURE_SDIST)
    second = write_sdist(tmp_path / "in", "app", "1.0", PURE_SDIST)
    missing = node_for(second, "app", python="3.13", wave=1)
    nodes = (node_for(first, "base", wave=0), node_for(second, "app", wave=1), missing)
    plan = Plan(
        "p1", ("r.txt",), (Target(),), nodes, ((nodes[0].key,), (nodes[1].key, missing.key)), {}
    )
    store = Store.open(str(tmp_path / "store"))
    root = FakeRoot()
    events: list[BuildEvent] = []
    build = BuildOptions(cache=cache)
    summary = build_plan(
        plan,
        store,
        root,
        RunOptions(build=build, workdir=tmp_path / "run", jobs=2),
        on_event=events.append,
    )
    assert root.prepared
    assert summary.counts() == {"built": 2, "missing": 1}
    assert summary.ok
    # the wave-1 build saw the wave-0 wheel in its find-links directory
    assert ["base-1.0-py3-none-any.whl"] in root.seen_links
    record = store.get_record("base", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    assert record.wheel is not None and record.wheel.filename == "base-1.0-py3-none-any.whl"
    (attempt,) = record.attempts
    assert attempt.n == 1 and attempt.backend == "fake" and attempt.image == "fake@sha256:0"
    assert attempt.exit == 0 and attempt.status == "built" and attempt.ended
    assert attempt.log == "logs/base/1.0/3.11/1.log"
    assert store.blobs.get(attempt.log) is not None
    assert [e.kind for e in record.events] == ["leased", "building", "built"]
    assert record.lease_expires is None
    gone = store.get_record("app", "1.0", "3.13")
    assert gone is not None and gone.status is NodeStatus.MISSING
    kinds = [e.kind for e in events]
    assert kinds.count("wave") == 2 and "line" in kinds and kinds[-1] == "finished"
    # a second run finds the wheel built and does not lease again
    again = build_plan(
        plan,
        store,
        root,
        RunOptions(build=build, only=(nodes[0].key,), workdir=tmp_path / "run2"),
    )
    assert again.results[0].status is NodeStatus.BUILT
    assert "already built" in again.results[0].reason


def test_a_crashing_build_is_recorded_and_the_run_goes_on(
    tmp_path: Path, ready: tuple[CacheRoot, Tools], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, _tools = ready
    bad = write_sdist(tmp_path / "in", "bad", "1.0", PURE_SDIST)
    good = write_sdist(tmp_path / "in", "good", "1.0", PURE_SDIST)
    nodes = (node_for(bad, "bad"), node_for(good, "good"))
    plan = Plan("p3", (), (Target(),), nodes, ((nodes[0].key, nodes[1].key),), {})
    store = Store.open(str(tmp_path / "store"))
    root = FakeRoot()
    real_run = FakeSession.run

    def run(self: FakeSession, argv: Sequence[str], **kwargs: Any) -> ProcResult:
        if "--wheel" in argv and "bad-1.0" in argv[-1]:
            raise OSError("disk full")
        return real_run(self, argv, **kwargs)

    monkeypatch.setattr(FakeSession, "run", run)
    options = RunOptions(build=BuildOptions(cache=cache), workdir=tmp_path / "run")
    summary = build_plan(plan, store, root, options)
    assert summary.counts() == {"failed": 1, "built": 1}
    record = store.get_record("bad", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.FAILED
    assert record.reason == "internal error: disk full"
    log = store.blobs.get("logs/bad/1.0/3.11/1.log")
    assert log is not None and b"OSError: disk full" in log[0]
