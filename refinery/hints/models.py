"""Typed, frozen models of the hint catalog (DESIGN §5.4). Imports nothing of ours but
``refinery.core.models``; the loader builds them from ``hints/*.yaml``.

A :class:`Hint` says "when the log shows this, apply that": log patterns, a scope, a
:class:`HintFix` with system packages per package manager, env vars, extra build
requirements and pip constraints, a note and evidence. A :class:`PackageEntry` holds
per-package settings: apply these hints' fixes before the first attempt (learned), or
build under emulation from the first attempt (``emulate``).
:class:`Remedy` is what the build runner applies to one attempt (one package manager,
fixes merged); the runner knows it as ``Fix``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from refinery.core.models import DerivedFix, SourcePatch, normalize_name
from refinery.core.vocab import PACKAGE_MANAGERS

MANAGERS = PACKAGE_MANAGERS
#: Seconds a package's own tests may run when its setting names no ``timeout``.
DEFAULT_TEST_TIMEOUT = 1800.0
#: What a fix's env values may name of the node being built: ``{version}``, ``{name}``.
NODE_FIELDS = ("version", "name")
#: Hint ids of derived fixes: ``derived:libyaml-dev`` (never a catalog id: ids are words).
DERIVED_PREFIX = "derived:"
#: Hint id of a package entry's own (learned) fix: ``learned:<package>``.
LEARNED_PREFIX = "learned:"


@dataclass(frozen=True, slots=True)
class Location:
    """Where an item was defined: ``file:line`` (1-based) for every message."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a hint applies; an empty field means "anywhere"."""

    packages: tuple[str, ...] = ()  # PEP 503-normalised names
    python: str = ""  # a PEP 440 specifier on the Python version, e.g. ">=3.12"
    backends: tuple[str, ...] = ()  # rootfs, container, native, cross
    #: A PEP 440 specifier on the package's version (with ``packages``), e.g. ">=3.11".
    versions: str = ""

    def applies(
        self,
        package: str | None = None,
        python: str | None = None,
        backend: str | None = None,
        version: str | None = None,
    ) -> bool:
        """``None`` for a fact means "unknown": the scope does not exclude it."""
        if self.packages and package is not None and normalize_name(package) not in self.packages:
            return False
        if not (within(python, self.python) and within(version, self.versions)):
            return False
        return not (self.backends and backend is not None and backend not in self.backends)

    @property
    def specificity(self) -> int:
        """Package scope weighs most; Python, version and backend scopes add one each."""
        return (
            (4 if self.packages else 0)
            + bool(self.python)
            + bool(self.versions)
            + bool(self.backends)
        )


def within(version: str | None, specifier: str) -> bool:
    """Whether ``version`` satisfies ``specifier`` (an empty one, or an unknown version,
    does not exclude; an invalid version does), prereleases included."""
    if not specifier or version is None:
        return True
    try:
        return SpecifierSet(specifier).contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


