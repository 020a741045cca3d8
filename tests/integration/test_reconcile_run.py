"""The ``status`` command and reconcile.yml's own step, run for real: subprocesses of the
CLI against a local store, the fixture index and a fake GitHub that records the
re-dispatch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fixtures.actions import github_context, run_job
from fixtures.leases import lease_store

from refinery.core.clock import stamp
from refinery.core.models import NodeStatus, Plan, PlanNode, Target
from refinery.gitops.reconcile import status_counts
from refinery.store import Store


def test_status_command(tmp_path: Path) -> None:
    lease_store(tmp_path)
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


def _fake_github(httpserver: Any, status: int = 204) -> list[tuple[str, str, Any]]:
    calls: list[tuple[str, str, Any]] = []

    def handler(request: Any) -> Any:
        from werkzeug import Response

        calls.append((request.method, request.path, json.loads(request.get_data() or b"null")))
        body = "" if status == 204 else json.dumps({"message": "Server Error"})
        return Response(body, status, content_type="application/json")

    httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
    return calls


def _store_with_a_plan(tmp_path: Path) -> Store:
    """The lease store, its leases expired by the real clock, and the plan ``p1`` that
    cybuild and x86only came from (legacy names no plan)."""
    store = lease_store(tmp_path)
    expire_at = stamp(datetime.now(UTC) - timedelta(minutes=1))
    store.update_record(
        "x86only", "1.0", "3.11", lambda r: r.evolve(lease_expires=expire_at, plan_id="p1")
    )
    keys = ("cybuild==1.0@3.11", "x86only==1.0@3.11")
    nodes = tuple(
        PlanNode(k.split("==")[0], "1.0", "3.11", NodeStatus.PENDING, "", True, wave=0)
        for k in keys
    )
    store.put_plan(
        Plan("p1", ("requirements/x.txt",), (Target(),), nodes, (keys,), {"include": []})
    )
    return store


def _reconcile(tmp_path: Path, fixture_index: str, httpserver: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "REFINERY_"))}
    env.update(
        GITHUB_API_URL=httpserver.url_for("/api/v3"),
        GITHUB_REPOSITORY="octo/farm",
        REFINERY_GITHUB_RETRY="0",
        REFINERY_INDEX_URL=fixture_index,
        REFINERY_CACHE=str(tmp_path / "cache"),
    )
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_job(
        "reconcile.yml",
        "reconcile",
        workdir=work,
        host_env=env,
        context={
            "vars": {"REFINERY_STORE": str(tmp_path / "store")},
            "github": github_context("schedule"),  # its payload has no `repository`
            "inputs": {},
        },
        uses=lambda *_: None,
    )


def test_scheduled_reconcile_redispatches_from_the_plan_then_requeues(
    tmp_path: Path, fixture_index: str, httpserver: Any
) -> None:
    _store_with_a_plan(tmp_path)
    calls = _fake_github(httpserver)
    result = _reconcile(tmp_path, fixture_index, httpserver)
    assert result.status == "success", [(s.name, s.stderr) for s in result.steps]
    (dispatch,) = [c for c in calls if c[0] == "POST"]
    assert dispatch[1].endswith("/actions/workflows/main.yml/dispatches")
    assert dispatch[2]["ref"] == "main"  # github.ref_name: the default branch on schedule
    assert dispatch[2]["inputs"] == {
        "plan": "p1",
        "wave": "0",
        "nodes": "cybuild==1.0@3.11 x86only==1.0@3.11",
        "fixes": "",
        "backend": "",
    }
    assert "s390xpkg==2.0@3.11" in result.summary and "3 expired lease(s)" in result.summary
    store = Store.open(str(tmp_path / "store"))
    assert status_counts(store)["nodes"] == {"pending": 3, "built": 1}
    legacy = store.get_record("legacy", "0.5", "3.11")
    assert legacy is not None and "no stored plan" in legacy.events[-1].message


def test_a_failed_dispatch_leaves_the_leases_for_the_next_reconcile(
    tmp_path: Path, fixture_index: str, httpserver: Any
) -> None:
    """Requeueing before the dispatch lost the nodes when it failed: pending, with no
    lease, nothing would ever dispatch them again."""
    _store_with_a_plan(tmp_path)
    _fake_github(httpserver, status=500)
    result = _reconcile(tmp_path, fixture_index, httpserver)
    assert result.status == "failure"
    store = Store.open(str(tmp_path / "store"))
    for name, version in (("cybuild", "1.0"), ("x86only", "1.0")):
        record = store.get_record(name, version, "3.11")
        assert record is not None and record.lease_expired(), name
