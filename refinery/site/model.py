"""What the status site shows, read from the store once per build.

Everything here is plain data derived from build records, inputs and plans; the
digest of each record's stored bytes keys the incremental regeneration.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from refinery.core.clock import now
from refinery.core.models import BuildRecord, InputRecord, NodeStatus, Plan
from refinery.core.versions import sort_key
from refinery.store import Store

#: Statuses that mean "waiting or working" (the queue).
QUEUE = (NodeStatus.PENDING, NodeStatus.LEASED, NodeStatus.BUILDING, NodeStatus.RETRY)
#: Outcomes counted in the success rate.
SUCCESS = frozenset({NodeStatus.BUILT})
FAILURE = frozenset({NodeStatus.FAILED, NodeStatus.SYSTEM_RECIPE_FAILED})


def python_key(python: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in python.split("."))


@dataclass(frozen=True, slots=True)
class Node:
    """One build record and the digest of its stored bytes."""

    record: BuildRecord
    digest: str

    @property
    def anchor(self) -> str:
        r = self.record
        return f"v{r.version}-py{r.python}".replace(".", "-").replace("+", "-")

    @property
    def started(self) -> str:
        return self.record.attempts[0].started if self.record.attempts else ""

    @property
    def duration(self) -> float | None:
        values = [a.duration for a in self.record.attempts if a.duration is not None]
        return round(sum(values), 1) if values else None

    @property
    def stuck(self) -> bool:
        """Leased or building with a lease that has expired (reconcile will requeue it)."""
        return self.record.lease_expired()


@dataclass(slots=True)
class Package:
    name: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for n in sorted(self.nodes, key=lambda n: n.record.key):
            h.update(n.record.key.encode() + b"\0" + n.digest.encode() + b"\0")
        return h.hexdigest()

    @property
    def versions(self) -> list[str]:
        return sorted({n.record.version for n in self.nodes}, key=sort_key, reverse=True)

    @property
    def pythons(self) -> list[str]:
        return sorted({n.record.python for n in self.nodes}, key=python_key)

    def node(self, version: str, python: str) -> Node | None:
        for n in self.nodes:
            if n.record.version == version and n.record.python == python:
                return n
        return None

    def ordered(self) -> list[Node]:
        """Newest version first, then Python ascending."""
        return sorted(
            self.nodes,
            key=lambda n: (
                sort_key(n.record.version),
                [-p for p in python_key(n.record.python)],
            ),
            reverse=True,
        )

    @property
    def status(self) -> NodeStatus:
        """The headline: the status of the newest version's first Python."""
        return self.ordered()[0].record.status


@dataclass(slots=True)
class SiteData:
    packages: dict[str, Package]
    inputs: list[InputRecord]
    plans: list[Plan]
    generated: str

    def nodes(self) -> Iterator[Node]:
        for name in sorted(self.packages):
            yield from self.packages[name].ordered()

    def counts(self) -> Counter[NodeStatus]:
        return Counter(n.record.status for p in self.packages.values() for n in p.nodes)


def group(records: Iterable[tuple[BuildRecord, str]]) -> dict[str, Package]:
    packages: dict[str, Package] = {}
    for record, digest in records:
        packages.setdefault(record.name, Package(record.name)).nodes.append(Node(record, digest))
    return packages


def load(store: Store, *, generated: str | None = None) -> SiteData:
    """Read every record, input and referenced plan from ``store``."""
    packages = group((r, digest[:20]) for r, digest in store.stored_records())
    inputs = sorted(store.inputs(), key=lambda i: i.path)
    plan_ids: set[str] = {i.plan_id for i in inputs if i.plan_id}
    plan_ids.update(
        n.record.plan_id for p in packages.values() for n in p.nodes if n.record.plan_id
    )
    plan_ids.update(store.plan_ids())
    plans = [p for p in (store.get_plan(pid) for pid in sorted(plan_ids)) if p is not None]
    plans.sort(key=lambda p: p.created, reverse=True)
    when = generated or now()
    return SiteData(packages, inputs, plans, when)
