"""After a wave is published: which nodes go to a fresh runner, and what runs next.

The GitHub side builds a plan one wave per workflow run (any depth: each run dispatches
the next). When a wave's run has published, :func:`next_step` reads the store and
decides:

* nodes of the wave that failed for a reason a **fresh runner or another backend** can
  fix — the job died (no record, or a lease left behind: timeout, lost runner), the disk
  filled, the attempt timed out, a cross build needs emulation — are re-dispatched, the
  same wave again with exactly those nodes, within a per-node budget counted from the
  ``redispatch`` events in the node's record (its timeline);
* otherwise the next wave, if there is one.

A failure that a hint would fix is retried inside the job (the advisor); a plain build
error is final here. :func:`requeue` writes the ``redispatch`` event (and releases a
lease the dead job left) after the dispatch succeeded, with compare-and-swap.
Pure logic over the store; nothing talks to GitHub, nothing prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from refinery.core.clock import now
from refinery.core.models import LEASED, BuildRecord, NodeStatus, Plan, PlanNode
from refinery.store import Store

REDISPATCH_EVENT = "redispatch"
DEFAULT_BUDGET = 2

# What a fresh runner fixes (the failure was the machine's, not the package's).
_RUNNER = re.compile(
    r"timed? ?out|timeout|no space left on device|disk quota|killed|out of memory"
    r"|deadline|runner (?:lost|shut ?down)|lease",
    re.IGNORECASE,
)
# What the emulated root fixes (the cross build cannot do it).
_EMULATE = re.compile(r"needs emulation|cross[- ]specific|run target binaries", re.IGNORECASE)
EMULATED_BACKEND = "rootfs"


@dataclass(frozen=True, slots=True)
class Redispatch:
    """Re-dispatch ``key`` (on ``backend``, ``""``: the same one) because of ``why``."""

    key: str
    why: str
    backend: str = ""


@dataclass(frozen=True, slots=True)
class NextStep:
    """What to dispatch after wave ``wave`` of ``plan_id`` was published."""

    plan_id: str
    wave: int
    redispatch: tuple[Redispatch, ...] = ()
    next_wave: int | None = None
    exhausted: tuple[str, ...] = ()  # would re-dispatch, but the budget is spent
    final: tuple[str, ...] = field(default=())  # failed for the package's own reasons

    def groups(self) -> list[tuple[str, list[str]]]:
        """``(backend, keys)`` per dispatch: one per backend, keys sorted."""
        by: dict[str, list[str]] = {}
        for r in self.redispatch:
            by.setdefault(r.backend, []).append(r.key)
        return [(b, sorted(keys)) for b, keys in sorted(by.items())]


def dispatches(record: BuildRecord | None) -> int:
    """How often the node was re-dispatched already (its timeline says)."""
    return 0 if record is None else sum(e.kind == REDISPATCH_EVENT for e in record.events)


def classify(record: BuildRecord | None) -> Redispatch | None:
    """Why a fresh runner (or the emulated root) would help; None: it would not."""
    if record is None:
        return Redispatch("", "no record: the job ended before the node was built")
    if record.status in LEASED:
        return Redispatch("", f"left {record.status} by a job that ended (timeout or lost runner)")
    if record.status is not NodeStatus.FAILED:
        return None
    last = record.attempts[-1] if record.attempts else None
    text = " ".join([record.reason, *(last.matched_lines if last else ())])
    if _EMULATE.search(text) and (last is None or last.backend == "cross"):
        return Redispatch("", f"cross build needs emulation: {record.reason}", EMULATED_BACKEND)
    if _RUNNER.search(text):
        return Redispatch("", f"the runner's fault: {record.reason}")
    return None


def next_step(
    store: Store,
    plan: Plan,
    wave: int,
    *,
    only: Iterable[str] | None = None,
    budget: int = DEFAULT_BUDGET,
) -> NextStep:
    """Re-dispatch what a fresh runner can fix in ``wave`` (``only``: of these nodes),
    else go on to the next wave."""
    keys = list(plan.waves[wave]) if 0 <= wave < len(plan.waves) else []
    if only is not None:
        wanted = set(only)
        keys = [k for k in keys if k in wanted]
    again: list[Redispatch] = []
    exhausted: list[str] = []
    final: list[str] = []
    for key in keys:
        node = plan.node(key)
        if node.status is not NodeStatus.PENDING:
            continue
        record = store.get_record(node.name, node.version, node.python)
        found = classify(record)
        if found is None:
            if record is not None and record.status is NodeStatus.FAILED:
                final.append(key)
            continue
        if dispatches(record) >= budget:
            exhausted.append(key)
            continue
        again.append(Redispatch(key, found.why, found.backend))
    nxt = wave + 1 if not again and wave + 1 < len(plan.waves) else None
    return NextStep(plan.plan_id, wave, tuple(again), nxt, tuple(exhausted), tuple(final))


def requeue(store: Store, plan: Plan, items: Sequence[Redispatch], run_url: str = "") -> None:
    """After the dispatch: each node's timeline gets a ``redispatch`` event, and a
    lease a dead job left is released (a job that finishes meanwhile wins)."""
    where = f" ({run_url})" if run_url else ""
    for item in items:
        node = plan.node(item.key)
        backend = f" on {item.backend}" if item.backend else ""
        message = f"re-dispatched{backend}: {item.why}{where}"

        def change(
            current: BuildRecord | None, message: str = message, node: PlanNode = node
        ) -> BuildRecord:
            base = current or BuildRecord(
                node.name, node.version, node.python, NodeStatus.PENDING, plan_id=plan.plan_id
            )
            if base.status is NodeStatus.BUILT:
                return base
            if base.status in LEASED:
                base = base.evolve(status=NodeStatus.PENDING, lease_expires=None)
            return base.evolve(reason=message).with_event(now(), REDISPATCH_EVENT, message)

        store.update_record(node.name, node.version, node.python, change)
