"""Rust crates from the Debian archive, for builds that cannot reach crates.io.

Debian packages the crates its Rust programs need as ``librust-<crate>-dev``: each
``.deb`` carries one crate's source under ``usr/share/cargo/registry/<crate>-<version>/``
(with the ``.cargo-checksum.json`` a cargo *directory source* wants), and its
``Depends`` name the crates it needs (``librust-memoffset-0.8+default-dev``), which the
packages' ``Provides`` answer. Debian builds its own Rust packages exactly so: a
directory source replaces crates.io and the lock file is resolved again against it.

:class:`CrateArchive` does the same for an sdist's Cargo projects. Given the crate names
of their ``Cargo.lock`` files (or ``Cargo.toml``), it follows the ``Depends`` of those
packages through each suite's ``Packages`` index (verified through the suite's signed
``InRelease``, cached by digest), downloads every ``.deb`` of the closure once (checked
against the index's SHA-256), unpacks each crate once into the cache, and links the
crates into a vendor folder. The versions are Debian's, not the lock file's: a crate is
used only in a version semver-compatible with what the project asks (cargo checks that
when it resolves the lock again); a project that needs a version Debian does not have
fails in that resolution, plainly.
"""

from __future__ import annotations

import json
import lzma
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import urllib3

from refinery.core.errors import NetworkError
from refinery.upstream.debian import ContentsSource, SignedRelease, sha256_of

SCHEMA = 1
#: Suites whose crates are recent enough for today's PyO3 (bookworm ships 0.17).
CRATE_SUITES = ("trixie", "sid")
_DEP = re.compile(r"librust-[a-z0-9][a-z0-9.+-]*-dev")
_FIELD = re.compile(r"^([A-Za-z0-9-]+): (.*)$", re.M)
_SEMVER = re.compile(r"^(\d+)\.(\d+)")
REGISTRY = "usr/share/cargo/registry"


@dataclass(frozen=True, slots=True)
class CratePackage:
    """One ``librust-*-dev`` package of a suite's index."""

    package: str
    version: str
    filename: str
    sha256: str
    depends: tuple[tuple[str, ...], ...]  # each: alternatives, first available wins


@dataclass(frozen=True, slots=True)
class Vendored:
    """A vendor folder made for one build: its crates (``name-version``) and packages."""

    folder: Path
    crates: tuple[str, ...]
    packages: tuple[str, ...]
    missing: tuple[str, ...]  # wanted crates no suite has


def package_name(crate: str, version: str = "") -> str:
    """Debian's name for a crate (``librust-foo-bar-dev``), or for the crate's semver slot
    when ``version`` is given (``librust-syn-1-dev``, ``librust-pyo3-0.22-dev``): the
    ``Provides`` of whichever package holds that version."""
    base = "librust-" + crate.lower().replace("_", "-")
    found = _SEMVER.match(version)
    if not found:
        return base + "-dev"
    major, minor = found.groups()
    slot = major if major != "0" else f"0.{minor}"
    return f"{base}-{slot}-dev"


def parse_packages(text: str) -> tuple[dict[str, CratePackage], dict[str, str]]:
    """The ``librust-*-dev`` entries of a ``Packages`` index, and every name they answer
    for (their own and their ``Provides``) -> package."""
    packages: dict[str, CratePackage] = {}
    names: dict[str, str] = {}
    for para in text.split("\n\n"):
        fields = dict(_FIELD.findall(para))
        name = fields.get("Package", "")
        if not (name.startswith("librust-") and name.endswith("-dev")):
            continue
        depends = tuple(
            tuple(m.group(0) for m in map(_DEP.search, alt.split("|")) if m)
            for alt in fields.get("Depends", "").split(",")
        )
        packages[name] = CratePackage(
            name,
            fields.get("Version", ""),
            fields.get("Filename", ""),
            fields.get("SHA256", ""),
            tuple(d for d in depends if d),
        )
        names[name] = name
        for provided in fields.get("Provides", "").split(","):
            token = provided.strip().split(" ")[0]
            if token:
                names.setdefault(token, name)
    return packages, names


def lock_crates(project: Path) -> dict[str, str]:
    """Crate name -> version of the registry packages in ``project``'s ``Cargo.lock``,
    or the dependencies its ``Cargo.toml`` names (version requirement) without a lock."""
    lock = project / "Cargo.lock"
    if lock.is_file():
        data = tomllib.loads(lock.read_text())
        return {
            str(p["name"]): str(p["version"])
            for p in data.get("package", [])
            if str(p.get("source", "")).startswith("registry+")
        }
    manifest = tomllib.loads((project / "Cargo.toml").read_text())
    wanted: dict[str, str] = {}
    tables = [manifest, *manifest.get("target", {}).values()]
    for table in tables:
        for key in ("dependencies", "build-dependencies"):
            for name, spec in table.get(key, {}).items():
                if isinstance(spec, dict) and ("path" in spec or "git" in spec):
                    continue
                version = spec.get("version", "") if isinstance(spec, dict) else str(spec)
                crate = spec.get("package", name) if isinstance(spec, dict) else name
                wanted[str(crate)] = str(version).lstrip("=^~ ")
    return wanted


