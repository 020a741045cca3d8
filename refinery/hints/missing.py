"""What a failed build says it is missing: a header, a library, a pkg-config module, a
CMake package, a command, a compiler, or a Python module the build backend imports.

Each shape is the message a real tool prints (gcc, clang/zig, GNU ld, pkg-config, meson,
CMake, sh, bash, distutils, Python); the tests hold a real excerpt of each. What is
missing is the question :mod:`refinery.hints.derive` asks the distribution's file index.
Pure: lines in, findings out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from refinery.core.models import MISSING_LABELS
from refinery.core.vocab import MissingKind

#: Compilers by the names a build looks for them (a missing one is a ``compiler``).
COMPILERS = frozenset(
    {"gcc", "cc", "g++", "c++", "gfortran", "f77", "f95", "flang", "clang", "clang++"}
)
_NAME = r"[\w.+-]+"
_PATH = r"[\w.+/-]+"

#: (kind, pattern with one group: the missing name), in the order they are tried per line.
_SHAPES: tuple[tuple[MissingKind, re.Pattern[str]], ...] = (
    # gcc: "fatal error: foo/bar.h: No such file or directory"
    ("header", re.compile(rf"fatal error: ({_PATH}): No such file or directory")),
    # clang and zig: "fatal error: 'foo/bar.h' file not found"
    ("header", re.compile(rf"fatal error: '({_PATH})' file not found")),
    # GNU ld / lld: "cannot find -lsnappy" / "unable to find library -lsnappy"
    ("library", re.compile(rf"(?:cannot find|unable to find library) -l({_NAME})")),
    # pkg-config: "Package libzstd was not found in the pkg-config search path."
    ("pkgconfig", re.compile(rf"Package '?({_NAME})'?,? was not found in the pkg-config")),
    # old pkg-config: "No package 'libffi' found"
    ("pkgconfig", re.compile(rf"No package '({_NAME})' found")),
    # meson: 'Dependency "libfoo" not found (tried pkg-config and cmake)'
    ("pkgconfig", re.compile(rf'Dependency "({_NAME})" not found')),
    # CMake config mode: 'Could not find a package configuration file provided by "Foo"'
    ("cmake", re.compile(r'package configuration file provided by "(\w+)"')),
    # CMake find module: "Could NOT find GSL (missing: GSL_INCLUDE_DIR ...)"
    ("cmake", re.compile(r"Could NOT find (\w+)\b")),
    # meson: "Unknown compiler(s): [['gfortran'], ['flang-new'], ...]"
    ("compiler", re.compile(rf"Unknown compiler\(s\): \[\['({_NAME})'\]")),
    # distutils: "error: command 'gfortran' failed: No such file or directory"
    ("command", re.compile(rf"error: command '(?:{_PATH}/)?({_NAME})' failed: No such file")),
    # sh / dash: "sh: 1: xml2-config: not found"
    ("command", re.compile(rf"\bsh: \d+: ({_NAME}): not found")),
    # bash: "/bin/bash: line 1: foo-config: command not found"
    ("command", re.compile(rf"(?:^|[\s:])({_NAME}): command not found")),
    # meson: "Program 'cython' not found or not executable"
    ("command", re.compile(rf"Program '({_NAME})' not found")),
    # Python's subprocess: "FileNotFoundError: [Errno 2] No such file or directory: 'pg_config'"
    (
        "command",
        re.compile(rf"FileNotFoundError: \[Errno 2\] No such file or directory: '({_NAME})'"),
    ),
    # a build backend importing what its environment lacks
    ("module", re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")),
)


@dataclass(frozen=True, slots=True)
class Missing:
    """One thing a log says is missing: its ``kind``, ``name`` (``foo/bar.h``,
    ``snappy``, ``libzstd``, ``GSL``, ``xml2-config``, ``gfortran``, ``numpy``) and
    where the log says so (1-based ``line``, its ``text``)."""

    kind: MissingKind
    name: str
    line: int = 0
    text: str = ""

    @property
    def label(self) -> str:
        """``header foo/bar.h``, ``library -lsnappy``, ``pkg-config module libzstd`` …"""
        return MISSING_LABELS[self.kind].format(self.name)


def _classify(kind: MissingKind, name: str) -> tuple[MissingKind, str]:
    if kind == "module":
        return kind, name.partition(".")[0]
    if kind == "command" and name in COMPILERS:
        return "compiler", name
    return kind, name


def missing_in(line: str) -> tuple[MissingKind, str] | None:
    """The first missing thing ``line`` names, or None."""
    for kind, pattern in _SHAPES:
        m = pattern.search(line)
        if m:
            return _classify(kind, m.group(1))
    return None


def find_missing(lines: Sequence[str]) -> tuple[Missing, ...]:
    """Every missing thing the log names, first mention first, each (kind, name) once."""
    seen: set[tuple[str, str]] = set()
    out: list[Missing] = []
    for number, line in enumerate(lines, 1):
        found = missing_in(line)
        if found is None or found in seen:
            continue
        seen.add(found)
        out.append(Missing(found[0], found[1], number, line.strip()))
    return tuple(out)
