"""Fixes derived from data: what a log says is missing, looked up in the file index of
the root's own distribution.

When no catalog hint explains a failure, :func:`derive` turns each
:class:`~refinery.hints.missing.Missing` into file-index queries (a header →
``…/include/foo/bar.h``, ``-lfoo`` → ``libfoo.so``, a pkg-config module → ``foo.pc``, a
CMake package → ``FooConfig.cmake``/``foo-config.cmake`` and its usual files, a command
→ ``usr/bin/foo``), ranks the answers (the standard location first, ``-dev`` packages
before others, shorter paths first) and picks the best package. A missing Python module
is not the distribution's question: it becomes an extra build requirement, unless the
project provides it itself (:func:`~refinery.hints.missing.own_modules`: ``pywt`` of
pywavelets, ``sklearn`` of scikit-learn), when it is shown and not answered; a module
missing in the smoke import or the package tests (a dependency that did not install) is
no build requirement either.

The result, a :class:`~refinery.core.models.DerivedFix`, keeps the query, the candidates
and the choice: the record shows them, and a derived fix that worked becomes a learned
hint. Pure: the file
index arrives as a :class:`FileIndex` (``refinery.upstream.debian.ContentsIndex`` is
one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from refinery.core.models import DerivedFix
from refinery.hints.missing import Missing, find_missing, own_modules, runtime_start

#: Python modules whose PyPI project has another name.
MODULE_PROJECTS = {
    "yaml": "pyyaml",
    "Cython": "cython",
    "skbuild": "scikit-build",
    "setuptools_scm": "setuptools-scm",
    "setuptools_rust": "setuptools-rust",
    "PIL": "pillow",
    "mesonpy": "meson-python",
    "pybind11": "pybind11",
    "numpy": "numpy",
    "cffi": "cffi",
    "pkgconfig": "pkgconfig",
    "versioneer": "versioneer",
    "dateutil": "python-dateutil",
}
#: What a missing compiler is called in the file index (alternatives are not listed).
COMPILER_FILES = {
    "cc": "gcc",
    "c++": "g++",
    "clang++": "clang",
    "f77": "gfortran",
    "f95": "gfortran",
}
MAX_CANDIDATES = 5


class FileIndex(Protocol):
    """Which packages ship a file of this name: (path, packages) rows."""

    def owners(self, filename: str, *, arch_all: bool = False) -> Sequence[FileOwner]: ...


class FileOwner(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def packages(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Query:
    """One question for the file index: a file ``name`` whose path must end with one of
    ``suffixes``; paths under one of ``preferred`` folders rank first."""

    name: str
    suffixes: tuple[str, ...]
    preferred: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"*/{self.suffixes[0]}"

    def fits(self, path: str) -> bool:
        return any(path == s or path.endswith("/" + s) for s in self.suffixes)

    def standard(self, path: str) -> bool:
        """Whether ``path`` is in a standard folder (any folder when none is preferred)."""
        if not self.preferred:
            return True
        return any(path == f"{d}{s}" for d in self.preferred for s in (*self.suffixes, self.name))


@dataclass(frozen=True, slots=True)
class Candidate:
    path: str
    package: str
    rank: tuple[int, int, int, int, str]


def queries_for(missing: Missing, multiarch: str) -> tuple[Query, ...]:
    """The file-index questions for one missing thing (most specific first)."""
    name = missing.name
    libdirs = (f"usr/lib/{multiarch}/", "usr/lib/", f"lib/{multiarch}/")
    if missing.kind == "header":
        base = name.rpartition("/")[2]
        suffixes = (f"include/{name}", f"include/{multiarch}/{name}")
        return (Query(base, suffixes, ("usr/",)),)
    if missing.kind == "library":
        return tuple(
            Query(f"lib{name}{ext}", (f"lib{name}{ext}",), libdirs) for ext in (".so", ".a")
        )
    if missing.kind == "pkgconfig":
        return (_pc(name, multiarch),)
    if missing.kind == "cmake":
        lower = name.lower()
        return (
            Query(f"{name}Config.cmake", (f"{name}Config.cmake",)),
            Query(f"{lower}-config.cmake", (f"{lower}-config.cmake",)),
            _pc(lower, multiarch),
            Query(f"lib{lower}.so", (f"lib{lower}.so",), libdirs),
            Query(f"{lower}.h", (f"include/{lower}.h",), ("usr/",)),
        )
    if missing.kind in ("command", "compiler"):
        program = COMPILER_FILES.get(name, name)
        return (Query(program, (program,), ("usr/bin/", "bin/", "usr/sbin/", "sbin/")),)
    return ()


def _pc(module: str, multiarch: str) -> Query:
    dirs = (f"usr/lib/{multiarch}/pkgconfig/", "usr/share/pkgconfig/", "usr/lib/pkgconfig/")
    return Query(f"{module}.pc", (f"{module}.pc",), dirs)


def stem(name: str) -> str:
    """The word a file is named for: ``krb5-config`` → ``krb5``, ``libsnappy.so`` →
    ``snappy``, ``yaml.h`` → ``yaml``."""
    base = name.rpartition("/")[2].removeprefix("lib")
    return re.split(r"[.\-_]", base, maxsplit=1)[0].lower()


def rank(path: str, package: str, query: Query) -> tuple[int, int, int, int, str]:
    """Lower is better: standard folder, ``-dev`` package, a package named for the file
    (``libkrb5-dev`` before ``heimdal-dev`` for ``krb5-config``), fewer path parts, name."""
    standard = query.standard(path)
    dev = package.endswith(("-dev", "-devel")) or "-dev" in package
    named = bool(stem(query.name)) and stem(query.name) in package.lower()
    return (0 if standard else 1, 0 if dev else 1, 0 if named else 1, path.count("/"), package)


def candidates(index: FileIndex, query: Query) -> tuple[Candidate, ...]:
    """Every (path, package) the index has for ``query``, best first; the
    architecture-independent index is asked when the root's has nothing."""
    found: list[Candidate] = []
    for arch_all in (False, True):
        for owner in index.owners(query.name, arch_all=arch_all):
            if query.fits(owner.path):
                found += [
                    Candidate(owner.path, p, rank(owner.path, p, query)) for p in owner.packages
                ]
        if found:
            break
    return tuple(sorted(found, key=lambda c: c.rank))


