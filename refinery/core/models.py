"""Plain data shared by every stage: statuses, plans, build records.

This module imports nothing of ours. Every JSON document it produces carries a
``schema`` version; readers reject versions they do not know.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from refinery.core.clock import lease_over

PLAN_SCHEMA = 1
RECORD_SCHEMA = 1
INPUT_SCHEMA = 1

DEFAULT_PYTHON = "3.11"
DEFAULT_PLATFORM = "manylinux_2_28_s390x"

_NORMALIZE = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name."""
    return _NORMALIZE.sub("-", name).lower()


class InputStatus(StrEnum):
    PENDING = "pending"
    PLANNING = "planning"
    PLANNED = "planned"
    QUEUED = "queued"
    FAILED = "failed"


class NodeStatus(StrEnum):
    PENDING = "pending"
    LEASED = "leased"
    BUILDING = "building"
    RETRY = "retry"
    BUILT = "built"
    FAILED = "failed"
    CACHED = "cached"
    REUSED = "reused"
    MISSING = "missing"
    SKIPPED_KNOWN_FAILURE = "skipped_known_failure"
    SYSTEM_RECIPE_FAILED = "system_recipe_failed"

    @property
    def terminal(self) -> bool:
        return self not in _ACTIVE


_ACTIVE = frozenset({NodeStatus.PENDING, NodeStatus.LEASED, NodeStatus.BUILDING, NodeStatus.RETRY})

#: Statuses under a lease (a job has claimed the node).
LEASED = frozenset({NodeStatus.LEASED, NodeStatus.BUILDING})

# Statuses after which the node's wheel exists somewhere a later build can use.
AVAILABLE = frozenset({NodeStatus.BUILT, NodeStatus.CACHED, NodeStatus.REUSED})


def node_key(name: str, version: str, python: str) -> str:
    """The identity of a build node: ``name==version@python``."""
    return f"{name}=={version}@{python}"


def parse_node_key(key: str) -> tuple[str, str, str]:
    """Inverse of :func:`node_key`; raises ``ValueError`` on a malformed key."""
    m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^@\s]+)@(\d+\.\d+)", key)
    if not m:
        raise ValueError(f"not a node key (want NAME==VERSION@PYTHON): {key!r}")
    return normalize_name(m.group(1)), m.group(2), m.group(3)


def _check_schema(data: Mapping[str, Any], expected: int, what: str) -> None:
    got = data.get("schema")
    if got != expected:
        raise ValueError(f"{what}: unsupported schema {got!r} (this refinery reads {expected})")


def _build(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """Construct a dataclass from a mapping, ignoring nothing silently."""
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return cls(**data)


@dataclass(frozen=True, slots=True)
class Target:
    python: str = DEFAULT_PYTHON
    platform: str = DEFAULT_PLATFORM

    def to_json(self) -> dict[str, Any]:
        return {"python": self.python, "platform": self.platform}


@dataclass(frozen=True, slots=True)
class FileRef:
    """A distribution file on an index: where it is and what it hashes to."""

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filename": self.filename, "url": self.url}
        if self.sha256:
            out["sha256"] = self.sha256
        if self.size is not None:
            out["size"] = self.size
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            filename=data["filename"],
            url=data["url"],
            sha256=data.get("sha256"),
            size=data.get("size"),
        )


