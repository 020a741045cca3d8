"""When a cross build failed because of the cross setup, not the package.

``--backend auto`` on an x86_64 host builds with the ``cross`` backend (host compilers,
the s390x root as sysroot) and keeps the emulated ``rootfs`` backend as a *fallback*
root. After a failed attempt on the cross root, :func:`cross_specific` reads the
attempt's log: when a line shows a failure that only a cross build has — a target
binary executed on the build machine, a build system that cannot run its probes in a
cross environment, host libraries leaking into the target link, no Rust standard
library for the target, host compiler flags handed to the target compiler — the
runner builds the node again under emulation. Everything else (a missing header, an
unreachable crates.io, broken package metadata) fails the same way under emulation and
is left to the hint catalog.

:class:`Fallback` is what the runner gets: the fallback root, the classifier, and the
per-package ``emulate`` setting of the hint catalog (start there from attempt 1).

The signatures are data (:data:`SIGNATURES`, one named, compiled regex each); every one
is tested on real tool output in ``tests/unit/test_fallback.py``. The ids follow the
feasibility study's table (X = exec, M = meson, C = CMake, A = autoconf, L = link and
headers, R = Rust, F = host flags, S = the wheel).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.roots import BuildRoot
from refinery.core.models import PlanNode
from refinery.hints.matcher import SKIP_PREFIXES, LogLine, read_log

__all__ = [
    "SIGNATURES",
    "Classify",
    "Fallback",
    "Finding",
    "Signature",
    "Upfront",
    "cross_specific",
    "cross_specific_log",
]

MAX_SHOWN = 240  # characters of the log line kept in a reason


@dataclass(frozen=True, slots=True)
class Signature:
    """One cross-specific failure: ``id`` (stable, for tests and records), the regex a
    log line must match, and what it means in words."""

    id: str
    pattern: re.Pattern[str]
    meaning: str


def _sig(sig_id: str, pattern: str, meaning: str) -> Signature:
    return Signature(sig_id, re.compile(pattern, re.IGNORECASE), meaning)


#: The cross-specific failures, most telling first (a line matching several is
#: attributed to the first).
SIGNATURES: tuple[Signature, ...] = (
    _sig(
        "X1",
        r"cannot execute binary file: Exec format error|\[Errno 8\] Exec format error",
        "a target binary was executed on the build machine",
    ),
    _sig(
        "M1",
        r"binfmt\S*: Could not open '/lib/ld64\.so\.1'",
        "a target binary was executed on the build machine (through binfmt, without the "
        "target's loader)",
    ),
    _sig(
        "M2",
        r"Executables created by \S+ compiler .* are not runnable",
        "meson's compiler sanity check ran a target binary",
    ),
    _sig(
        "M3",
        r"Can not run test applications in this cross environment",
        "the build runs test programs, which a cross environment cannot",
    ),
    _sig(
        "C1",
        r"try_run\(\) invoked in cross-compiling mode",
        "CMake try_run() needs to run a target binary",
    ),
    _sig(
        "A1",
        r"cannot run test program while cross compiling",
        "a configure script needs to run a target binary",
    ),
    _sig(
        "L1",
        r"cannot find /(?:usr/)?lib\S*/(?:libc\.so\.6|libc_nonshared\.a|ld64\.so\.1)\b",
        "the linker was not given the target sysroot",
    ),
    _sig(
        "L2",
        r"skipping incompatible \S*x86[_-]64\S* when searching for",
        "host (x86-64) libraries leaked into the target link",
    ),
    _sig(
        "L3",
        r"Relocations in generic ELF \(EM: 62\)|error adding symbols: file in wrong format",
        "a host (x86-64) object or library was linked into the target",
    ),
    _sig(
        "L4",
        r"fatal error: s390x-linux-gnu/python3\.\d+/pyconfig\.h: No such file",
        "the target's Python headers were used without the sysroot",
    ),
    _sig(
        "L5",
        r"/usr/include/stdio\.h:\d+:\d+: error: use of undeclared identifier",
        "the C library headers of the sysroot and of the compiler were mixed",
    ),
    _sig(
        "R1",
        r"the [`'\u2018]?s390x-unknown-linux-gnu[`'\u2019]? target may not be installed",
        "no Rust standard library for the target",
    ),
    _sig(
        "F1",
        r"unrecognized command[- ]line option [`'\u2018\"]?-m(?:sse|avx|mmx|fma|bmi|pclmul|popcnt|"
        r"f16c|lzcnt|tune=(?:generic|intel)|arch=x86)",
        "host (x86-64) compiler flags were handed to the target compiler (the build "
        "cannot be told about the target)",
    ),
    _sig(
        "S2",
        r"wheel contains code for another architecture",
        "the wheel holds code for the build machine, not the target",
    ),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """The log line that shows a cross-specific failure (``line_no`` 1-based)."""

    signature: str
    meaning: str
    line_no: int
    line: str  # the log line, stripped

    @property
    def reason(self) -> str:
        """One sentence for the record: what happened, where in the log."""
        shown = self.line if len(self.line) <= MAX_SHOWN else self.line[: MAX_SHOWN - 1] + "…"
        return f"{self.meaning} (log line {self.line_no}: {shown})"


def cross_specific(
    lines: Iterable[str | LogLine], signatures: tuple[Signature, ...] = SIGNATURES
) -> Finding | None:
    """The first line (in log order) that shows a cross-specific failure, or None.

    Plain strings are numbered from 1; :class:`LogLine` s keep their numbers. The build
    step's own phase and command lines (``==> …``, ``$ …``) are not looked at.
    """
    for i, item in enumerate(lines, start=1):
        number, text = (item.number, item.text) if isinstance(item, LogLine) else (i, item)
        if text.startswith(SKIP_PREFIXES):
            continue
        for signature in signatures:
            if signature.pattern.search(text) is not None:
                return Finding(signature.id, signature.meaning, number, text.strip())
    return None


def cross_specific_log(path: Path) -> Finding | None:
    """:func:`cross_specific` over an attempt's log file (its bounded tail); None when
    the log cannot be read."""
    try:
        lines = read_log(path)
    except OSError:
        return None
    return cross_specific(lines)


#: The reason a node builds on the fallback root from its first attempt (None: it
#: starts on the primary root) — the hint catalog's per-package ``emulate`` setting.
Upfront = Callable[[PlanNode], str | None]
#: Reads a failed attempt's log: the cross-specific finding, or None.
Classify = Callable[[Path], Finding | None]


@dataclass(frozen=True)
class Fallback:
    """The root a node moves to when the primary root fails for a reason of its own.

    ``root`` is the fallback (the emulated rootfs behind a cross primary); ``upfront``
    names the nodes that start there; ``classify`` decides, from a failed attempt's log
    on the primary root, whether the next attempt moves.
    """

    root: BuildRoot
    upfront: Upfront | None = None
    classify: Classify = cross_specific_log

    def start_reason(self, node: PlanNode) -> str | None:
        """Why ``node`` starts on the fallback root, or None."""
        if self.upfront is None:
            return None
        reason = self.upfront(node)
        return f"the package's setting says emulate: {reason}" if reason else None
