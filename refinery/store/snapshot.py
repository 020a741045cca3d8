"""What a build job reads from the store, copied into a folder (``refinery snapshot``).

Jobs that may run package code hold no credentials, so a job that only runs our code
(GitHub Actions' ``prepare``) copies out what they need into a folder store, handed over
as one artifact and used read-only (the plan job plans against it; build jobs read it
beneath their staging store, :mod:`refinery.store.overlay`). For a new plan: every
record (the planner's lookups) and the last planned commit. For a stored plan:

* the plan the nodes come from (a re-dispatch rebuilds exactly those nodes, from the
  plan that produced them — never a fresh resolution);
* the record of every node of the plan (attempt numbers continue from them; built ones
  give the wheels of earlier waves to later ones);
* the wheels (and their metadata) of the plan's built or cached nodes;
* the last planned commit (a push plans what changed since then);
* a note of where and when it was taken (so the folder is never empty: an empty
  folder uploads no artifact, and the jobs that download it would fail).

Only store-shaped copies: nothing here interprets a record beyond "has a wheel".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from refinery.core.clock import now
from refinery.core.models import BuildRecord, NodeStatus, Plan
from refinery.store import layout
from refinery.store.ledger import Store


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    plan: Plan | None
    records: int
    wheels: int


_USABLE = (NodeStatus.BUILT, NodeStatus.CACHED)


def snapshot(store: Store, target: Store, *, plan_id: str | None = None) -> SnapshotResult:
    """Copy the marker and, with ``plan_id``, that plan with its nodes' records and the
    wheels of those built into ``target``; without, every record (what a new plan
    looks up). Idempotent."""
    mark = store.get_planned()
    if mark is not None:
        target.put_planned(mark)
    about = {"source": store.url, "plan_id": plan_id or "", "at": now()}
    target.blobs.put(layout.SNAPSHOT, json.dumps(about, indent=1).encode())  # never empty
    if not plan_id:
        return SnapshotResult(None, _copy_records(store, target), 0)
    plan = store.get_plan(plan_id)
    if plan is None:
        return SnapshotResult(None, 0, 0)
    target.put_plan(plan)
    records = wheels = 0
    for node in plan.nodes:
        got = store.blobs.get(layout.record_key(node.name, node.version, node.python))
        if got is None:
            continue
        target.blobs.put(layout.record_key(node.name, node.version, node.python), got[0])
        records += 1
        record = BuildRecord.from_json(json.loads(got[0]))
        if record.wheel is None or record.status not in _USABLE:
            continue
        ref = record.wheel
        for key in (
            layout.metadata_key(ref.sha256, ref.filename),
            layout.wheel_key(ref.sha256, ref.filename),
        ):
            data = store.blobs.get(key)
            if data is not None and target.blobs.put_if_absent(key, data[0]):
                wheels += key.endswith(".whl")
    return SnapshotResult(plan, records, wheels)


def _copy_records(store: Store, target: Store) -> int:
    """Every record, as stored: what the planner looks up (``cached``, known failures)."""
    count = 0
    for key in sorted(store.blobs.list(layout.RECORDS)):
        if layout.parse_record_key(key) is None:
            continue
        got = store.blobs.get(key)
        if got is not None:
            target.blobs.put(key, got[0])
            count += 1
    return count