@dataclass(frozen=True, slots=True)
class PlanNode:
    name: str
    version: str
    python: str
    status: NodeStatus
    reason: str
    requested: bool
    deps: tuple[str, ...] = ()
    build_deps: tuple[str, ...] = ()
    wave: int | None = None
    wheel: str | None = None  # reused/cached: where the compatible wheel is
    sdist: FileRef | None = None  # pending: what to build from
    build_requires: tuple[str, ...] = ()  # [build-system].requires of the sdist

    @property
    def key(self) -> str:
        return node_key(self.name, self.version, self.python)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "python": self.python,
            "status": str(self.status),
            "reason": self.reason,
            "requested": self.requested,
            "deps": list(self.deps),
            "build_deps": list(self.build_deps),
            "wave": self.wave,
        }
        if self.wheel is not None:
            out["wheel"] = self.wheel
        if self.sdist is not None:
            out["sdist"] = self.sdist.to_json()
        if self.build_requires:
            out["build_requires"] = list(self.build_requires)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            name=data["name"],
            version=data["version"],
            python=data["python"],
            status=NodeStatus(data["status"]),
            reason=data.get("reason", ""),
            requested=bool(data.get("requested", False)),
            deps=tuple(data.get("deps", ())),
            build_deps=tuple(data.get("build_deps", ())),
            wave=data.get("wave"),
            wheel=data.get("wheel"),
            sdist=FileRef.from_json(data["sdist"]) if data.get("sdist") else None,
            build_requires=tuple(data.get("build_requires", ())),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: str
    inputs: tuple[str, ...]
    targets: tuple[Target, ...]
    nodes: tuple[PlanNode, ...]
    waves: tuple[tuple[str, ...], ...]
    matrix: Mapping[str, Any]
    created: str = ""
    catalog_digest: str = ""
    schema: int = PLAN_SCHEMA

    def node(self, key: str) -> PlanNode:
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(key)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[str(n.status)] = out.get(str(n.status), 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "plan_id": self.plan_id,
            "created": self.created,
            "catalog_digest": self.catalog_digest,
            "inputs": list(self.inputs),
            "targets": [t.to_json() for t in self.targets],
            "nodes": [n.to_json() for n in self.nodes],
            "waves": [list(w) for w in self.waves],
            "matrix": dict(self.matrix),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        _check_schema(data, PLAN_SCHEMA, "plan")
        return cls(
            plan_id=data["plan_id"],
            created=data.get("created", ""),
            catalog_digest=data.get("catalog_digest", ""),
            inputs=tuple(data["inputs"]),
            targets=tuple(Target(**t) for t in data["targets"]),
            nodes=tuple(PlanNode.from_json(n) for n in data["nodes"]),
            waves=tuple(tuple(w) for w in data["waves"]),
            matrix=data["matrix"],
        )


@dataclass(frozen=True, slots=True)
class WheelRef:
    filename: str
    sha256: str
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filename": self.filename, "sha256": self.sha256}
        if self.size is not None:
            out["size"] = self.size
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class PackUse:
    """A library pack a wheel was built with: its recipe ``name`` and ``version``, its
    ``sha256`` identity (the hash of its inputs: recipe, source, compiler, target glibc)
    and the recipe's ``notes`` (e.g. what it was built without)."""

    name: str
    version: str
    sha256: str
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return _build(cls, data)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class TestReport:
    """A package's own tests run against its wheel on the target (``pytest`` with a
    JUnit XML report): the counts, the failing test ids (``failures``: what fails the
    attempt; ``known``: failures the package's setting lists as known on the target,
    each ``id: reason``) and the command that ran."""

    __test__ = False  # not a pytest test class

    command: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    failures: tuple[str, ...] = ()
    known: tuple[str, ...] = ()
    seconds: float = 0.0
    timed_out: bool = False
    reason: str = ""  # why the run itself failed (no report, timeout, install), if it did

    @property
    def ok(self) -> bool:
        return not self.failures and not self.reason

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        d = dict(data)
        for key in ("failures", "known"):
            if key in d:
                d[key] = tuple(d[key])
        return _build(cls, d)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class GraftedLib:
    """A library auditwheel grafted into a wheel (``file``, its path in the wheel) and
    what provides it in the build root: ``kind`` ``deb``/``rpm`` (a distribution
    package), ``pack`` (a library pack) or ``""`` (nothing the root knows)."""

    file: str
    soname: str
    package: str = ""
    version: str = ""
    kind: str = ""

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return _build(cls, data)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class SbomSummary:
    """The SBOM a built wheel carries (PEP 770): its ``path`` in the wheel, how many
    components it lists and the grafted libraries with their providers."""

    path: str
    components: int = 0
    grafted: tuple[GraftedLib, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "components": self.components}
        out["grafted"] = [g.to_json() for g in self.grafted]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        d = dict(data)
        d["grafted"] = tuple(GraftedLib.from_json(g) for g in d.get("grafted", ()))
        return _build(cls, d)  # type: ignore[no-any-return]


#: How a missing thing of each kind reads (``refinery.hints.missing``).
MISSING_LABELS: Mapping[str, str] = {
    "header": "header {}",
    "library": "library -l{}",
    "pkgconfig": "pkg-config module {}",
    "cmake": "CMake package {}",
    "command": "command {}",
    "compiler": "compiler {}",
    "module": "Python module {}",
}


@dataclass(frozen=True, slots=True)
class SourcePatch:
    """A patch a hint applies to the unpacked sdist before the build (``patch -p1``):
    its file ``name`` (under ``hints/patches/``) and its unified-diff ``text``. Carried
    as text, so a fix is whole wherever it travels (a build job, a re-dispatch)."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def summary(self) -> str:
        """``cryptography-43-asn1.patch (sha256 1a2b3c4d5e6f)``, for records and pages."""
        return f"{self.name} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True, slots=True)
class DerivedFix:
    """A fix derived from data, not from the catalog: what the failed log said was
    missing (``kind``, ``name``, the log ``line``), the file-index ``queries`` asked, the
    best ``candidates`` (path, package), and the choice: a distribution ``package`` or,
    for a missing Python module, a build ``requirement``. Neither: nothing answered."""

    kind: str
    name: str
    line: str = ""
    queries: tuple[str, ...] = ()
    candidates: tuple[tuple[str, str], ...] = ()
    package: str = ""
    requirement: str = ""

    @property
    def answered(self) -> bool:
        return bool(self.package or self.requirement)

    @property
    def label(self) -> str:
        return MISSING_LABELS.get(self.kind, self.kind + " {}").format(self.name)

    def summary(self) -> str:
        """``header yaml.h → libyaml-dev (usr/include/yaml.h)``, for records and pages."""
        if self.requirement:
            return f"{self.label} → build requirement {self.requirement}"
        if not self.package:
            asked = ", ".join(self.queries) or "no query"
            return f"{self.label} → nothing in the file index ({asked})"
        path = next((p for p, pkg in self.candidates if pkg == self.package), "")
        return f"{self.label} → {self.package} ({path})"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "line": self.line}
        out["queries"] = list(self.queries)
        out["candidates"] = [list(c) for c in self.candidates]
        out["package"] = self.package
        out["requirement"] = self.requirement
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        d = dict(data)
        d["queries"] = tuple(d.get("queries", ()))
        d["candidates"] = tuple((str(p), str(k)) for p, k in d.get("candidates", ()))
        return _build(cls, d)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at building a node, in whichever build root."""

    n: int
    started: str
    ended: str | None = None
    duration: float | None = None
    backend: str = ""
    image: str = ""  # container image digest or rootfs digest
    recipes: tuple[str, ...] = ()  # fixes applied before this attempt, human readable
    hint_ids: tuple[str, ...] = ()
    matched_lines: tuple[str, ...] = ()
    exit: int | None = None
    log: str | None = None  # store key of the attempt's log
    status: str = ""  # outcome of this attempt: built, failed, system_recipe_failed, ...
    reason: str = ""
    auditwheel: str = ""  # `auditwheel show` output of the repaired wheel
    packs: tuple[PackUse, ...] = ()  # library packs the build used (absent when none)
    derived: tuple[DerivedFix, ...] = ()  # fixes derived for this attempt (absent when none)
    tests: TestReport | None = None  # the package's own tests on the target (absent: none)
    sbom: SbomSummary | None = None  # the SBOM the built wheel carries (absent: none)
    #: How the build step reached the network: "isolated", "allowed: why", "not
    #: isolated: why" (absent: not recorded, older records).
    network: str = ""
    #: The GitHub Actions run (attempt) and job that made this attempt (absent: not on
    #: Actions); the job's URL opens its live log.
    run_url: str = ""
    job_url: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        if not self.network:
            del out["network"]
        for key in ("run_url", "job_url"):  # absent when empty: older records read as before
            if not out[key]:
                del out[key]
        for key in ("packs", "derived"):  # absent when empty: older records read as before
            items = getattr(self, key)
            if items:
                out[key] = [item.to_json() for item in items]
            else:
                del out[key]
        if self.tests is None:
            del out["tests"]
        else:
            out["tests"] = self.tests.to_json()
        if self.sbom is None:
            del out["sbom"]
        else:
            out["sbom"] = self.sbom.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        d = dict(data)
        for k in ("recipes", "hint_ids", "matched_lines"):
            if k in d:
                d[k] = tuple(d[k])
        if "packs" in d:
            d["packs"] = tuple(PackUse.from_json(p) for p in d["packs"])
        if "derived" in d:
            d["derived"] = tuple(DerivedFix.from_json(x) for x in d["derived"])
        if "tests" in d:
            d["tests"] = TestReport.from_json(d["tests"])
        if "sbom" in d:
            d["sbom"] = SbomSummary.from_json(d["sbom"])
        return _build(cls, d)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Event:
    at: str
    kind: str  # e.g. leased, building, hint, retry, built, failed, ingested
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return _build(cls, data)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """The ledger entry of one node: ``records/<name>/<version>/<python>.json``."""

    name: str
    version: str
    python: str
    status: NodeStatus
    source: str = "built"  # built | ingested
    sdist_sha256: str | None = None
    catalog_digest: str = ""
    plan_id: str | None = None
    lease_expires: str | None = None
    attempts: tuple[Attempt, ...] = ()
    wheel: WheelRef | None = None
    events: tuple[Event, ...] = ()
    reason: str = ""
    updated: str = ""
    schema: int = RECORD_SCHEMA
    #: The Actions run and job that last held this node (a lease or build left without
    #: an attempt still links its job); absent when empty.
    run_url: str = ""
    job_url: str = ""

    @property
    def key(self) -> str:
        return node_key(self.name, self.version, self.python)

    def lease_expired(self, at: datetime | None = None) -> bool:
        """Leased or building, and the lease is over at ``at`` (the one rule:
        :func:`refinery.core.clock.lease_over`)."""
        return self.status in LEASED and lease_over(self.lease_expires, at)

    def lease_held(self, at: datetime | None = None) -> bool:
        """Leased or building by someone whose lease still runs at ``at``."""
        return self.status in LEASED and not lease_over(self.lease_expires, at)

    def evolve(self, **changes: Any) -> BuildRecord:
        return replace(self, **changes)

    def with_event(self, at: str, kind: str, message: str = "") -> BuildRecord:
        return replace(self, events=(*self.events, Event(at, kind, message)))

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "name": self.name,
            "version": self.version,
            "python": self.python,
            "status": str(self.status),
            "source": self.source,
            "sdist_sha256": self.sdist_sha256,
            "catalog_digest": self.catalog_digest,
            "plan_id": self.plan_id,
            "lease_expires": self.lease_expires,
            "attempts": [a.to_json() for a in self.attempts],
            "wheel": self.wheel.to_json() if self.wheel else None,
            "events": [e.to_json() for e in self.events],
            "reason": self.reason,
            "updated": self.updated,
        } | {k: v for k, v in (("run_url", self.run_url), ("job_url", self.job_url)) if v}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        _check_schema(data, RECORD_SCHEMA, "build record")
        return cls(
            name=data["name"],
            version=data["version"],
            python=data["python"],
            status=NodeStatus(data["status"]),
            source=data.get("source", "built"),
            sdist_sha256=data.get("sdist_sha256"),
            catalog_digest=data.get("catalog_digest", ""),
            plan_id=data.get("plan_id"),
            lease_expires=data.get("lease_expires"),
            attempts=tuple(Attempt.from_json(a) for a in data.get("attempts", ())),
            wheel=WheelRef.from_json(data["wheel"]) if data.get("wheel") else None,
            events=tuple(Event.from_json(e) for e in data.get("events", ())),
            reason=data.get("reason", ""),
            updated=data.get("updated", ""),
            run_url=data.get("run_url", ""),
            job_url=data.get("job_url", ""),
        )


@dataclass(frozen=True, slots=True)
class InputRecord:
    """``inputs/<input_id>.json``: one committed requirements file and where it stands."""

    input_id: str
    path: str
    commit: str
    status: InputStatus
    plan_id: str | None = None
    reason: str = ""
    updated: str = ""
    schema: int = INPUT_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "input_id": self.input_id,
            "path": self.path,
            "commit": self.commit,
            "status": str(self.status),
            "plan_id": self.plan_id,
            "reason": self.reason,
            "updated": self.updated,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        _check_schema(data, INPUT_SCHEMA, "input record")
        d = dict(data)
        d["status"] = InputStatus(d["status"])
        return _build(cls, d)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Shard:
    shard: int
    wave: int
    nodes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"shard": self.shard, "wave": self.wave, "nodes": list(self.nodes)}
