"""The store side of one-wave-per-run GitOps: the read-only base beneath a build job's
staging store, the snapshot that fills it, the planned-commit mark, and what runs after
a wave (re-dispatch within a per-node budget, or the next wave)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from refinery.core.errors import ConflictError, InputError
from refinery.core.models import (
    Attempt,
    BuildRecord,
    NodeStatus,
    Plan,
    PlanNode,
    Target,
)
from refinery.gitops.redispatch import (
    REDISPATCH_EVENT,
    classify,
    next_step,
    requeue,
)
from refinery.store import LocalBlobStore, Store
from refinery.store.ledger import PlannedMark
from refinery.store.overlay import OverlayBlobStore
from refinery.store.publish import publish
from refinery.store.snapshot import snapshot

KEYS = ("a==1.0@3.11", "b==1.0@3.11", "c==1.0@3.11")


def _plan(waves: tuple[tuple[str, ...], ...] = ((KEYS[0],), (KEYS[1], KEYS[2]))) -> Plan:
    nodes = tuple(
        PlanNode(k.split("==")[0], "1.0", "3.11", NodeStatus.PENDING, "", True, wave=w)
        for w, keys in enumerate(waves)
        for k in keys
    )
    matrix = {
        "include": [{"shard": w, "wave": w, "nodes": list(keys)} for w, keys in enumerate(waves)]
    }
    return Plan("p1", ("requirements/x.txt",), (Target(),), nodes, waves, matrix)


def _put(store: Store, name: str, status: NodeStatus, **kw: Any) -> None:
    store.update_record(
        name, "1.0", "3.11", lambda _r: BuildRecord(name, "1.0", "3.11", status, **kw)
    )


def _wheel(tmp_path: Path, name: str) -> Path:
    from fixtures.pyindex import Dist
    from fixtures.wheels import make_wheel

    filename, data, _ = make_wheel(Dist(name, "1.0"), "py3-none-any")
    path = tmp_path / filename
    path.write_bytes(data)
    return path


# --- the overlay: reads fall through, writes stay above ---------------------------------
def test_attempts_continue_from_the_base_and_only_the_job_s_own_output_is_staged(
    tmp_path: Path,
) -> None:
    store = Store.open(str(tmp_path / "store"))
    first = Attempt(1, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", status="failed")
    _put(store, "b", NodeStatus.FAILED, attempts=(first,), plan_id="p1")
    store.put_log("b", "1.0", "3.11", 1, b"attempt 1 log\n")
    ref = store.put_wheel(_wheel(tmp_path, "a"))
    _put(store, "a", NodeStatus.BUILT, wheel=ref)
    store.put_plan(_plan())
    base = Store.open(str(tmp_path / "base"))
    done = snapshot(store, base, plan_id="p1")
    assert (done.records, done.wheels) == (2, 1)
    upper = LocalBlobStore(tmp_path / "staging")
    job = Store(OverlayBlobStore(upper, base.blobs))
    # what the runner does: the next attempt is numbered from the record it reads
    record = job.update_record(
        "b",
        "1.0",
        "3.11",
        lambda r: r.evolve(
            status=NodeStatus.BUILDING,
            attempts=(*r.attempts, Attempt(len(r.attempts) + 1, "2026-01-02T00:00:00Z")),
        ),
    )
    assert [a.n for a in record.attempts] == [1, 2]
    job.put_log("b", "1.0", "3.11", 2, b"attempt 2 log\n")
    assert job.get_wheel(ref) is not None  # wave a's wheel, from the base
    staged = Store.open(str(tmp_path / "staging"))
    assert [r.key for r in staged.records()] == ["b==1.0@3.11"]  # not a's record again
    assert not list(staged.blobs.list("wheels/"))  # nor a's wheel
    assert sorted(staged.blobs.list("logs/")) == ["logs/b/1.0/3.11/2.log"]
    assert base.get_record("b", "1.0", "3.11").status is NodeStatus.FAILED
    result = publish(staged, store)
    assert result.log_conflicts == ()
    merged = store.get_record("b", "1.0", "3.11")
    assert merged is not None and [a.n for a in merged.attempts] == [1, 2]


def test_overlay_compare_and_swap(tmp_path: Path) -> None:
    base, upper = LocalBlobStore(tmp_path / "base"), LocalBlobStore(tmp_path / "up")
    base.put("records/x.json", b"1")
    overlay = OverlayBlobStore(upper, base)
    data, tag = overlay.get("records/x.json")  # type: ignore[misc]
    assert data == b"1"
    with pytest.raises(ConflictError):
        overlay.put_if_match("records/x.json", b"2", None)  # it exists (below)
    new = overlay.put_if_match("records/x.json", b"2", tag)
    with pytest.raises(ConflictError):
        overlay.put_if_match("records/x.json", b"3", tag)  # lost the race: stale tag
    overlay.put_if_match("records/x.json", b"3", new)
    assert overlay.get("records/x.json")[0] == b"3"  # type: ignore[index]
    assert base.get("records/x.json")[0] == b"1"  # type: ignore[index]
    assert overlay.put_if_absent("records/x.json", b"4") is False
    assert sorted(overlay.list("records/")) == ["records/x.json"]


# --- the last planned commit ---------------------------------------------------------
def test_the_planned_mark_only_moves_forward(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    assert store.put_planned(PlannedMark("c2", "p2", "2026-01-02T00:00:00Z"))
    assert not store.put_planned(PlannedMark("c1", "p1", "2026-01-01T00:00:00Z"))  # late publish
    assert store.get_planned() == PlannedMark("c2", "p2", "2026-01-02T00:00:00Z")
    staging = Store.open(str(tmp_path / "staging"))
    staging.put_planned(PlannedMark("c3", "p3", "2026-01-03T00:00:00Z"))
    publish(staging, store)
    assert store.get_planned().commit == "c3"


def test_a_snapshot_is_never_empty_and_carries_every_record_for_a_new_plan(
    tmp_path: Path,
) -> None:
    empty = snapshot(Store.open(str(tmp_path / "none")), Store.open(str(tmp_path / "b1")))
    assert empty.records == 0 and list((tmp_path / "b1").rglob("*.json"))
    store = Store.open(str(tmp_path / "store"))
    _put(store, "a", NodeStatus.BUILT)
    _put(store, "z", NodeStatus.FAILED)
    done = snapshot(store, Store.open(str(tmp_path / "b2")))
    assert done.records == 2 and done.plan is None


# --- after a wave -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("record", "why", "backend"),
    [
        (None, "no record", ""),
        (BuildRecord("b", "1.0", "3.11", NodeStatus.BUILDING), "left building", ""),
        (
            BuildRecord(
                "b", "1.0", "3.11", NodeStatus.FAILED, reason="attempt timed out after 3600 s"
            ),
            "runner's fault",
            "",
        ),
        (
            BuildRecord(
                "b", "1.0", "3.11", NodeStatus.FAILED, reason="OSError: No space left on device"
            ),
            "runner's fault",
            "",
        ),
        (
            BuildRecord(
                "b",
                "1.0",
                "3.11",
                NodeStatus.FAILED,
                reason="cross-specific: the build runs target binaries; needs emulation",
                attempts=(Attempt(1, "t", backend="cross"),),
            ),
            "needs emulation",
            "rootfs",
        ),
    ],
)
def test_what_a_fresh_runner_or_another_backend_fixes(
    record: BuildRecord | None, why: str, backend: str
) -> None:
    found = classify(record)
    assert found is not None and why in found.why and found.backend == backend


def test_a_package_s_own_failure_is_not_redispatched() -> None:
    record = BuildRecord("b", "1.0", "3.11", NodeStatus.FAILED, reason="error: foo.h: No such file")
    assert classify(record) is None
    assert classify(BuildRecord("b", "1.0", "3.11", NodeStatus.BUILT)) is None


def test_redispatch_within_the_budget_then_the_next_wave(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    plan = _plan()
    store.put_plan(plan)
    _put(store, "a", NodeStatus.BUILT)
    step = next_step(store, plan, 0)
    assert step.redispatch == () and step.next_wave == 1
    _put(store, "b", NodeStatus.BUILDING, lease_expires="2099-01-01T00:00:00Z")  # job died
    _put(store, "c", NodeStatus.FAILED, reason="error: missing header")
    step = next_step(store, plan, 1)
    assert [r.key for r in step.redispatch] == ["b==1.0@3.11"] and step.next_wave is None
    assert step.final == ("c==1.0@3.11",)
    requeue(store, plan, step.redispatch, "https://github.com/o/r/actions/runs/5")
    b = store.get_record("b", "1.0", "3.11")
    assert b is not None and b.status is NodeStatus.PENDING and b.lease_expires is None
    assert b.events[-1].kind == REDISPATCH_EVENT and "/actions/runs/5" in b.events[-1].message
    # the dispatched run found the runner lost again, twice: the budget (2) ends it
    for _ in range(2):
        store.update_record("b", "1.0", "3.11", lambda r: r.evolve(status=NodeStatus.LEASED))
        step = next_step(store, plan, 1, only=["b==1.0@3.11"])
        if step.redispatch:
            requeue(store, plan, step.redispatch)
    assert step.exhausted == ("b==1.0@3.11",) and step.redispatch == ()
    assert step.next_wave is None  # the last wave
    events = store.get_record("b", "1.0", "3.11").events
    assert sum(e.kind == REDISPATCH_EVENT for e in events) == 2


def test_a_ten_wave_plan_advances_wave_by_wave(tmp_path: Path) -> None:
    waves = tuple((f"n{w}==1.0@3.11",) for w in range(10))
    plan = _plan(waves)
    store = Store.open(str(tmp_path / "store"))
    reached = [0]
    while True:
        key = plan.waves[reached[-1]][0]
        _put(store, key.split("==")[0], NodeStatus.BUILT)
        step = next_step(store, plan, reached[-1])
        if step.next_wave is None:
            break
        reached.append(step.next_wave)
    assert reached == list(range(10))


def test_wave_matrix_of_the_stored_plan() -> None:
    from refinery.cli.gitops import _wave_matrix

    plan = _plan()
    assert _wave_matrix(plan, 1, ()) == {
        "include": [{"shard": 1, "wave": 1, "nodes": ["b==1.0@3.11", "c==1.0@3.11"]}]
    }
    assert _wave_matrix(plan, 1, ["c==1.0@3.11"])["include"][0]["nodes"] == ["c==1.0@3.11"]
    with pytest.raises(InputError, match="not in wave 0"):
        _wave_matrix(plan, 0, ["c==1.0@3.11"])
    with pytest.raises(InputError, match="has 2 wave"):
        _wave_matrix(plan, 5, ())


# --- live state: a wave's leases published as it starts ----------------------------------
def test_announced_leases_show_the_run_and_never_hide_what_the_wave_built(tmp_path: Path) -> None:
    from refinery.gitops.live import ANNOUNCED_EVENT, announce

    store = Store.open(str(tmp_path / "store"))
    plan = _plan()
    run = "https://github.com/o/r/actions/runs/7/attempts/1"
    _put(store, "c", NodeStatus.FAILED, reason="an older catalog", updated="2000-01-01T00:00:00Z")
    announced = Store.open(str(tmp_path / "announce"))
    keys = announce(announced, plan, plan.waves[1], run, 3600)
    assert keys == ["b==1.0@3.11", "c==1.0@3.11"]
    publish(announced, store)  # the announce-publish job, as the wave starts
    c = store.get_record("c", "1.0", "3.11")  # a finished record is never taken back …
    assert c is not None and c.status is NodeStatus.FAILED
    assert c.events[-1].kind == ANNOUNCED_EVENT  # … its timeline says it is being rebuilt
    b = store.get_record("b", "1.0", "3.11")
    assert b is not None and b.status is NodeStatus.LEASED and b.run_url == run
    assert b.events[-1].kind == ANNOUNCED_EVENT and run in b.events[-1].message
    # the wave's own publish: b's job built it (a finished record wins over the lease) …
    staging = Store.open(str(tmp_path / "staging"))
    _put(staging, "b", NodeStatus.BUILT)
    publish(staging, store)
    b = store.get_record("b", "1.0", "3.11")
    assert b is not None and b.status is NodeStatus.BUILT
    assert ANNOUNCED_EVENT in [e.kind for e in b.events]  # the timeline keeps the lease
    # … and the announce, published late, does not take it back
    publish(announced, store)
    assert store.get_record("b", "1.0", "3.11").status is NodeStatus.BUILT  # type: ignore[union-attr]
    # a wave whose job never reported leaves the lease: advance re-dispatches the node
    store2 = Store.open(str(tmp_path / "store2"))
    publish(announced, store2)
    step = next_step(store2, plan, 1)
    assert [r.key for r in step.redispatch] == ["b==1.0@3.11", "c==1.0@3.11"]
    assert "left leased" in step.redispatch[0].why
