"""Requirements in, build plan out: resolve per target, decide per node, add the
build-dependency nodes, then waves and the matrix.

Pure planning: it reads the index (through :class:`~refinery.upstream.simple.IndexClient`),
asks a :class:`~refinery.plan.resolver.Resolver` for pins, and looks records up in the
store; it never builds, and it never imports the build stage. The decisions live in
:mod:`refinery.plan.decide`, the graph in :mod:`refinery.plan.graph`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from refinery.core.clock import now
from refinery.core.errors import RefineryError, ResolutionError
from refinery.core.models import Plan, PlanNode, Target, node_key
from refinery.plan.decide import (
    Decider,
    applies,
    best_wheel,
    missing_requested,
    pick_sdist,
    python_ok,
)
from refinery.plan.graph import MAX_JOBS, BuildDeps, Progress, assign_waves, build_matrix
from refinery.plan.inputs import Entry, RequirementSet
from refinery.plan.resolver import Resolution, Resolver
from refinery.store import StoreLookup
from refinery.upstream.simple import IndexClient, Project


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOptions:
    """What a plan is for: the targets, the matrix size per wave, the hint catalog."""

    targets: tuple[Target, ...] = (Target(),)
    max_jobs: int = MAX_JOBS
    catalog_digest: str = ""

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("a plan needs at least one target")
        if self.max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


class Planner:
    def __init__(
        self,
        index: IndexClient,
        resolver: Resolver,
        store: StoreLookup | None = None,
        options: PlanOptions | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.index = index
        self.resolver = resolver
        self.options = options or PlanOptions()
        self.decider = Decider(index.index_url, store, self.options.catalog_digest)
        self.progress = progress or _no_progress
        self.build_deps = BuildDeps(index, self.decider, self.progress)

    def plan(self, reqs: RequirementSet) -> Plan:
        targets = self.options.targets
        with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="ahead") as ahead:
            self._background = ahead
            if len(targets) == 1:
                per_target = [self._plan_target(reqs, targets[0])]
            else:
                with ThreadPoolExecutor(max_workers=len(targets)) as pool:
                    per_target = list(pool.map(lambda t: self._plan_target(reqs, t), targets))
        nodes = [n for group in per_target for n in group]
        nodes, waves = assign_waves(nodes)
        matrix = build_matrix(waves, self.options.max_jobs)
        return Plan(
            plan_id=_plan_id(reqs, targets, nodes),
            inputs=reqs.files,
            targets=targets,
            nodes=tuple(nodes),
            waves=tuple(tuple(w) for w in waves),
            matrix={"include": [s.to_json() for s in matrix]},
            created=now(),
            catalog_digest=self.options.catalog_digest,
        )

    # --- one Python version -----------------------------------------------------
    def _plan_target(self, reqs: RequirementSet, target: Target) -> list[PlanNode]:
        entries = [e for e in reqs.requirements if applies(e.requirement, target)]
        constraints = [
            str(c.requirement) for c in reqs.constraints if applies(c.requirement, target)
        ]
        everything = [str(e.requirement) for e in entries]
        self.progress(f"resolving (Python {target.python})", 0, len(entries))
        speculating: Future[None] | None = None
        if not self.resolver.fresh(everything, constraints, target):
            speculating = self._background.submit(self._prefetch_build_requires, entries, target)
        missing, resolution = self._resolve(entries, constraints, target)
        pins = resolution.pins
        self.progress(f"deciding (Python {target.python})", 0, len(pins))
        unlocked = [n for n in pins if n not in resolution.files]
        projects: dict[str, Project | None] = dict(self.index.projects(unlocked))
        nodes = {n.key: n for n in missing.values()}
        for name, version in sorted(pins.items()):
            requested_name = name in resolution.requested
            locked = resolution.files.get(name)
            if locked is not None:
                node = self.decider.decide_locked(name, version, target, locked, requested_name)
            else:
                node = self.decider.decide(name, version, target, projects[name], requested_name)
            deps = tuple(node_key(d, pins[d], target.python) for d in resolution.deps.get(name, ()))
            nodes[node.key] = replace(node, deps=deps)
        self.build_deps.add(nodes, pins, projects, target)
        if speculating is not None:
            speculating.result()
        return sorted(nodes.values(), key=lambda n: n.key)

    def _resolve(
        self, entries: Sequence[Entry], constraints: Sequence[str], target: Target
    ) -> tuple[dict[str, PlanNode], Resolution]:
        """The resolution, and the requested names it had to leave out (``missing``).

        When the resolver succeeds, every requested name exists; only a failure needs
        the slower check for unknown projects and versions."""
        everything = [str(e.requirement) for e in entries]
        try:
            return {}, self.resolver.resolve(everything, constraints, target)
        except ResolutionError:
            requested = self.index.projects(e.name for e in entries)
            missing = missing_requested(entries, requested, target, self.index.index_url)
            if not missing:
                raise
            wanted = [str(e.requirement) for e in entries if e.name not in missing]
            return missing, self.resolver.resolve(wanted, constraints, target)

    def _prefetch_build_requires(self, entries: Sequence[Entry], target: Target) -> None:
        """While the resolver runs (cold): find the exact pins that will have to be built
        (their index pages) and read their sdists' build requirements, so the sdists
        are opened side by side with resolution instead of after it. Only a speed-up:
        a failure here is left to the real path to report."""
        pinned = [(e.name, e.pin) for e in entries if e.pin is not None]

        def one(pin: tuple[str, str]) -> None:
            project = self.index.project(pin[0])
            files = project.files_for(pin[1]) if project else []
            if not files or best_wheel(files, target) is not None:
                return
            sdist = pick_sdist(files)
            if sdist is not None and python_ok(sdist, target.python):
                self.index.build_requires(sdist.ref())

        try:
            self.index.map(one, pinned)
        except RefineryError:
            return


def _plan_id(reqs: RequirementSet, targets: Sequence[Target], nodes: Sequence[PlanNode]) -> str:
    blob = json.dumps(
        [reqs.digest, [t.to_json() for t in targets], [n.to_json() for n in nodes]],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_plan(
    reqs: RequirementSet,
    *,
    index: IndexClient,
    resolver: Resolver,
    store: StoreLookup | None = None,
    options: PlanOptions | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Plan ``reqs``: the ``plan`` stage as one call (the CLI builds its parts)."""
    return Planner(index, resolver, store, options, progress).plan(reqs)
