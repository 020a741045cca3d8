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

import json
from dataclasses import dataclass
from typing import Any

from refinery.core.errors import ConflictError, StoreError
from refinery.core.models import Attempt, BuildRecord, Event
from refinery.store.ledger import Store, sha256_bytes, wheel_key

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
        return {
            "schema": self.schema,
            "source": self.source,
            "target": self.target,
            "wheels": self.wheels,
            "wheels_present": self.wheels_present,
            "logs": self.logs,
            "records": self.records,
            "plans": self.plans,
            "inputs": self.inputs,
            "log_conflicts": list(self.log_conflicts),
        }


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


def publish(staging: Store, target: Store) -> PublishResult:
    src, dst = staging.blobs, target.blobs
    records: list[tuple[str, BuildRecord]] = []
    for key in sorted(src.list("records/")):
        if not key.endswith(".json"):
            continue
        got = src.get(key)
        if got is None:
            continue
        try:
            records.append((key, BuildRecord.from_json(json.loads(got[0]))))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{staging.url}/{key}: not a build record: {exc}") from None

    # 1. wheels: metadata before the wheel it describes.
    wheel_keys = sorted(
        (k for k in src.list("wheels/") if not k.split("/")[-1].startswith(".")),
        key=lambda k: (k.removesuffix(".metadata"), not k.endswith(".metadata")),
    )
    present = set(wheel_keys)
    for _key, rec in records:
        if rec.wheel is not None:
            wk = wheel_key(rec.wheel.sha256, rec.wheel.filename)
            if wk not in present and not dst.exists(wk):
                raise StoreError(
                    f"{staging.url}: record {rec.key} names {rec.wheel.filename}, "
                    "which is in neither store; nothing published"
                )
    new_wheels = same_wheels = 0
    for key in wheel_keys:
        got = src.get(key)
        if got is None:
            continue
        data = got[0]
        parts = key.split("/")
        if not key.endswith(".metadata") and len(parts) == 3 and sha256_bytes(data) != parts[1]:
            raise StoreError(f"{staging.url}/{key}: bytes do not match the sha256 in the key")
        if dst.put_if_absent(key, data):
            new_wheels += not key.endswith(".metadata")
        else:
            same_wheels += not key.endswith(".metadata")

    # 2. logs, written once.
    logs = 0
    conflicts: list[str] = []
    for key in sorted(src.list("logs/")):
        got = src.get(key)
        if got is None:
            continue
        if dst.put_if_absent(key, got[0]):
            logs += 1
        else:
            existing = dst.get(key)
            if existing is None or existing[0] != got[0]:
                conflicts.append(key)

    # 3. plans and inputs (documents, replaced whole).
    counts = {"plans/": 0, "inputs/": 0}
    for prefix in counts:
        for key in sorted(src.list(prefix)):
            got = src.get(key)
            if got is not None:
                dst.put(key, got[0])
                counts[prefix] += 1

    # 4. records last, compare-and-swap merged.
    for _key, rec in records:

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
        plans=counts["plans/"],
        inputs=counts["inputs/"],
        log_conflicts=tuple(conflicts),
    )
