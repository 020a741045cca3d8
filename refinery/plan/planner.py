"""Requirements in, build plan out: decisions per node, DAG, waves, matrix.

Pure planning: it reads the index (through :class:`~refinery.upstream.simple.IndexClient`), asks a
:class:`~refinery.plan.resolver.Resolver` for pins, and looks records up in the store; it
never builds, and it never imports the build stage.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from refinery.core.clock import now
from refinery.core.errors import RefineryError, ResolutionError
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Shard, Target, node_key
from refinery.core.target import marker_environment, wheel_rank
from refinery.core.versions import python_allowed
from refinery.plan.inputs import Entry, RequirementSet
from refinery.plan.resolver import PinnedFiles, Resolver
from refinery.store.ledger import StoreLookup, usable_record, wheel_key
from refinery.upstream.simple import DistFile, IndexClient, Project

Progress = Callable[[str, int, int], None]
MAX_JOBS = 256


class CycleError(RefineryError):
    """Build dependencies that need each other: no order can build them."""


@dataclass(frozen=True, slots=True)
class PlanOptions:
    targets: tuple[Target, ...] = (Target(),)
    max_jobs: int = MAX_JOBS
    catalog_digest: str = ""


_requires_python_ok = functools.lru_cache(maxsize=4096)(python_allowed)


def _python_ok(f: DistFile, python: str) -> bool:
    return not f.requires_python or _requires_python_ok(f.requires_python, python)


def _best_wheel(files: Iterable[DistFile], target: Target) -> DistFile | None:
    ranked = [
        (f.yanked, rank, f.filename, f)
        for f in files
        if f.kind == "wheel"
        and _python_ok(f, target.python)
        and (rank := wheel_rank(f.filename, target)) is not None
    ]
    return min(ranked)[3] if ranked else None


def _sdist(files: Iterable[DistFile]) -> DistFile | None:
    sdists = sorted(
        (f.yanked, not f.filename.endswith(".tar.gz"), f.filename, f)
        for f in files
        if f.kind == "sdist"
    )
    return sdists[0][3] if sdists else None


@dataclass
class _Decider:
    index: IndexClient
    store: StoreLookup | None
    catalog_digest: str

    def decide(
        self, name: str, version: str, target: Target, project: Project | None, requested: bool
    ) -> PlanNode:
        """Decide from the index page of ``project``."""
        base = PlanNode(name, version, target.python, NodeStatus.MISSING, "", requested)
        if project is None:
            return replace(base, reason=f"not on the index {self.index.index_url}")
        files = project.files_for(version)
        if not files:
            return replace(base, reason=f"no release {version} on the index")
        wheel = _best_wheel(files, target)
        sdist = _sdist(files)
        if wheel is None and sdist is not None and not _python_ok(sdist, target.python):
            return replace(base, reason=f"{sdist.filename} requires Python {sdist.requires_python}")
        return self.conclude(
            base, target, wheel.ref() if wheel else None, sdist.ref() if sdist else None
        )

    def decide_locked(
        self, name: str, version: str, target: Target, files: PinnedFiles, requested: bool
    ) -> PlanNode:
        """Decide from what the resolver's lock lists for the pin."""
        base = PlanNode(name, version, target.python, NodeStatus.MISSING, "", requested)
        ranked = sorted(
            (rank, w.filename, w)
            for w in files.wheels
            if (rank := wheel_rank(w.filename, target)) is not None
        )
        return self.conclude(base, target, ranked[0][2] if ranked else None, files.sdist)

    def conclude(
        self, base: PlanNode, target: Target, wheel: FileRef | None, sdist: FileRef | None
    ) -> PlanNode:
        if wheel is not None:
            return replace(
                base,
                status=NodeStatus.REUSED,
                wheel=wheel.url,
                reason=f"wheel on the index: {wheel.filename}",
            )
        name, version = base.name, base.version
        record = self.store.get_record(name, version, target.python) if self.store else None
        if record is not None and usable_record(record):
            assert record.wheel is not None
            return replace(
                base,
                status=NodeStatus.CACHED,
                wheel=wheel_key(record.wheel.sha256, record.wheel.filename),
                reason=f"our store has {record.wheel.filename}",
            )
        if sdist is None:
            return replace(
                base, reason=f"no sdist and no wheel for Python {target.python} on s390x"
            )
        if (
            record is not None
            and record.status in (NodeStatus.FAILED, NodeStatus.SYSTEM_RECIPE_FAILED)
            and record.sdist_sha256 == sdist.sha256
            and record.catalog_digest == self.catalog_digest
        ):
            return replace(
                base,
                status=NodeStatus.SKIPPED_KNOWN_FAILURE,
                sdist=sdist,
                reason=f"failed before with the same sdist and hint catalog "
                f"({record.reason or record.status}); a new hint makes it eligible again",
            )
        return replace(
            base,
            status=NodeStatus.PENDING,
            sdist=sdist,
            reason=f"no s390x wheel for cp{target.python.replace('.', '')}; sdist {sdist.filename}",
        )


