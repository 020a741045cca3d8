"""Reconcile: expired leases back to pending, upstream s390x wheels noticed, status counts;
and reconcile.yml's own step run against a local store, the fixture index and a fake
GitHub that records the re-dispatch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fixtures.actions import run_job

from refinery.core.models import Attempt, BuildRecord, InputRecord, InputStatus, NodeStatus
from refinery.gitops.reconcile import expire_leases, status_counts, upstream_wheels
from refinery.store.ledger import Store
from refinery.upstream.simple import IndexClient

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _stamp(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def _put(store: Store, name: str, version: str, status: NodeStatus, **kw: Any) -> None:
    store.update_record(
        name, version, "3.11", lambda _r: BuildRecord(name, version, "3.11", status, **kw)
    )


def _store(tmp_path: Path) -> Store:
    store = Store.open(str(tmp_path / "store"))
    past, future = _stamp(NOW - timedelta(minutes=5)), _stamp(NOW + timedelta(hours=1))
    _put(
        store,
        "cybuild",
        "1.0",
        NodeStatus.BUILDING,
        lease_expires=past,
        plan_id="p1",
        attempts=(Attempt(1, _stamp(NOW - timedelta(hours=7))),),
    )
    _put(store, "legacy", "0.5", NodeStatus.LEASED, lease_expires=past)
    _put(store, "x86only", "1.0", NodeStatus.LEASED, lease_expires=future)
    _put(store, "s390xpkg", "2.0", NodeStatus.BUILT)
    store.put_input(
        InputRecord("requirements-x.txt", "requirements/x.txt", "c" * 40, InputStatus.QUEUED, "p1")
    )
    return store


@pytest.mark.unit
def test_expired_leases_go_back_to_pending_with_an_event(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert [r.key for r in expire_leases(store, now=NOW, dry_run=True)] == [
        "cybuild==1.0@3.11",
        "legacy==0.5@3.11",
    ]
    assert store.get_record("cybuild", "1.0", "3.11").status is NodeStatus.BUILDING  # type: ignore[union-attr]
    done = expire_leases(store, now=NOW)
    assert [(r.key, r.was, r.next_attempt) for r in done] == [
        ("cybuild==1.0@3.11", "building", 2),
        ("legacy==0.5@3.11", "leased", 1),
    ]
    record = store.get_record("cybuild", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.PENDING
    assert record.lease_expires is None and record.events[-1].kind == "lease-expired"
    still = store.get_record("x86only", "1.0", "3.11")
    assert still is not None and still.status is NodeStatus.LEASED
    assert expire_leases(store, now=NOW) == []  # idempotent


@pytest.mark.unit
def test_a_job_that_finishes_meanwhile_wins(tmp_path: Path) -> None:
    store = _store(tmp_path)
    real_update = store.update_record

    def racing(name: str, version: str, python: str, change: Any) -> BuildRecord:
        if name == "legacy":  # the build job finishes just before reconcile writes
            finish = lambda r: r.evolve(status=NodeStatus.BUILT, lease_expires=None)  # noqa: E731
            real_update(name, version, python, finish)
        return real_update(name, version, python, change)

    store.update_record = racing  # type: ignore[method-assign]
    done = expire_leases(store, now=NOW)
    assert [r.key for r in done] == ["cybuild==1.0@3.11"]
    assert store.get_record("legacy", "0.5", "3.11").status is NodeStatus.BUILT  # type: ignore[union-attr]


@pytest.mark.unit
def test_upstream_s390x_wheels_are_noticed(tmp_path: Path, fixture_index: str) -> None:
    store = _store(tmp_path)
    index = IndexClient(fixture_index, cache_dir=tmp_path / "cache")
    found = list(upstream_wheels(store.records(), index))
    assert [(u.key, u.status) for u in found] == [("s390xpkg==2.0@3.11", "built")]
    assert found[0].filename.endswith("manylinux2014_s390x.whl")


@pytest.mark.unit
def test_status_counts(tmp_path: Path) -> None:
    counts = status_counts(_store(tmp_path))
    assert counts == {"nodes": {"leased": 2, "building": 1, "built": 1}, "inputs": {"queued": 1}}
    proc = subprocess.run(
        [sys.executable, "-m", "refinery", "--store", str(tmp_path / "store"), "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["nodes"]["built"] == 1
    assert json.loads(proc.stdout)["schema"] == 1
    text = subprocess.run(
        [sys.executable, "-m", "refinery", "--store", str(tmp_path / "store"), "status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "nodes: 4 (2 leased, 1 building, 1 built)" in text


@pytest.mark.integration
def test_reconcile_workflow_requeues_and_redispatches(
    tmp_path: Path, fixture_index: str, httpserver: Any
) -> None:
    store = _store(tmp_path)
    # leases in the store expired relative to the real clock too
    expire_at = _stamp(datetime.now(UTC) - timedelta(minutes=1))
    store.update_record("x86only", "1.0", "3.11", lambda r: r.evolve(lease_expires=expire_at))
    calls: list[tuple[str, str, Any]] = []

    def handler(request: Any) -> Any:
        from werkzeug import Response

        calls.append((request.method, request.path, json.loads(request.get_data() or b"null")))
        return Response("", 204)

    httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REFINERY_"))}
    env.update(
        GITHUB_API_URL=httpserver.url_for("/api/v3"),
        GITHUB_REPOSITORY="octo/farm",
        REFINERY_GITHUB_RETRY="0",
        REFINERY_INDEX_URL=fixture_index,
        REFINERY_CACHE=str(tmp_path / "cache"),
    )
    work = tmp_path / "work"
    work.mkdir()
    result = run_job(
        "reconcile.yml",
        "reconcile",
        workdir=work,
        host_env=env,
        context={
            "vars": {"REFINERY_STORE": str(tmp_path / "store")},
            "github": {"token": "t0ken", "event": {"repository": {"default_branch": "main"}}},
            "inputs": {},
        },
        uses=lambda *_: None,
    )
    assert result.status == "success", [(s.name, s.stderr) for s in result.steps]
    (dispatch,) = calls
    assert dispatch[0] == "POST" and dispatch[1].endswith("/actions/workflows/build.yml/dispatches")
    assert dispatch[2]["ref"] == "main"
    assert dispatch[2]["inputs"]["nodes"] == "cybuild==1.0@3.11 legacy==0.5@3.11 x86only==1.0@3.11"
    assert dispatch[2]["inputs"]["attempt"] == "2"
    assert "s390xpkg==2.0@3.11" in result.summary and "3 expired lease(s)" in result.summary
    counts = status_counts(Store.open(str(tmp_path / "store")))
    assert counts["nodes"] == {"pending": 3, "built": 1}