@dataclass(frozen=True, slots=True)
class HintFix:
    """What a hint changes. System packages are per package manager; ``yum`` falls back
    to the ``dnf`` names (same RPM names on RHEL-family images)."""

    apt: tuple[str, ...] = ()
    dnf: tuple[str, ...] = ()
    yum: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    build_requires: tuple[str, ...] = ()  # extra PEP 508 build requirements
    constraints: tuple[str, ...] = ()  # pip constraints, e.g. "cython<3"
    #: Library packs (``packs/<name>.toml``) a cross build for an older glibc installs
    #: instead of the distro packages (other roots use the packages).
    packs: tuple[str, ...] = ()
    config_settings: tuple[str, ...] = ()  # PEP 517 ``-C`` settings, "key=value"
    #: Why this package's build keeps the network ("": it runs isolated, the default).
    network: str = ""
    #: Patches applied to the unpacked sdist (``hints/patches/<name>``, ``patch -p1``).
    patches: tuple[SourcePatch, ...] = ()
    #: Packs of ``packs`` copied into the unpacked sdist, pack -> folder (the layout the
    #: project's own wheel build bundles: pyproj's ``pyproj/proj_dir``).
    vendor: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def lenient(cls, raw: object) -> HintFix:
        """A fix from raw, unvalidated YAML (a display that must not fail on a broken
        catalog): what has the expected shape is kept, the rest ignored."""
        doc: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}

        def items(key: str) -> tuple[str, ...]:
            value = doc.get(key)
            if isinstance(value, str):
                return (value,)
            return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()

        env = doc.get("env")
        vendor = doc.get("vendor")
        network = doc.get("network")
        allowed = ""
        if isinstance(network, Mapping) and network.get("allow") is True:
            allowed = str(network.get("reason") or "allowed")
        return cls(
            apt=items("apt"),
            dnf=items("dnf"),
            yum=items("yum"),
            env={str(k): str(v) for k, v in env.items()} if isinstance(env, Mapping) else {},
            build_requires=items("build_requires"),
            constraints=items("constraints"),
            packs=items("packs"),
            config_settings=items("config_settings"),
            network=allowed,
            patches=tuple(SourcePatch(name, "") for name in items("patches")),
            vendor={str(k): str(v) for k, v in vendor.items()}
            if isinstance(vendor, Mapping)
            else {},
        )

    def for_node(self, name: str, version: str) -> HintFix:
        """This fix with ``{name}``/``{version}`` in its env values filled in."""
        if not any("{" in v for v in self.env.values()):
            return self
        env = {
            k: v.replace("{name}", name).replace("{version}", version) for k, v in self.env.items()
        }
        return replace(self, env=env)

    def packages_for(self, manager: str) -> tuple[str, ...]:
        if manager == "yum":
            return self.yum or self.dnf
        if manager == "dnf":
            return self.dnf
        if manager == "apt":
            return self.apt
        return ()

    @property
    def empty(self) -> bool:
        return not (
            self.apt
            or self.dnf
            or self.yum
            or self.env
            or self.build_requires
            or self.constraints
            or self.packs
            or self.config_settings
            or self.network
            or self.patches
            or self.vendor
        )

    def applicable(self, manager: str) -> bool:
        """Whether anything of this fix can be applied in a root using ``manager``."""
        return bool(
            self.packages_for(manager)
            or self.env
            or self.build_requires
            or self.constraints
            or self.packs
            or self.config_settings
            or self.network
            or self.patches
            or self.vendor
        )

    def recipes(self, manager: str) -> tuple[str, ...]:
        """Human-readable lines in the original system's recipe spelling."""
        return fix_lines(self, (manager,))


def fix_lines(fix: HintFix, managers: Sequence[str] = PACKAGE_MANAGERS) -> tuple[str, ...]:
    """A fix as lines for people, in the original system's recipe spelling: the system
    packages per package manager (``apt: a b``), then ``packs: P`` (library packs),
    ``env: K=V``, ``pip: C`` (pip constraints), ``build-requires: R`` and
    ``config-settings: K=V`` (PEP 517 ``-C``), ``patch: NAME (sha256 …)``. ``yum``,
    which falls back to the ``dnf`` names, gets a line of its own only when shown alone
    or when it has names of its own. The one rendering of a fix: build records,
    ``refinery hints match`` and the status site all show these lines."""
    out: list[str] = []
    for manager in managers:
        if manager == "yum" and not fix.yum and "dnf" in managers:
            continue  # yum only borrows the dnf names shown already
        packages = fix.packages_for(manager)
        if packages:
            out.append(f"{manager}: {' '.join(packages)}")
    if fix.packs:
        out.append(f"packs: {' '.join(fix.packs)}")
    out += [f"vendor: pack {pack} into {folder}/" for pack, folder in fix.vendor.items()]
    out += [f"env: {k}={v}" for k, v in fix.env.items()]
    out += [f"pip: {c}" for c in fix.constraints]
    out += [f"build-requires: {r}" for r in fix.build_requires]
    out += [f"config-settings: {c}" for c in fix.config_settings]
    if fix.network:
        out.append(f"network: allowed ({fix.network})")
    out += [f"patch: {p.summary() if p.text else p.name}" for p in fix.patches]
    return tuple(out)


def fix_summary(fix: HintFix, managers: Sequence[str] = PACKAGE_MANAGERS) -> str:
    """:func:`fix_lines` on one line (``apt: zlib1g-dev · dnf: zlib-devel · env: X=1``)."""
    return " · ".join(fix_lines(fix, managers))


@dataclass(frozen=True, slots=True)
class Evidence:
    """A build a hint fixed: the node key, where, and when."""

    build: str  # name==version@python
    backend: str = ""
    image: str = ""
    attempt: int | None = None
    at: str = ""
    log: str = ""  # store key of the failing attempt's log


