"""Provenance inside the wheel: a CycloneDX SBOM in ``.dist-info/sboms/`` (PEP 770).

:func:`write_sbom` runs after ``auditwheel repair``, while the build session (and so the
root with the fix's packages installed) still exists: it asks the root which package
provides each grafted library, builds the document (:mod:`.document`) and writes it into
the wheel with its ``RECORD`` row (:mod:`.wheelfile`). auditwheel's own
``auditwheel.cdx.json`` is taken out: it asks the *host* (``dpkg -S``/``rpm -qf`` of
the repair machine) about libraries that came from the s390x root, so its answers are
wrong or empty here; ours replaces it and says so (``refinery:replaced``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refinery.builder.roots import Session
from refinery.builder.sbom import collect
from refinery.builder.sbom.document import (
    SBOM_NAME,
    FixFacts,
    Grafted,
    RootFacts,
    SbomFacts,
    components_table,
    cyclonedx,
)
from refinery.builder.sbom.dpkg import PackageDb
from refinery.builder.sbom.wheelfile import AUDITWHEEL_SBOM, add_sbom, read_sboms, sbom_names
from refinery.core.clock import now
from refinery.core.models import FileRef, PackUse, SbomSummary

__all__ = [
    "SBOM_NAME",
    "BuildFacts",
    "FixFacts",
    "Grafted",
    "PackageDb",
    "RootFacts",
    "SbomFacts",
    "components_table",
    "cyclonedx",
    "read_sboms",
    "write_sbom",
]


@dataclass(frozen=True, slots=True)
class BuildFacts:
    """What the build step knows of the attempt: the node, its fix, the root, its log."""

    name: str
    version: str
    sdist: FileRef | None
    backend: str
    image: str
    arch: str
    spec: Any = None  # refinery.builder.options.AttemptSpec (the fix)
    lines: Sequence[str] = ()
    packs: Sequence[PackUse] = ()


def gather(wheel: Path, session: Session, build: BuildFacts) -> SbomFacts:
    """The SBOM's facts for ``wheel``, asked of ``session``'s root."""
    members = collect.grafted_members(wheel)
    view = collect.view_of(session)
    if view is not None:
        db = PackageDb.read(view.layers)
        grafted = collect.grafted_from_root(view, db, members)
        os_facts = collect.os_facts(view.layers)
    else:
        db = None
        sonames = sorted({collect.original_soname(m) for m in members})
        answers, os_facts = collect.ask_inside(session, sonames)
        grafted = collect.grafted_from_answers(answers, members)
    with zipfile.ZipFile(wheel) as zf:
        replaced = [n for n in sbom_names(zf.namelist()) if n.endswith("/" + AUDITWHEEL_SBOM)]
    return SbomFacts(
        name=build.name,
        version=build.version,
        wheel=wheel.name,
        sdist=build.sdist,
        root=collect.root_facts(session, build.backend, build.image, build.arch, db, os_facts),
        grafted=grafted,
        build_deps=collect.build_deps(build.lines),
        fix=collect.fix_facts(build.spec, db, build.packs),
        replaced=tuple(f"{n} (auditwheel asked the host, not the build root)" for n in replaced),
        timestamp=now(),
    )


def write_sbom(wheel: Path, session: Session, build: BuildFacts) -> SbomSummary:
    """Gather, build and write the SBOM into ``wheel`` (in place); its summary."""
    facts = gather(wheel, session, build)
    doc = cyclonedx(facts)
    path = add_sbom(wheel, SBOM_NAME, doc, drop=(AUDITWHEEL_SBOM,))
    grafted = tuple(g.lib for g in facts.grafted)
    return SbomSummary(path, len(doc["components"]), grafted)
