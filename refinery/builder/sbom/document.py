"""The CycloneDX 1.6 document a built wheel carries in ``.dist-info/sboms/`` (PEP 770).

Pure: :class:`SbomFacts` in, a JSON-ready mapping out. What it lists:

* the wheel itself (``metadata.component``) and the sdist it was built from (name,
  version, sha256, URL; ``scope: excluded`` — it is not inside the wheel);
* every library auditwheel grafted into the wheel, named by what provides it *in the
  build root* (a Debian/RPM package and its target version, or a library pack with its
  identity), with the sha256 of the grafted file; the wheel depends on each;
* the build root (backend, image or root digest, distribution, glibc) and the compilers;
* the build dependencies pypa/build installed, and a fix's system packages (with their
  versions in the root), environment, constraints and build requirements.

Everything that was used but is not shipped carries ``scope: excluded``; refinery's own
facts are ``refinery:*`` properties (CycloneDX's namespace for tool properties).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import refinery
from refinery.core.models import FileRef, GraftedLib, SourcePatch

SPEC_VERSION = "1.6"
SCHEMA_URL = "http://cyclonedx.org/schema/bom-1.6.schema.json"
SBOM_NAME = "refinery.cdx.json"
TOOL = "wheel-refinery"


@dataclass(frozen=True, slots=True)
class Grafted:
    """A grafted library: the record's summary plus what only the SBOM needs."""

    lib: GraftedLib
    sha256: str = ""
    root_path: str = ""  # where it was found in the root (``/usr/lib/…``)
    arch: str = ""  # the package's architecture (Debian ``s390x``)
    identity: str = ""  # a library pack's identity (sha256 of its inputs)


@dataclass(frozen=True, slots=True)
class RootFacts:
    """The build root: backend, image/root digest, distribution and its versions."""

    backend: str
    image: str
    arch: str
    distro_id: str = ""  # os-release ID (debian)
    distro_version: str = ""  # VERSION_ID (12)
    distro_name: str = ""  # PRETTY_NAME
    glibc: str = ""  # the root's C library package version
    compilers: tuple[tuple[str, str], ...] = ()  # (name, version)
    target_glibc: str = ""  # what zig links against, when it compiled


@dataclass(frozen=True, slots=True)
class FixFacts:
    """A hint's (or derived) fix as the attempt applied it."""

    system_packages: tuple[tuple[str, str, str], ...] = ()  # (name, version, arch)
    env: tuple[tuple[str, str], ...] = ()
    constraints: tuple[str, ...] = ()
    build_requires: tuple[str, ...] = ()
    config_settings: tuple[str, ...] = ()
    packs: tuple[str, ...] = ()
    patches: tuple[SourcePatch, ...] = ()  # applied to the sdist before the build
    vendor: tuple[tuple[str, str], ...] = ()  # (pack, folder): packs copied into the sdist


@dataclass(frozen=True, slots=True)
class SbomFacts:
    """Everything the document says, gathered by :mod:`refinery.builder.sbom.collect`."""

    name: str
    version: str
    wheel: str  # the wheel's file name
    sdist: FileRef | None
    root: RootFacts
    grafted: tuple[Grafted, ...] = ()
    build_deps: tuple[tuple[str, str], ...] = ()  # (name, version)
    fix: FixFacts = field(default_factory=FixFacts)
    replaced: tuple[str, ...] = ()  # SBOM files of others this one replaced, and why
    timestamp: str = ""


def pypi_purl(name: str, version: str, filename: str = "") -> str:
    out = f"pkg:pypi/{quote(name.lower().replace('_', '-'), safe='')}@{quote(version, safe='')}"
    return out + (f"?file_name={quote(filename, safe='')}" if filename else "")


def deb_purl(root: RootFacts, name: str, version: str, arch: str) -> str:
    vendor = root.distro_id or "debian"
    distro = f"&distro={vendor}-{root.distro_version}" if root.distro_version else ""
    return f"pkg:deb/{vendor}/{quote(name, safe='')}@{quote(version, safe='')}?arch={arch}{distro}"


def _props(**values: str) -> list[dict[str, str]]:
    return [{"name": f"refinery:{k.replace('_', '-')}", "value": v} for k, v in values.items() if v]


def _grafted(facts: SbomFacts, g: Grafted) -> dict[str, Any]:
    lib = g.lib
    out: dict[str, Any] = {"type": "library", "scope": "required"}
    if lib.kind in ("deb", "rpm"):
        out["name"], out["version"] = lib.package, lib.version
        if lib.kind == "deb":
            out["purl"] = deb_purl(facts.root, lib.package, lib.version, g.arch or facts.root.arch)
    elif lib.kind == "pack":
        out["name"], out["version"] = lib.package, lib.version
        out["purl"] = f"pkg:generic/{quote(lib.package, safe='')}@{quote(lib.version, safe='')}"
    else:
        out["name"] = lib.soname
    out["bom-ref"] = f"grafted:{lib.file}"
    if g.sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": g.sha256}]
    provider = {"deb": "dpkg database of the build root", "rpm": "rpm database of the build root"}
    out["properties"] = _props(
        role="grafted-library",
        file=lib.file,
        soname=lib.soname,
        root_path=g.root_path,
        provider=provider.get(lib.kind, "library pack" if lib.kind == "pack" else "unknown"),
        pack_identity=g.identity,
    )
    return out