@dataclass(frozen=True, slots=True)
class Hint:
    id: str
    patterns: tuple[re.Pattern[str], ...]
    fix: HintFix
    scope: Scope = Scope()
    note: str = ""
    evidence: tuple[Evidence, ...] = ()
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class PackageTests:
    """A package's own tests, run on the target after the import smoke test: ``command``
    (``pytest …``; run as ``python -m pytest`` with a JUnit XML report), ``requires``
    (test requirements, PEP 508, installed beside the wheel), ``timeout`` (seconds) and
    ``known_failures``: test ids (or their tail, e.g. ``TestClass::test_x``) known to
    fail on the target, each with its reason. Known failures still run; their failure
    is recorded as known and does not fail the attempt. ``from_sdist``: paths of the
    sdist (its ``tests`` folder, the data they read) for a package whose wheel ships no
    tests: copied into a folder of their own, where the command runs (the installed
    wheel, never the sdist's sources, is what they import)."""

    command: str
    requires: tuple[str, ...] = ()
    timeout: float = DEFAULT_TEST_TIMEOUT
    known_failures: tuple[tuple[str, str], ...] = ()
    from_sdist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PackageEntry:
    """Per-package settings: apply ``hints`` (and ``fix``, a fix of its own: a derived
    fix that worked, learned) to ``package`` before its first attempt; ``emulate`` (a
    reason) builds it under emulation from the first attempt when the farm
    cross-compiles (``--backend auto``)."""

    package: str  # normalised
    hints: tuple[str, ...]
    python: str = ""  # optional specifier
    note: str = ""
    evidence: tuple[Evidence, ...] = ()
    location: Location | None = None
    emulate: str = ""  # why this package cannot be cross-compiled ("" = it can)
    fix: HintFix | None = None
    tests: PackageTests | None = None  # the package's own tests on the target
    versions: str = ""  # optional specifier on the package's version
    #: Modules the smoke test imports besides the wheel's top-level ones (an extension
    #: whose initialisation a top-level import never runs: cryptography's ``_rust``).
    imports: tuple[str, ...] = ()

    def applies(self, package: str, python: str | None = None, version: str | None = None) -> bool:
        scope = Scope(packages=(self.package,), python=self.python, versions=self.versions)
        return scope.applies(package, python, version=version)

    @property
    def own_hint(self) -> Hint | None:
        """The entry's own fix as a hint (id ``learned:<package>``), if it has one."""
        if self.fix is None:
            return None
        return Hint(f"{LEARNED_PREFIX}{self.package}", (), self.fix, location=self.location)


@dataclass(frozen=True, slots=True)
class Catalog:
    hints: tuple[Hint, ...] = ()
    packages: tuple[PackageEntry, ...] = ()
    digest: str = ""
    files: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Hint]:
        return iter(self.hints)

    def __len__(self) -> int:
        return len(self.hints)

    def get(self, hint_id: str) -> Hint | None:
        for hint in self.hints:
            if hint.id == hint_id:
                return hint
        return None

    def for_package(
        self, package: str, python: str | None = None, version: str | None = None
    ) -> tuple[PackageEntry, ...]:
        """The entries for ``package`` (an unknown ``python``/``version`` excludes none)."""
        return tuple(p for p in self.packages if p.applies(package, python, version))

    def emulate(self, package: str, python: str | None = None) -> str | None:
        """Why ``package`` is built under emulation from its first attempt (the first
        applicable entry's ``emulate`` reason), or None."""
        for entry in self.for_package(package, python):
            if entry.emulate:
                return entry.emulate
        return None

    def imports(self, package: str, python: str | None = None) -> tuple[str, ...]:
        """The modules the applicable entries ask the smoke test to import as well."""
        found = (m for entry in self.for_package(package, python) for m in entry.imports)
        return tuple(dict.fromkeys(found))

    def tests(
        self, package: str, python: str | None = None, version: str | None = None
    ) -> PackageTests | None:
        """The first applicable entry's test settings for ``package`` (at ``version``:
        an entry scoped to other versions is left out), or None."""
        for entry in self.for_package(package, python, version):
            if entry.tests is not None:
                return entry.tests
        return None


