"""One decision per node: ``reused``, ``cached``, ``pending``, ``missing`` or
``skipped_known_failure`` (DESIGN §4), from the index page or the resolver's lock and
the store's record. Pure: it reads what it is given and never builds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from refinery.core.models import FileRef, NodeStatus, PlanNode, Target
from refinery.core.target import marker_environment, wheel_rank
from refinery.core.versions import python_allowed, sort_key
from refinery.plan.inputs import Entry
from refinery.plan.resolver import PinnedFiles
from refinery.store import StoreLookup, usable_record, wheel_key
from refinery.upstream.simple import DistFile, Project

_requires_python_ok = functools.lru_cache(maxsize=4096)(python_allowed)
_KNOWN_FAILURES = (NodeStatus.FAILED, NodeStatus.SYSTEM_RECIPE_FAILED)


def python_ok(f: DistFile, python: str) -> bool:
    """Whether ``f``'s Requires-Python admits CPython ``python``."""
    return not f.requires_python or _requires_python_ok(f.requires_python, python)


def best_wheel(files: Iterable[DistFile], target: Target) -> DistFile | None:
    """The wheel that installs on ``target``, best tag first, non-yanked before yanked."""
    ranked = [
        (f.yanked, rank, f.filename, f)
        for f in files
        if f.kind == "wheel"
        and python_ok(f, target.python)
        and (rank := wheel_rank(f.filename, target)) is not None
    ]
    return min(ranked)[3] if ranked else None


def pick_sdist(files: Iterable[DistFile]) -> DistFile | None:
    """The sdist to build: non-yanked, ``.tar.gz`` before ``.zip``."""
    sdists = sorted(
        (f.yanked, not f.filename.endswith(".tar.gz"), f.filename, f)
        for f in files
        if f.kind == "sdist"
    )
    return sdists[0][3] if sdists else None


def applies(req: Requirement, target: Target) -> bool:
    """Whether ``req``'s marker holds on ``target`` (no extra requested)."""
    if req.marker is None:
        return True
    env = {**marker_environment(target), "extra": ""}
    return bool(req.marker.evaluate(env))


@dataclass(frozen=True, slots=True)
class Decider:
    """Decides a node from what the index or the lock offers and what the store has.

    ``index_url`` is only named in reasons; ``catalog_digest`` makes a known failure
    eligible again when the hint catalog changed."""

    index_url: str
    store: StoreLookup | None
    catalog_digest: str

    def decide(
        self, name: str, version: str, target: Target, project: Project | None, requested: bool
    ) -> PlanNode:
        """Decide from the index page of ``project``."""
        base = PlanNode(name, version, target.python, NodeStatus.MISSING, "", requested)
        if project is None:
            return replace(base, reason=f"not on the index {self.index_url}")
        files = project.files_for(version)
        if not files:
            return replace(base, reason=f"no release {version} on the index")
        wheel = best_wheel(files, target)
        sdist = pick_sdist(files)
        if wheel is None and sdist is not None and not python_ok(sdist, target.python):
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
            filename = record.wheel.filename
            if wheel_rank(filename, target) is None:
                # built for another target: the promise is the same as for PyPI's wheels
                return replace(
                    base,
                    reason=f"our store's {filename} does not install on {target.platform} "
                    f"(the record is per Python, not per platform: it is not rebuilt)",
                )
            return replace(
                base,
                status=NodeStatus.CACHED,
                wheel=wheel_key(record.wheel.sha256, filename),
                reason=f"our store has {filename}",
            )
        if sdist is None:
            return replace(
                base, reason=f"no sdist and no wheel for Python {target.python} on s390x"
            )
        if (
            record is not None
            and record.status in _KNOWN_FAILURES
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


def matching_versions(project: Project, spec: SpecifierSet) -> list[tuple[Version, str]]:
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


def latest(project: Project, spec: SpecifierSet, python: str) -> str | None:
    """The newest release satisfying ``spec`` (pre-releases only when it names one)
    that has a non-yanked file for ``python``."""
    files = project.by_version()
    for _v, raw in matching_versions(project, spec):
        if any(not f.yanked and python_ok(f, python) for f in files[raw]):
            return raw
    return None


def _candidates(e: Entry, project: Project) -> tuple[list[DistFile], str | None]:
    """The files an entry could be served from, and the newest matching version."""
    if e.pin is not None:
        return project.files_for(e.pin), None
    spec = e.requirement.specifier
    matching = matching_versions(project, spec) or [
        (Version("0"), raw) for raw in project.by_version() if spec.contains(raw, prereleases=True)
    ]
    files = [f for _v, raw in matching for f in project.by_version()[raw]]
    return files, (matching[0][1] if matching else None)


def _why_missing(
    e: Entry, project: Project, candidates: Sequence[DistFile], target: Target
) -> str | None:
    spec = e.requirement.specifier
    if not candidates:
        known = sorted(project.versions(), key=sort_key)
        newest = f" (latest: {known[-1]})" if known else ""
        return f"{e.where()}: no release of {e.name} matches '{spec}'{newest}"
    if not any(python_ok(f, target.python) for f in candidates):
        rp = candidates[0].requires_python
        return f"{e.where()}: {e.name}{spec} requires Python {rp}; target is {target.python}"
    if not any(f.kind == "sdist" or wheel_rank(f.filename, target) is not None for f in candidates):
        return (
            f"{e.where()}: no sdist and no wheel for Python {target.python} on "
            f"{target.platform} for {e.name}{spec}"
        )
    return None


def missing_requested(
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
        candidates, newest = _candidates(e, project)
        if newest is not None:
            node = replace(node, version=newest)
        reason = _why_missing(e, project, candidates, target)
        if reason is not None:
            out[e.name] = replace(node, reason=reason)
    return out
