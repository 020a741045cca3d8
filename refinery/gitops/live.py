"""Live state on Actions: a wave's nodes are shown ``leased`` by the run building them.

When a run starts a wave, :func:`announce` stages a ``leased`` record for each of the
wave's pending nodes (the run's URL on it, a lease as long as the build job may run, an
``announced`` event); the run publishes them at once, so the store and the status site
show which run builds which node (and link its live logs) while the wave runs. A build
job's own record merges over it when the wave is published: a finished record (built,
failed) always wins, a newer one otherwise (:func:`refinery.store.publish.merge_records`);
a job that never reported leaves the lease, which ``advance`` re-dispatches and
``reconcile`` expires like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

from refinery.core.clock import later, now
from refinery.core.models import BuildRecord, NodeStatus, Plan, PlanNode
from refinery.store import Store

ANNOUNCED_EVENT = "announced"


def announce(
    staging: Store, plan: Plan, keys: Sequence[str], run_url: str, seconds: float
) -> list[str]:
    """Stage a ``leased`` record (until ``seconds`` from now) for each pending node of
    ``keys``, linking ``run_url``; the keys announced."""
    until = later(seconds)
    done: list[str] = []
    for key in keys:
        node = plan.node(key)
        if node.status is not NodeStatus.PENDING:
            continue

        def change(current: BuildRecord | None, node: PlanNode = node) -> BuildRecord:
            return _leased(current, node, plan.plan_id, run_url, until)

        staging.update_record(node.name, node.version, node.python, change)
        done.append(key)
    return done


def _leased(
    current: BuildRecord | None, node: PlanNode, plan_id: str, run_url: str, until: str
) -> BuildRecord:
    base = current or BuildRecord(
        name=node.name, version=node.version, python=node.python, status=NodeStatus.PENDING
    )
    return base.evolve(
        status=NodeStatus.LEASED,
        lease_expires=until,
        plan_id=plan_id,
        run_url=run_url,
        reason="",
    ).with_event(now(), ANNOUNCED_EVENT, f"built by {run_url}")