@dataclass(frozen=True)
class Remedy:
    """Everything to change before one attempt, for one root (one package manager).

    The build runner applies it in a fresh throwaway root (``refinery.builder.runner.Fix``
    is this class). ``recipes`` are human-readable lines for the record; ``matched_lines``
    are the log lines of the failed attempt that made the hints match; ``delay`` is the
    backoff to wait before the attempt. ``packs`` are library packs a cross build for an
    older glibc installs; there they stand in for ``pack_packages`` (the system packages
    of the fixes that name packs), which every other root installs.
    """

    hint_ids: tuple[str, ...] = ()
    recipes: tuple[str, ...] = ()  # human-readable: "apt: libyaml-dev"
    system_packages: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    build_requires: tuple[str, ...] = ()
    matched_lines: tuple[str, ...] = ()
    delay: float = 0.0
    packs: tuple[str, ...] = ()
    pack_packages: tuple[str, ...] = ()
    config_settings: tuple[str, ...] = ()
    derived: tuple[DerivedFix, ...] = ()  # fixes derived from the file index, not the catalog
    network: str = ""  # why the build keeps the network ("": isolated)
    patches: tuple[SourcePatch, ...] = ()  # applied to the unpacked sdist, in order
    vendor: Mapping[str, str] = field(default_factory=dict)  # pack -> folder in the sdist

    @classmethod
    def from_hints(cls, hints: tuple[Hint, ...], manager: str) -> Remedy:
        out = cls()
        for hint in hints:
            out = out.plus(hint, manager)
        return out

    def plus(self, hint: Hint, manager: str) -> Remedy:
        """This remedy with ``hint``'s fix for ``manager`` merged in (order kept, no dups)."""
        fix = hint.fix
        env = dict(self.env)
        env.update(fix.env)
        merged = replace(
            self,
            hint_ids=_union(self.hint_ids, (hint.id,)),
            system_packages=_union(self.system_packages, fix.packages_for(manager)),
            env=env,
            constraints=_union(self.constraints, fix.constraints),
            build_requires=_union(self.build_requires, fix.build_requires),
            packs=_union(self.packs, fix.packs),
            pack_packages=_union(
                self.pack_packages, fix.packages_for(manager) if fix.packs else ()
            ),
            config_settings=_union(self.config_settings, fix.config_settings),
            network=self.network or fix.network,
            patches=(*self.patches, *_new_patches(self.patches, fix.patches)),
            vendor={**self.vendor, **fix.vendor},
        )
        return merged.with_recipes(manager)

    def plus_derived(self, derived: DerivedFix, manager: str) -> Remedy:
        """This remedy with a derived fix merged in: its distribution package (for
        ``manager``) or its build requirement, under the id ``derived:<what>``."""
        what = derived.package or derived.requirement
        packages = (derived.package,) if derived.package else ()
        fix = HintFix(
            apt=packages if manager == "apt" else (),
            dnf=packages if manager == "dnf" else (),
            yum=packages if manager == "yum" else (),
            build_requires=(derived.requirement,) if derived.requirement else (),
        )
        merged = self.plus(Hint(f"{DERIVED_PREFIX}{what}", (), fix), manager)
        return replace(merged, derived=(*self.derived, derived))

    def adds_derived(self, derived: DerivedFix) -> bool:
        """Whether a derived fix would change anything this remedy does not already do."""
        if derived.package:
            return derived.package not in self.system_packages
        return bool(derived.requirement) and derived.requirement not in self.build_requires

    def with_recipes(self, manager: str) -> Remedy:
        summary = HintFix(
            apt=self.system_packages if manager == "apt" else (),
            dnf=self.system_packages if manager == "dnf" else (),
            yum=self.system_packages if manager == "yum" else (),
            env=self.env,
            constraints=self.constraints,
            build_requires=self.build_requires,
            packs=self.packs,
            config_settings=self.config_settings,
            network=self.network,
            patches=self.patches,
            vendor=self.vendor,
        )
        return replace(self, recipes=summary.recipes(manager))

    def adds_to(self, hint: Hint, manager: str) -> bool:
        """Whether ``hint`` would change anything this remedy does not already do."""
        fix = hint.fix
        return bool(
            set(fix.packages_for(manager)) - set(self.system_packages)
            or any(self.env.get(k) != v for k, v in fix.env.items())
            or set(fix.constraints) - set(self.constraints)
            or set(fix.build_requires) - set(self.build_requires)
            or set(fix.packs) - set(self.packs)
            or set(fix.config_settings) - set(self.config_settings)
            or (fix.network and not self.network)
            or _new_patches(self.patches, fix.patches)
            or any(self.vendor.get(k) != v for k, v in fix.vendor.items())
        )


def _new_patches(
    have: tuple[SourcePatch, ...], more: tuple[SourcePatch, ...]
) -> tuple[SourcePatch, ...]:
    """The patches of ``more`` not yet in ``have`` (by name)."""
    names = {p.name for p in have}
    return tuple(p for p in more if p.name not in names)


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))