def _applies(req: Requirement, target: Target) -> bool:
    if req.marker is None:
        return True
    env = {**marker_environment(target), "extra": ""}
    return bool(req.marker.evaluate(env))


def _matching_versions(project: Project, spec: SpecifierSet) -> list[tuple[Version, str]]:
    """Versions of ``project`` satisfying ``spec``, newest first."""
    out: list[tuple[Version, str]] = []
    for raw in project.by_version():
        try:
            v = Version(raw)
        except InvalidVersion:
            continue
        if spec.contains(v):
            out.append((v, raw))
    return sorted(out, reverse=True)


def _latest(project: Project, spec: SpecifierSet, python: str) -> str | None:
    """The newest release satisfying ``spec`` (pre-releases only when it names one)
    that has a non-yanked file for ``python``."""
    files = project.by_version()
    for _v, raw in _matching_versions(project, spec):
        if any(not f.yanked and _python_ok(f, python) for f in files[raw]):
            return raw
    return None


def _missing_requested(
    entries: Sequence[Entry], projects: Mapping[str, Project | None], target: Target, index_url: str
) -> dict[str, PlanNode]:
    """Requested names the resolver must not see: unknown projects or versions."""
    out: dict[str, PlanNode] = {}
    for e in entries:
        project = projects.get(e.name)
        version = e.pin or (str(e.requirement.specifier) or "*")
        node = PlanNode(e.name, version, target.python, NodeStatus.MISSING, "", True)
        if project is None:
            out[e.name] = replace(node, reason=f"{e.where()}: not on the index {index_url}")
            continue
        spec = e.requirement.specifier
        if e.pin is not None:
            candidates = project.files_for(e.pin)
        else:
            matching = _matching_versions(project, spec) or [
                (Version("0"), raw)
                for raw in project.by_version()
                if spec.contains(raw, prereleases=True)
            ]
            candidates = [f for _v, raw in matching for f in project.by_version()[raw]]
            if matching:
                node = replace(node, version=matching[0][1])
        if not candidates:
            known = sorted(project.versions(), key=_sort_version)
            latest = f" (latest: {known[-1]})" if known else ""
            out[e.name] = replace(
                node, reason=f"{e.where()}: no release of {e.name} matches '{spec}'{latest}"
            )
        elif not any(_python_ok(f, target.python) for f in candidates):
            rp = candidates[0].requires_python
            out[e.name] = replace(
                node,
                reason=f"{e.where()}: {e.name}{spec} requires Python {rp}; "
                f"target is {target.python}",
            )
        elif not any(
            f.kind == "sdist" or wheel_rank(f.filename, target) is not None for f in candidates
        ):
            out[e.name] = replace(
                node,
                reason=f"{e.where()}: no sdist and no wheel for Python {target.python} on "
                f"{target.platform} for {e.name}{spec}",
            )
    return out


