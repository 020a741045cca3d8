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


#: The attempt log's first line (``==> start: pywavelets==1.9.0@3.11 on cross (…)``).
_START = re.compile(r"^==> start: ([\w.-]+)==([\w.!+-]+)@")
#: The build phase's note on the wheel (``built x.whl: 4 ELF files; modules ('pywt',)``).
_BUILT = re.compile(r"^built \S+\.whl: .*; modules \(([^)]*)\)")
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*")


def own_modules(lines: Sequence[str]) -> frozenset[str]:
    """Top-level modules the project under build provides itself, as its log tells:
    the wheel's modules (the build phase's note), the project's name as a module
    (``foo-bar`` → ``foo_bar``), and every top-level folder of the unpacked sdist a
    traceback frame ran from (``…/pywavelets-1.9.0/pywt/…`` → ``pywt``). A missing one
    of these is a broken build of the project, never a requirement to add."""
    own: set[str] = set()
    source: re.Pattern[str] | None = None
    for line in lines:
        text = line.strip()
        start = _START.match(text)
        if start:
            name, version = start.groups()
            own.add(re.sub(r"[-.]+", "_", name).lower())
            source = re.compile(rf'File "[^"]*/[\w.-]+-{re.escape(version)}/([A-Za-z_]\w*)/')
            continue
        built = _BUILT.match(text)
        if built:
            own.update(_MODULE_NAME.findall(built.group(1)))
            continue
        frame = source.search(text) if source is not None else None
        if frame:
            own.add(frame.group(1))
    return frozenset(own)


#: Phases after the build: what their imports miss was installed (or not) at run time.
_RUNTIME_PHASES = ("==> smoke:", "==> tests:")


def runtime_start(lines: Sequence[str]) -> int:
    """The 1-based line where the log's run-time phases (smoke import, package tests)
    begin; past the end when it has none. A module missing there is a dependency that
    did not install (``Could not find a version … scipy``), never a build requirement."""
    for number, line in enumerate(lines, 1):
        if line.strip().startswith(_RUNTIME_PHASES):
            return number
    return len(lines) + 1