class CrateArchive:
    """Crates of ``suites`` on ``mirror`` (indexes for ``arch``), cached below ``cache``."""

    def __init__(
        self,
        mirror: str,
        cache: Path,
        *,
        suites: Sequence[str] = CRATE_SUITES,
        arch: str = "amd64",
        http: urllib3.PoolManager | None = None,
    ):
        self.mirror = mirror.rstrip("/")
        self.cache = cache
        self.suites = tuple(suites)
        self.arch = arch
        self.http = http or urllib3.PoolManager(retries=urllib3.Retry(3, backoff_factor=1))
        self._indexes: list[tuple[dict[str, CratePackage], dict[str, str]]] | None = None

    # --- indexes ---------------------------------------------------------------------
    def indexes(self) -> list[tuple[dict[str, CratePackage], dict[str, str]]]:
        if self._indexes is None:
            self._indexes = [self._index(suite) for suite in self.suites]
        return self._indexes

    def _index(self, suite: str) -> tuple[dict[str, CratePackage], dict[str, str]]:
        release = SignedRelease(ContentsSource(self.mirror, suite, self.arch), self.http)
        name = f"main/binary-{self.arch}/Packages.xz"
        stem = f"crates-{suite}-{self.arch}"
        cached = release.cached(name, self.cache, stem, f"-v{SCHEMA}.json", _write_index)
        doc = json.loads(cached.read_text())
        packages = {k: _from_json(v) for k, v in doc["packages"].items()}
        return packages, dict(doc["names"])

    # --- the closure -----------------------------------------------------------------
    def closure(self, wanted: dict[str, str]) -> tuple[list[CratePackage], list[str]]:
        """The packages of every suite that hold ``wanted`` (crate -> version) and what
        they depend on; the wanted crates no suite has."""
        chosen: dict[str, CratePackage] = {}
        found: set[str] = set()
        for packages, names in self.indexes():
            todo: list[str] = []
            for crate, version in wanted.items():
                name = names.get(package_name(crate, version)) or names.get(package_name(crate))
                if name is not None:
                    todo.append(name)
                    found.add(crate)
            seen: set[str] = set()
            while todo:
                name = todo.pop()
                if name in seen:
                    continue
                seen.add(name)
                package = packages[name]
                chosen.setdefault(package.filename, package)
                for alternatives in package.depends:
                    first = next((names[a] for a in alternatives if a in names), None)
                    if first is not None:
                        todo.append(first)
        return list(chosen.values()), [c for c in wanted if c not in found]

    # --- unpacking -------------------------------------------------------------------
    def _crates_of(self, package: CratePackage) -> list[Path]:
        """The crate folders of one package, unpacked once into the cache."""
        done = self.cache / "unpacked" / f"{Path(package.filename).stem}.json"
        registry = self.cache / "registry"
        if done.is_file():
            return [registry / n for n in json.loads(done.read_text())]
        deb = self.cache / "debs" / Path(package.filename).name
        if not deb.is_file():
            deb.parent.mkdir(parents=True, exist_ok=True)
            SignedRelease.get(self.http, f"{self.mirror}/{package.filename}", deb)
            if sha256_of(deb) != package.sha256:
                deb.unlink()
                raise NetworkError(f"{package.filename}: SHA-256 is not the index's")
        registry.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True, capture_output=True)
            names = []
            source = Path(tmp) / REGISTRY
            for crate in sorted(source.iterdir()) if source.is_dir() else []:
                names.append(crate.name)
                if not (registry / crate.name).exists():
                    shutil.move(str(crate), registry / crate.name)
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(names))
        deb.unlink()
        return [registry / n for n in names]

    def vendor(self, wanted: dict[str, str], folder: Path) -> Vendored:
        """A vendor folder (a cargo directory source) holding ``wanted`` and what those
        crates need, as Debian ships them."""
        packages, missing = self.closure(wanted)
        folder.mkdir(parents=True, exist_ok=True)
        crates: list[str] = []
        for package in sorted(packages, key=lambda p: p.package):
            for crate in self._crates_of(package):
                link = folder / crate.name
                if not link.exists():
                    link.symlink_to(crate, target_is_directory=True)
                    crates.append(crate.name)
        return Vendored(
            folder, tuple(sorted(crates)), tuple(p.package for p in packages), tuple(missing)
        )


def cargo_config(vendor: Path) -> str:
    """``$CARGO_HOME/config.toml``: the vendor folder replaces crates.io; the resolver
    prefers versions the toolchain's rustc can build."""
    return (
        "# crates.io is unreachable: crates from the Debian archive (refinery)\n"
        "[source.crates-io]\n"
        'replace-with = "debian-archive"\n\n'
        "[source.debian-archive]\n"
        f"directory = {json.dumps(str(vendor))}\n\n"
        "[net]\noffline = true\n\n"
        '[resolver]\nincompatible-rust-versions = "fallback"\n'
    )


def _write_index(xz: Path, dest: Path) -> None:
    """A suite's ``Packages.xz`` as the JSON of its Rust crate packages."""
    packages, names = parse_packages(lzma.decompress(xz.read_bytes()).decode())
    doc = {"packages": {k: _as_json(v) for k, v in packages.items()}, "names": names}
    dest.write_text(json.dumps(doc))


def _as_json(p: CratePackage) -> list[object]:
    return [p.package, p.version, p.filename, p.sha256, [list(d) for d in p.depends]]


def _from_json(raw: Iterable[object]) -> CratePackage:
    package, version, filename, sha256, depends = list(raw)
    assert isinstance(depends, list)
    return CratePackage(
        str(package), str(version), str(filename), str(sha256), tuple(tuple(d) for d in depends)
    )