def _sort_version(v: str) -> tuple[int, Any]:
    try:
        return 1, Version(v)
    except InvalidVersion:
        return 0, v


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
        self.decider = _Decider(index, store, self.options.catalog_digest)
        self.progress = progress or (lambda _stage, _done, _total: None)

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
        plan_id = _plan_id(reqs, targets, nodes)
        return Plan(
            plan_id=plan_id,
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
        entries = [e for e in reqs.requirements if _applies(e.requirement, target)]
        constraints = [
            str(c.requirement) for c in reqs.constraints if _applies(c.requirement, target)
        ]
        everything = [str(e.requirement) for e in entries]
        self.progress(f"resolving (Python {target.python})", 0, len(entries))
        # When the resolver succeeds, every requested name exists; only a failure needs
        # the slower check for unknown projects and versions (they become `missing`).
        missing: dict[str, PlanNode] = {}
        speculating = None
        if not self.resolver.fresh(everything, constraints, target):
            speculating = self._background.submit(self._prefetch_build_requires, entries, target)
        try:
            resolution = self.resolver.resolve(everything, constraints, target)
        except ResolutionError:
            requested = self.index.projects(e.name for e in entries)
            missing = _missing_requested(entries, requested, target, self.index.index_url)
            if not missing:
                raise
            wanted = [str(e.requirement) for e in entries if e.name not in missing]
            resolution = self.resolver.resolve(wanted, constraints, target)
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
        self._add_build_deps(nodes, pins, projects, target)
        if speculating is not None:
            speculating.result()
        return sorted(nodes.values(), key=lambda n: n.key)

    def _prefetch_build_requires(self, entries: Sequence[Entry], target: Target) -> None:
        """While the resolver runs (cold): find the exact pins that will have to be built
        (their index pages) and read their sdists' build requirements, so the sdists
        are opened side by side with resolution instead of after it. Only a speed-up:
        a failure here is left to the real path to report."""
        pinned = [(e.name, e.pin) for e in entries if e.pin is not None]

        def one(pin: tuple[str, str]) -> None:
            project = self.index.project(pin[0])
            files = project.files_for(pin[1]) if project else []
            if not files or _best_wheel(files, target) is not None:
                return
            sdist = _sdist(files)
            if sdist is not None and _python_ok(sdist, target.python):
                self.index.build_requires(sdist.ref())

        try:
            self.index.map(one, pinned)
        except RefineryError:
            return

    def _add_build_deps(
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
            todo = []
            self.progress(f"build requirements (Python {target.python})", 0, len(batch))
            sdists = [by_key[k].sdist for k in batch]
            requires = self.index.map(lambda s: self.index.build_requires(s) if s else (), sdists)
            parsed: dict[str, list[Requirement]] = {}
            for key, raw in zip(batch, requires, strict=True):
                good: list[Requirement] = []
                for r in raw:
                    try:
                        req = Requirement(r)
                    except InvalidRequirement:
                        continue
                    if _applies(req, target):
                        good.append(req)
                parsed[key] = good
            names = {canonicalize_name(r.name) for rs in parsed.values() for r in rs}
            projects.update(self.index.projects(names - projects.keys()))
            for key, reqs in parsed.items():
                edges: list[str] = []
                for req in reqs:
                    name = canonicalize_name(req.name)
                    project = projects.get(name)
                    version = pins.get(name)
                    if version is None or not req.specifier.contains(version, prereleases=True):
                        version = (
                            _latest(project, req.specifier, target.python) if project else None
                        ) or (str(req.specifier) or "*")
                    dep_key = node_key(name, version, target.python)
                    if dep_key not in by_key:
                        by_key[dep_key] = self.decider.decide(
                            name, version, target, project, requested=False
                        )
                        if by_key[dep_key].status is NodeStatus.PENDING:
                            todo.append(dep_key)
                    edges.append(dep_key)
                by_key[key] = replace(
                    by_key[key],
                    build_deps=tuple(sorted(set(edges))),
                    build_requires=tuple(str(r) for r in reqs),
                )


def _plan_id(reqs: RequirementSet, targets: Sequence[Target], nodes: Sequence[PlanNode]) -> str:
    blob = json.dumps(
        [reqs.digest, [t.to_json() for t in targets], [n.to_json() for n in nodes]],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- graph: waves and matrix ------------------------------------------------------
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
    """The plan's matrix split into one GitHub matrix per wave (each ≤ max_jobs)."""
    per: dict[int, list[dict[str, Any]]] = {}
    for entry in matrix.get("include", []):
        per.setdefault(int(entry["wave"]), []).append(entry)
    return [{"include": per[w]} for w in sorted(per)]
