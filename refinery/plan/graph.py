"""The plan as a graph: nodes for build dependencies, waves in dependency order (with
cycle detection) and the matrix of build jobs, sharded per wave.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from refinery.core.errors import RefineryError
from refinery.core.models import NodeStatus, PlanNode, Shard, Target, node_key
from refinery.plan.decide import Decider, applies, latest
from refinery.upstream.simple import IndexClient, Project

Progress = Callable[[str, int, int], None]
MAX_JOBS = 256


class CycleError(RefineryError):
    """Build dependencies that need each other: no order can build them."""


# --- build-dependency nodes ---------------------------------------------------------
def _requirements(raw: Sequence[str], target: Target) -> list[Requirement]:
    """The valid build requirements of ``raw`` whose markers hold on ``target``."""
    good: list[Requirement] = []
    for r in raw:
        try:
            req = Requirement(r)
        except InvalidRequirement:
            continue
        if applies(req, target):
            good.append(req)
    return good


@dataclass(frozen=True, slots=True)
class BuildDeps:
    """Adds a node for every ``[build-system].requires`` entry of the nodes to build,
    transitively, and records the build edges."""

    index: IndexClient
    decider: Decider
    progress: Progress

    def add(
        self,
        by_key: dict[str, PlanNode],
        pins: Mapping[str, str],
        projects: dict[str, Project | None],
        target: Target,
    ) -> None:
        """Read ``[build-system].requires`` of every node to build; add nodes for them."""
        todo = [k for k, n in by_key.items() if n.status is NodeStatus.PENDING]
        done: set[str] = set()
        while todo:
            batch = [k for k in todo if k not in done]
            done.update(batch)
            self.progress(f"build requirements (Python {target.python})", 0, len(batch))
            sdists = [by_key[k].sdist for k in batch]
            requires = self.index.map(lambda s: self.index.build_requires(s) if s else (), sdists)
            parsed = {
                key: _requirements(raw, target) for key, raw in zip(batch, requires, strict=True)
            }
            names = {canonicalize_name(r.name) for rs in parsed.values() for r in rs}
            projects.update(self.index.projects(names - projects.keys()))
            todo = []
            for key, reqs in parsed.items():
                edges = [self._edge(req, by_key, pins, projects, target, todo) for req in reqs]
                by_key[key] = replace(
                    by_key[key],
                    build_deps=tuple(sorted(set(edges))),
                    build_requires=tuple(str(r) for r in reqs),
                )

    def _edge(
        self,
        req: Requirement,
        by_key: dict[str, PlanNode],
        pins: Mapping[str, str],
        projects: Mapping[str, Project | None],
        target: Target,
        todo: list[str],
    ) -> str:
        """The node ``req`` is served by (the resolver's pin when it fits, else the
        newest matching release), added and queued when it is new."""
        name = canonicalize_name(req.name)
        project = projects.get(name)
        version = pins.get(name)
        if version is None or not req.specifier.contains(version, prereleases=True):
            version = (latest(project, req.specifier, target.python) if project else None) or (
                str(req.specifier) or "*"
            )
        dep_key = node_key(name, version, target.python)
        if dep_key not in by_key:
            by_key[dep_key] = self.decider.decide(name, version, target, project, requested=False)
            if by_key[dep_key].status is NodeStatus.PENDING:
                todo.append(dep_key)
        return dep_key


# --- waves --------------------------------------------------------------------------
def _sccs(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iterative; dependencies come first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = graph[v]
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def _cycle_path(members: set[str], build: Mapping[str, Sequence[str]]) -> list[str]:
    """One concrete cycle inside a strongly connected ``members`` (for the message)."""
    path = [min(members)]
    while True:
        nxt = next(w for w in build[path[-1]] if w in members)
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


def assign_waves(nodes: Sequence[PlanNode]) -> tuple[list[PlanNode], list[list[str]]]:
    """Wave per node to build: after its build dependencies (hard edges) and after the
    runtime dependencies that are built too (soft edges: the smoke test installs them).
    Runtime cycles are ordered by their build edges alone; a build-dependency cycle is
    an error naming the cycle."""
    todo = {n.key: n for n in nodes if n.status is NodeStatus.PENDING}
    build = {k: sorted({d for d in n.build_deps if d in todo}) for k, n in todo.items()}
    for comp in _sccs(build):
        if len(comp) > 1 or comp[0] in build[comp[0]]:
            cycle = _cycle_path(set(comp), build)
            raise CycleError("build-dependency cycle: " + " -> ".join(cycle))
    graph = {k: sorted({*build[k], *(d for d in n.deps if d in todo)}) for k, n in todo.items()}
    wave_of: dict[str, int] = {}
    for comp in _sccs(graph):  # dependencies come first
        members = set(comp)
        outside = [wave_of[d] for k in comp for d in graph[k] if d not in members]
        base = 1 + max(outside) if outside else 0
        inner: dict[str, int] = {}
        for single in _sccs({k: [d for d in build[k] if d in members] for k in comp}):
            (key,) = single
            deps = [inner[d] for d in build[key] if d in members]
            inner[key] = 1 + max(deps) if deps else 0
        for k, level in inner.items():
            wave_of[k] = base + level
    waves: list[list[str]] = [[] for _ in range(max(wave_of.values(), default=-1) + 1)]
    for k in sorted(wave_of):
        waves[wave_of[k]].append(k)
    return [replace(n, wave=wave_of.get(n.key)) for n in nodes], waves


# --- matrix -------------------------------------------------------------------------
def build_matrix(waves: Sequence[Sequence[str]], max_jobs: int = MAX_JOBS) -> list[Shard]:
    """Shards per wave: at most ``max_jobs`` entries per wave, nodes spread evenly;
    every node exactly once, waves in order, empty waves skipped."""
    if max_jobs < 1:
        raise ValueError("max_jobs must be at least 1")
    out: list[Shard] = []
    for w, keys in enumerate(waves):
        if not keys:
            continue
        entries = min(max_jobs, len(keys))
        per = math.ceil(len(keys) / entries)
        for i in range(0, len(keys), per):
            out.append(Shard(len(out), w, tuple(keys[i : i + per])))
    return out


def matrices_by_wave(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plan's matrix split into one matrix per wave (each ≤ max_jobs entries)."""
    per: dict[int, list[dict[str, Any]]] = {}
    for entry in matrix.get("include", []):
        per.setdefault(int(entry["wave"]), []).append(entry)
    return [{"include": per[w]} for w in sorted(per)]