def _sdist(facts: SbomFacts) -> dict[str, Any] | None:
    ref = facts.sdist
    if ref is None:
        return None
    out: dict[str, Any] = {
        "type": "library",
        "bom-ref": "sdist",
        "name": facts.name,
        "version": facts.version,
        "scope": "excluded",
        "purl": pypi_purl(facts.name, facts.version, ref.filename),
        "properties": _props(role="sdist", file=ref.filename),
    }
    if ref.sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": ref.sha256}]
    if ref.url:
        out["externalReferences"] = [{"type": "distribution", "url": ref.url}]
    if facts.fix.patches:  # the wheel was built from this sdist as patched, and how
        out["pedigree"] = {
            "patches": [
                {
                    "type": "unofficial",
                    "diff": {"text": {"contentType": "text/x-diff", "content": p.text}},
                }
                for p in facts.fix.patches
            ]
        }
    return out


def _root(facts: SbomFacts) -> list[dict[str, Any]]:
    root = facts.root
    system: dict[str, Any] = {
        "type": "operating-system",
        "bom-ref": "build-root",
        "name": root.distro_id or root.backend,
        "scope": "excluded",
        "properties": _props(
            role="build-root",
            backend=root.backend,
            image=root.image,
            arch=root.arch,
            glibc=root.glibc,
            target_glibc=root.target_glibc,
        ),
    }
    if root.distro_version:
        system["version"] = root.distro_version
    if root.distro_name:
        system["description"] = root.distro_name
    out = [system]
    for name, version in root.compilers:
        compiler: dict[str, Any] = {"type": "application", "bom-ref": f"compiler:{name}"}
        compiler |= {"name": name, "scope": "excluded", "properties": _props(role="compiler")}
        if version:
            compiler["version"] = version
        out.append(compiler)
    return out


def _used(facts: SbomFacts) -> list[dict[str, Any]]:
    """Build dependencies and a fix's system packages: used, not shipped."""
    out: list[dict[str, Any]] = []
    for name, version in facts.build_deps:
        purl = pypi_purl(name, version)
        out.append(
            {"type": "library", "bom-ref": f"build-dep:{purl}", "name": name, "version": version}
            | {"scope": "excluded", "purl": purl, "properties": _props(role="build-dependency")}
        )
    for name, version, arch in facts.fix.system_packages:
        item: dict[str, Any] = {"type": "library", "bom-ref": f"fix-package:{name}", "name": name}
        item |= {"scope": "excluded", "properties": _props(role="fix-system-package")}
        if version:
            item["version"] = version
            item["purl"] = deb_purl(facts.root, name, version, arch or facts.root.arch)
        out.append(item)
    return out


def _fix_properties(fix: FixFacts) -> list[dict[str, str]]:
    out = [{"name": "refinery:fix:env", "value": f"{k}={v}"} for k, v in fix.env]
    out += [{"name": "refinery:fix:constraint", "value": c} for c in fix.constraints]
    out += [{"name": "refinery:fix:build-requires", "value": r} for r in fix.build_requires]
    out += [{"name": "refinery:fix:config-setting", "value": c} for c in fix.config_settings]
    out += [{"name": "refinery:fix:pack", "value": p} for p in fix.packs]
    out += [{"name": "refinery:fix:vendor", "value": f"{p} -> {d}/"} for p, d in fix.vendor]
    out += [
        {"name": "refinery:fix:patch", "value": f"{p.name} sha256:{p.sha256}"} for p in fix.patches
    ]
    return out


def cyclonedx(facts: SbomFacts) -> dict[str, Any]:
    """The CycloneDX 1.6 JSON document for ``facts`` (deterministic but for the time)."""
    wheel_purl = pypi_purl(facts.name, facts.version, facts.wheel)
    subject = {"type": "library", "bom-ref": wheel_purl, "name": facts.name}
    subject |= {"version": facts.version, "purl": wheel_purl}
    grafted = [_grafted(facts, g) for g in facts.grafted]
    sdist = _sdist(facts)
    components = [*([sdist] if sdist else []), *grafted, *_root(facts), *_used(facts)]
    seed = f"{facts.wheel}:{facts.sdist.sha256 if facts.sdist else ''}:{facts.root.image}"
    metadata: dict[str, Any] = {
        "tools": {
            "components": [{"type": "application", "name": TOOL, "version": refinery.__version__}]
        },
        "component": subject,
    }
    if facts.timestamp:
        metadata["timestamp"] = facts.timestamp
    props = _fix_properties(facts.fix)
    props += [{"name": "refinery:replaced", "value": r} for r in facts.replaced]
    if props:
        metadata["properties"] = props
    return {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'refinery:' + seed)}",
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": [
            {"ref": wheel_purl, "dependsOn": [c["bom-ref"] for c in grafted]},
            *({"ref": c["bom-ref"]} for c in grafted),
        ],
    }


def components_table(doc: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(role, name, version, where: file or purl) of every component, for people."""
    rows: list[tuple[str, str, str, str]] = []
    for c in doc.get("components", ()):
        props = {p.get("name"): p.get("value", "") for p in c.get("properties", ())}
        role = props.get("refinery:role") or c.get("type", "")
        where = props.get("refinery:file") or c.get("purl", "") or props.get("refinery:image", "")
        rows.append((role, str(c.get("name", "")), str(c.get("version", "")), where))
    return rows
