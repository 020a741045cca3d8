"""Reconcile: expired leases back to pending, upstream s390x wheels noticed, status counts.
The ``status`` command and reconcile.yml's own step, run for real, are in
``tests/integration/test_reconcile_run.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixtures.leases import NOW, lease_store

from refinery.core.models import BuildRecord, NodeStatus
from refinery.gitops.reconcile import expire_leases, status_counts, upstream_wheels
from refinery.upstream.simple import IndexClient


def test_expired_leases_go_back_to_pending_with_an_event(tmp_path: Path) -> None:
    store = lease_store(tmp_path)
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


def test_a_job_that_finishes_meanwhile_wins(tmp_path: Path) -> None:
    store = lease_store(tmp_path)
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


def test_upstream_s390x_wheels_are_noticed(tmp_path: Path, fixture_index: str) -> None:
    store = lease_store(tmp_path)
    index = IndexClient(fixture_index, cache_dir=tmp_path / "cache")
    found = list(upstream_wheels(store.records(), index))
    assert [(u.key, u.status) for u in found] == [("s390xpkg==2.0@3.11", "built")]
    assert found[0].filename.endswith("manylinux2014_s390x.whl")


def test_status_counts(tmp_path: Path) -> None:
    counts = status_counts(lease_store(tmp_path))
    assert counts == {"nodes": {"leased": 2, "building": 1, "built": 1}, "inputs": {"queued": 1}}
