"""System libraries a repaired wheel may assume, given to the clean root that tests it.

auditwheel's policy for a manylinux (or musllinux) tag lists the libraries every
distribution of that tag ships — glibc's, ``libstdc++``, ``libgcc_s``, and also
``libglib-2.0.so.0``, ``libX11.so.6``, ``libGL.so.1`` …: a repaired wheel links them
without carrying them (``dbus-python``'s GLib main-loop module needs GLib). A minimal
root lacks some of them (a debootstrapped Debian has no GLib) where the user's RHEL, SLES
or Ubuntu has them. So before the import, the smoke (and tests) session installs, from
the root's own distribution, the packages that ship exactly those libraries the wheel
needs, its tags' policy allows and the root lacks — nothing else. A session is a
throwaway copy: the root itself stays clean. Any other missing library is the wheel's
defect and fails the import as before.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from refinery.builder.artifacts import elf_members
from refinery.builder.proc import OnLine
from refinery.core.target import wheel_platforms

if TYPE_CHECKING:
    from refinery.builder.distindex import RootIndex
    from refinery.builder.roots import Session

POLICY_FILES = ("manylinux-policy.json", "musllinux-policy.json")
_POLICY_TAG = re.compile(r"^((?:many|musl)linux_\d+_\d+|manylinux\d+)_")
#: The line the probe prints for a library the root lacks.
ABSENT = "SYSTEM LIBRARY ABSENT "
# "$@": library names; ldconfig's cache is what the dynamic loader searches, one
# "<TAB>name (flags) => path" line per library (a root without one — no ldconfig, an
# empty cache — reports nothing absent: nothing is given). Plain sh, no other tool.
PROBE = (
    "cache=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) || exit 0; "
    '[ -n "$cache" ] || exit 0; for lib; do case "$cache" in '
    '*"\t$lib ("*) ;; *) echo "' + ABSENT + '$lib" ;; esac; done'
)


class UnprovidedLibrary(Exception):
    """No package of the root's distribution is known to ship a library it lacks."""


@functools.cache
def policy_libraries() -> dict[str, frozenset[str]]:
    """Each policy's name and aliases (``manylinux_2_17``, ``manylinux2014``) → the
    libraries it lets a wheel assume, from auditwheel's policy data."""
    out: dict[str, frozenset[str]] = {}
    folder = resources.files("auditwheel") / "policy"
    for name in POLICY_FILES:
        entry = folder / name
        if not entry.is_file():
            continue
        for policy in json.loads(entry.read_text()):
            allowed = frozenset(policy.get("lib_whitelist", ()))
            for alias in (policy["name"], *policy.get("aliases", ())):
                out[alias] = allowed
    return out


def allowed_libraries(wheel_name: str) -> tuple[str, frozenset[str]]:
    """The wheel's policy tag (its first manylinux/musllinux one; empty when it has
    none) and the libraries every such tag of it allows."""
    known = policy_libraries()
    tags = [m.group(1) for p in wheel_platforms(wheel_name) if (m := _POLICY_TAG.match(p))]
    sets = [known[t] for t in tags if t in known]
    if not sets:
        return "", frozenset()
    return tags[0], frozenset.intersection(*sets)


def _dynamic(data: bytes) -> tuple[list[str], str]:
    """(DT_NEEDED entries, DT_SONAME) of an ELF file's bytes."""
    try:
        dynamic = ELFFile(io.BytesIO(data)).get_section_by_name(".dynamic")
    except ELFError:
        return [], ""
    if not isinstance(dynamic, DynamicSection):
        return [], ""
    needed, soname = [], ""
    for tag in dynamic.iter_tags():
        if tag.entry.d_tag == "DT_NEEDED":
            needed.append(str(getattr(tag, "needed", "")))
        elif tag.entry.d_tag == "DT_SONAME":
            soname = str(getattr(tag, "soname", ""))
    return needed, soname


