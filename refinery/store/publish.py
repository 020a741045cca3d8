"""``refinery publish --from STAGING``: move what a build job produced into the store.

Build jobs run untrusted build code, so they never hold store credentials: they write a
local staging store (same layout). The publish job copies it into the real store in an
order that never exposes half a publish:

1. every wheel's ``.metadata``, then the wheel (``If-None-Match``: written once; a wheel's
   bytes are checked against the sha256 in its key);
2. logs (written once; a different log under the same key is reported, not overwritten);
3. plans and inputs;
4. build records last, merged into the store's with compare-and-swap (each record write
   also refreshes the project's summary, which is what the index reads).

A record becomes visible only after its wheel is stored, so an interrupted publish leaves
at worst unreferenced wheels; running it again completes it (every step is idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from refinery.core.errors import ConflictError, StoreError
from refinery.core.models import Attempt, BuildRecord, Event
from refinery.store import layout
from refinery.store.files import sha256_bytes
from refinery.store.ledger import Store

PUBLISH_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class PublishResult:
    source: str
    target: str
    wheels: int  # newly stored wheels
    wheels_present: int  # already there, identical
    logs: int
    records: int
    plans: int
    inputs: int
    log_conflicts: tuple[str, ...] = ()
    schema: int = PUBLISH_SCHEMA

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {"schema": out.pop("schema"), **out, "log_conflicts": list(self.log_conflicts)}


def _attempt_rank(a: Attempt) -> tuple[int, int]:
    return (a.ended is not None, len(a.status) > 0)


def merge_records(current: BuildRecord | None, incoming: BuildRecord) -> BuildRecord:
    """Combine the store's record with a staged one; nothing either knew is lost.

    Attempts are merged by number (a finished attempt beats an unfinished one), events
    by identity; the state (status, wheel, reason, lease) comes from the record that is
    further along: terminal beats active, otherwise the newer ``updated`` wins."""
    if current is None:
        return incoming
    attempts: dict[int, Attempt] = {a.n: a for a in current.attempts}
    for a in incoming.attempts:
        have = attempts.get(a.n)
        if have is None or _attempt_rank(a) >= _attempt_rank(have):
            attempts[a.n] = a
    seen: set[Event] = set()
    events: list[Event] = []
    for e in sorted((*current.events, *incoming.events), key=lambda e: e.at):
        if e not in seen:
            seen.add(e)
            events.append(e)
    if current.status.terminal != incoming.status.terminal:
        winner = incoming if incoming.status.terminal else current
    else:
        winner = incoming if incoming.updated >= current.updated else current
    return winner.evolve(
        attempts=tuple(attempts[n] for n in sorted(attempts)), events=tuple(events)
    )


def _staged_records(staging: Store) -> list[BuildRecord]:
    return sorted(staging.records(), key=lambda r: layout.record_key(r.name, r.version, r.python))


def _copy_wheels(staging: Store, target: Store, records: list[BuildRecord]) -> tuple[int, int]:
    """Every staged wheel, its metadata first; refuse when a record names a wheel that is
    in neither store. Returns (newly stored, already there)."""
    src, dst = staging.blobs, target.blobs
    staged = sorted(
        ((w, k) for k in src.list(layout.WHEELS) if (w := layout.parse_wheel_key(k)) is not None),
        key=lambda s: (s[0].sha256, s[0].filename, not s[0].metadata),  # metadata first
    )
    present = {k for _w, k in staged}
    for rec in records:
        if rec.wheel is not None:
            wk = layout.wheel_key(rec.wheel.sha256, rec.wheel.filename)
            if wk not in present and not dst.exists(wk):
                raise StoreError(
                    f"{staging.url}: record {rec.key} names {rec.wheel.filename}, "
                    "which is in neither store; nothing published"
                )
    counts = [0, 0]
    for wheel, key in staged:
        got = src.get(key)
        if got is None:
            continue
        if not wheel.metadata and sha256_bytes(got[0]) != wheel.sha256:
            raise StoreError(f"{staging.url}/{key}: bytes do not match the sha256 in the key")
        stored = dst.put_if_absent(key, got[0])
        if not wheel.metadata:
            counts[0 if stored else 1] += 1
    return counts[0], counts[1]


def _copy_logs(staging: Store, target: Store) -> tuple[int, list[str]]:
    """Logs are written once: a different log under the same key is reported."""
    src, dst = staging.blobs, target.blobs
    logs = 0
    conflicts: list[str] = []
    for key in sorted(src.list(layout.LOGS)):
        got = src.get(key)
        if got is None:
            continue
        if dst.put_if_absent(key, got[0]):
            logs += 1
        else:
            existing = dst.get(key)
            if existing is None or existing[0] != got[0]:
                conflicts.append(key)
    return logs, conflicts


def _copy_documents(staging: Store, target: Store, prefix: str) -> int:
    """Plans or inputs: documents, replaced whole."""
    count = 0
    for key in sorted(staging.blobs.list(prefix)):
        got = staging.blobs.get(key)
        if got is not None:
            target.blobs.put(key, got[0])
            count += 1
    return count


def publish(staging: Store, target: Store) -> PublishResult:
    """Copy ``staging`` into ``target``: wheels, logs, plans and inputs, records last."""
    records = _staged_records(staging)
    new_wheels, same_wheels = _copy_wheels(staging, target, records)
    logs, conflicts = _copy_logs(staging, target)
    plans = _copy_documents(staging, target, layout.PLANS)
    inputs = _copy_documents(staging, target, layout.INPUTS)
    mark = staging.get_planned()
    if mark is not None:
        target.put_planned(mark)  # forward only: an older run's publish never undoes it
    for rec in records:

        def merge(cur: BuildRecord | None, rec: BuildRecord = rec) -> BuildRecord:
            return merge_records(cur, rec)

        try:
            target.update_record(rec.name, rec.version, rec.python, merge)
        except ConflictError as exc:
            raise StoreError(f"publishing {rec.key}: {exc}") from None
    return PublishResult(
        source=staging.url,
        target=target.url,
        wheels=new_wheels,
        wheels_present=same_wheels,
        logs=logs,
        records=len(records),
        plans=plans,
        inputs=inputs,
        log_conflicts=tuple(conflicts),
    )
