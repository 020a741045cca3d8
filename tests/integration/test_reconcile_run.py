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

from fixtures.actions import run_job
from fixtures.leases import lease_store

from refinery.core.clock import stamp
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


def test_reconcile_workflow_requeues_and_redispatches(
    tmp_path: Path, fixture_index: str, httpserver: Any
) -> None:
    store = lease_store(tmp_path)
    # leases in the store expired relative to the real clock too
    expire_at = stamp(datetime.now(UTC) - timedelta(minutes=1))
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