def needed_libraries(wheel: Path) -> tuple[frozenset[str], frozenset[str]]:
    """What the wheel's ELF files need (``DT_NEEDED``) and what it ships itself (file
    names and sonames)."""
    needed: set[str] = set()
    shipped: set[str] = set()
    for name, data in elf_members(wheel):
        wants, soname = _dynamic(data)
        needed.update(wants)
        shipped.update(n for n in (name.rpartition("/")[2], soname) if n)
    return frozenset(needed), frozenset(shipped)


@dataclass(frozen=True)
class Assumed:
    """The system libraries a wheel needs and its ``policy`` lets it assume."""

    policy: str
    libraries: tuple[str, ...]


def assumed(wheel: Path) -> Assumed | None:
    """What of the wheel's needs its policy lets it leave to the system (None: nothing,
    or a wheel without a manylinux/musllinux tag)."""
    policy, allowed = allowed_libraries(wheel.name)
    if not allowed:
        return None
    needed, shipped = needed_libraries(wheel)
    libraries = tuple(sorted((needed & allowed) - shipped))
    return Assumed(policy, libraries) if libraries else None


def _library_package(library: str, found: RootIndex) -> str | None:
    """The runtime package of the root's distribution that ships ``library`` in one of
    its library folders (a ``-dev`` package only when nothing else does)."""
    folders = (f"usr/lib/{found.multiarch}/", f"lib/{found.multiarch}/", "usr/lib/", "lib/")
    best: list[tuple[int, int, str]] = []
    for owner in found.index.owners(library):
        path = owner.path.lstrip("/")
        if not any(path == f"{folder}{library}" for folder in folders):
            continue
        for package in owner.packages:
            dev = package.endswith(("-dev", "-dbg")) or "-dev" in package
            best.append((int(dev), len(path), package))
    return min(best)[2] if best else None


def packages_for(libraries: Sequence[str], manager: str, found: RootIndex | None) -> dict[str, str]:
    """Library → the package to install for it with ``manager`` (``dnf``/``yum``: the
    library's own RPM provide; ``apt``: the package the root's file index names).
    Raises :class:`UnprovidedLibrary` when none is known."""
    if manager in ("dnf", "yum"):
        return {lib: f"{lib}()(64bit)" for lib in libraries}
    out: dict[str, str] = {}
    for lib in libraries:
        package = _library_package(lib, found) if found is not None else None
        if package is None:
            where = "the root's file index" if found is not None else "no file index of the root"
            raise UnprovidedLibrary(f"{lib}: no package ships it ({where})")
        out[lib] = package
    return out


@dataclass(frozen=True)
class Given:
    """What the clean root was given: ``packages`` for ``libraries`` under ``policy``."""

    policy: str
    libraries: tuple[str, ...]
    packages: tuple[str, ...]

    def note(self) -> str:
        return (
            f"the clean root was given {', '.join(self.packages)} for "
            f"{', '.join(self.libraries)}: system libraries the {self.policy} policy lets a "
            "wheel assume, which every target distribution ships and a minimal root lacks"
        )


def absent(lines: Iterable[str]) -> tuple[str, ...]:
    """The libraries the probe's output ``lines`` report absent."""
    return tuple(line.removeprefix(ABSENT).strip() for line in lines if line.startswith(ABSENT))


def give(
    session: Session,
    wheel: Path,
    found: RootIndex | None,
    *,
    timeout: float | None = None,
    on_line: OnLine | None = None,
    log: Path | None = None,
) -> Given | None:
    """Install into ``session`` the packages of the system libraries ``wheel`` may assume
    and the session's root lacks (None: nothing was missing). Raises
    :class:`UnprovidedLibrary` or :class:`~refinery.builder.errors.SystemRecipeFailed`."""
    wanted = assumed(wheel)
    if wanted is None:
        return None
    heard: list[str] = []
    session.run(
        ["sh", "-c", PROBE, "probe", *wanted.libraries],
        timeout=timeout,
        on_line=heard.append,
        log=log,
        cwd="/tmp",
    )
    missing = absent(heard)
    if not missing:
        return None
    chosen = packages_for(missing, session.package_manager, found)
    packages = tuple(dict.fromkeys(chosen.values()))
    session.install_system(packages, timeout=timeout, on_line=on_line, log=log)
    return Given(wanted.policy, missing, packages)
