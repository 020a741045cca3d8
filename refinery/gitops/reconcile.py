"""Reconcile the store with reality (what ``reconcile.yml`` runs on a schedule).

* **Expired leases.** A build job writes ``leased`` (then ``building``) with an expiry
  into the node's record. A job that dies without finishing leaves that record behind;
  once the expiry has passed, :func:`expire_leases` returns it to ``pending`` with an
  ``lease-expired`` event (compare-and-swap: a job that finishes meanwhile wins) — only
  after the caller re-dispatched it (from the plan that produced it), so a failed
  dispatch leaves the node for the next reconcile.
* **Upstream wheels.** :func:`upstream_wheels` asks the index (PyPI) whether a project
  we build now ships a wheel that installs on the target; such nodes are reported — the
  next plan reuses the upstream wheel by itself.

Pure logic over the store and an index client; nothing prints, nothing talks to GitHub.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from refinery.core.clock import stamp
from refinery.core.models import DEFAULT_PLATFORM, BuildRecord, NodeStatus, Target, node_key
from refinery.core.versions import python_allowed
from refinery.store import Store

# Records worth asking upstream about: everything we build or tried to build.
WATCHED = frozenset(
    {
        NodeStatus.PENDING,
        NodeStatus.LEASED,
        NodeStatus.BUILDING,
        NodeStatus.RETRY,
        NodeStatus.BUILT,
        NodeStatus.FAILED,
        NodeStatus.SYSTEM_RECIPE_FAILED,
        NodeStatus.SKIPPED_KNOWN_FAILURE,
    }
)


@dataclass(frozen=True, slots=True)
class Requeued:
    key: str
    name: str
    version: str
    python: str
    was: str  # the status the lease left behind
    lease_expires: str
    plan_id: str | None
    next_attempt: int


def expire_leases(
    store: Store,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    only: Collection[str] | None = None,
    note: str = "back to pending for re-dispatch",
) -> list[Requeued]:
    """Every record whose lease expired (of the keys ``only``) goes back to ``pending``
    with an event saying ``note``. Callers that re-dispatch list with ``dry_run`` first
    and requeue only what they dispatched: a failed dispatch leaves the expired lease
    in place, so the next reconcile finds it again."""
    at = now or datetime.now(UTC)
    out: list[Requeued] = []
    for record in sorted(store.records(), key=lambda r: r.key):
        if not record.lease_expired(at) or (only is not None and record.key not in only):
            continue
        if dry_run:
            out.append(_requeued(record))
            continue
        seen: list[BuildRecord] = []

        def change(current: BuildRecord | None, seen: list[BuildRecord] = seen) -> BuildRecord:
            seen.clear()
            assert current is not None  # it was listed
            if not current.lease_expired(at):
                return current  # finished or re-leased meanwhile: leave it alone
            seen.append(current)
            message = f"lease from {current.status} expired at {current.lease_expires}; {note}"
            return current.evolve(
                status=NodeStatus.PENDING, lease_expires=None, reason=message
            ).with_event(stamp(at), "lease-expired", message)

        store.update_record(record.name, record.version, record.python, change)
        if seen:
            out.append(_requeued(seen[0]))
    return out


def _requeued(record: BuildRecord) -> Requeued:
    return Requeued(
        key=record.key,
        name=record.name,
        version=record.version,
        python=record.python,
        was=str(record.status),
        lease_expires=record.lease_expires or "",
        plan_id=record.plan_id,
        next_attempt=len(record.attempts) + 1,
    )


# --- upstream wheels ----------------------------------------------------------------
class _File(Protocol):
    @property
    def filename(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def yanked(self) -> bool: ...
    @property
    def requires_python(self) -> str | None: ...


class _Project(Protocol):
    def files_for(self, version: str) -> Sequence[_File]: ...


class ProjectSource(Protocol):
    """What :func:`upstream_wheels` needs of :class:`~refinery.upstream.simple.IndexClient`."""

    def projects(self, names: Iterable[str]) -> Mapping[str, _Project | None]: ...


@dataclass(frozen=True, slots=True)
class UpstreamWheel:
    key: str
    status: str  # our record's status
    filename: str
    url: str


def _installable(f: _File, target: Target) -> bool:
    from refinery.core.target import wheel_rank

    if f.kind != "wheel" or f.yanked or wheel_rank(f.filename, target) is None:
        return False
    return python_allowed(f.requires_python, target.python)


def upstream_wheels(
    records: Iterable[BuildRecord],
    index: ProjectSource,
    *,
    platform: str = DEFAULT_PLATFORM,
) -> Iterator[UpstreamWheel]:
    """Records we build whose release now has a wheel upstream that installs on
    ``python`` and ``platform`` (the planner's own tag ranking decides)."""
    watched = [r for r in records if r.status in WATCHED and r.source != "ingested"]
    projects = index.projects(sorted({r.name for r in watched}))
    for record in sorted(watched, key=lambda r: r.key):
        project = projects.get(record.name)
        if project is None:
            continue
        target = Target(record.python, platform)
        wheels = sorted(
            (f for f in project.files_for(record.version) if _installable(f, target)),
            key=lambda f: f.filename,
        )
        if wheels:
            yield UpstreamWheel(
                node_key(record.name, record.version, record.python),
                str(record.status),
                wheels[0].filename,
                wheels[0].url,
            )


# --- counts ---------------------------------------------------------------------------
def status_counts(store: Store) -> dict[str, dict[str, int]]:
    """``{"nodes": {status: n}, "inputs": {status: n}}`` from the store."""
    nodes: dict[str, int] = {}
    for record in store.records():
        nodes[str(record.status)] = nodes.get(str(record.status), 0) + 1
    inputs: dict[str, int] = {}
    for item in store.inputs():
        inputs[str(item.status)] = inputs.get(str(item.status), 0) + 1
    order = [str(s) for s in NodeStatus]
    return {
        "nodes": {
            k: nodes[k]
            for k in sorted(nodes, key=lambda s: (order.index(s) if s in order else 99, s))
        },
        "inputs": dict(sorted(inputs.items())),
    }