def derive(
    missing: Missing, index: FileIndex, multiarch: str, own: frozenset[str] = frozenset()
) -> DerivedFix:
    """The answer for one missing thing (see the module docstring); ``own``: the
    project's own top-level modules, never a requirement."""
    said = DerivedFix(missing.kind, missing.name, missing.text)
    if missing.kind == "module":
        if missing.name in own or missing.name.lower() in own:
            return said
        requirement = MODULE_PROJECTS.get(missing.name, missing.name.replace("_", "-"))
        return replace(said, requirement=requirement)
    asked: list[str] = []
    for query in queries_for(missing, multiarch):
        asked.append(str(query))
        found = candidates(index, query)
        if found:
            shown = tuple(dict.fromkeys((c.path, c.package) for c in found))[:MAX_CANDIDATES]
            # only a file where the compiler looks is a fix: a header deep in another
            # project's vendored tree (libtgowt-dev's crc32c.h) or GCC's private omp.h
            # is shown, not installed
            chosen = found[0].package if found[0].rank[0] == 0 else ""
            return replace(said, queries=tuple(asked), candidates=shown, package=chosen)
    return replace(said, queries=tuple(asked))


Deriver = Callable[[Sequence[str]], tuple[DerivedFix, ...]]


def file_index_deriver(index: FileIndex, multiarch: str) -> Deriver:
    """Log lines → a derived fix for each missing thing they name (the CLI makes one
    for roots whose distribution has a file index)."""

    def deriver(lines: Sequence[str]) -> tuple[DerivedFix, ...]:
        own = own_modules(lines)
        runtime = runtime_start(lines)
        found = [m for m in find_missing(lines) if m.kind != "module" or m.line < runtime]
        return tuple(derive(m, index, multiarch, own) for m in found)

    return deriver
