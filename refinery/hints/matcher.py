"""Scan a build log (bounded) for the catalog's patterns and rank the matching hints.

Only the tail of a log is read (``max_bytes``, then ``max_lines``), each line is cut to
``MAX_LINE`` characters and stripped of ANSI colour codes, and the build step's own
phase and command lines (``==> …``, ``$ …``) are skipped so a package name in a URL or
an ``apt-get install`` command line never matches. Ranking: scope specificity (a
package-scoped hint first), then how many distinct patterns matched, then how late in
the log the last match is (closest to the failure).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.hints.models import Catalog, Hint

MAX_BYTES = 4 * 1024 * 1024
MAX_LINES = 40_000
MAX_LINE = 2_000
LINES_PER_HINT = 5
SKIP_PREFIXES = ("==> ", "$ ")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass(frozen=True, slots=True)
class LogLine:
    number: int  # 1-based line number in the whole log
    text: str


@dataclass(frozen=True, slots=True)
class Match:
    hint: Hint
    lines: tuple[LogLine, ...]  # the first matching lines (at most LINES_PER_HINT)
    patterns: int  # distinct patterns of the hint that matched
    last: int  # line number of the last match

    @property
    def score(self) -> tuple[int, int, int]:
        return (self.hint.scope.specificity, self.patterns, self.last)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(line.text for line in self.lines)


def read_log(
    path: Path, *, max_bytes: int = MAX_BYTES, max_lines: int = MAX_LINES
) -> list[LogLine]:
    """The last ``max_bytes`` / ``max_lines`` of ``path`` with whole-file line numbers."""
    size = path.stat().st_size
    start = max(0, size - max_bytes)
    skipped_lines = 0
    with path.open("rb") as fh:
        if start:
            remaining = start
            while remaining:
                chunk = fh.read(min(1 << 20, remaining))
                if not chunk:
                    break
                skipped_lines += chunk.count(b"\n")
                remaining -= len(chunk)
        data = fh.read(max_bytes)
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    first_number = skipped_lines + 1
    if len(lines) > max_lines:
        first_number += len(lines) - max_lines
        lines = lines[-max_lines:]
    return [LogLine(first_number + i, line) for i, line in enumerate(lines)]


def as_log_lines(lines: Iterable[str]) -> list[LogLine]:
    return [LogLine(i + 1, line) for i, line in enumerate(lines)]


def _clean(text: str) -> str:
    return _ANSI.sub("", text[:MAX_LINE]).rstrip()


#: clang's (and so zig's) missing-header line; the catalog is written in gcc's words.
_CLANG_MISSING = re.compile(r"fatal error: '([^']+)' file not found")


def _forms(text: str) -> tuple[str, ...]:
    """``text``, and for clang's ``fatal error: 'zlib.h' file not found`` also gcc's
    ``fatal error: zlib.h: No such file or directory``: one catalog for both compilers
    (the cross backend compiles with zig for old glibc targets)."""
    m = _CLANG_MISSING.search(text)
    if m is None:
        return (text,)
    gcc = f"fatal error: {m.group(1)}: No such file or directory"
    return (text, text[: m.start()] + gcc + text[m.end() :])


def scan(
    catalog: Catalog | Sequence[Hint],
    lines: Sequence[LogLine],
    *,
    package: str | None = None,
    python: str | None = None,
    backend: str | None = None,
    version: str | None = None,
) -> list[Match]:
    """Matching hints, best first. ``None`` facts do not restrict the scope."""
    hints = [
        h
        for h in (catalog.hints if isinstance(catalog, Catalog) else catalog)
        if h.scope.applies(package, python, backend, version)
    ]
    found: dict[str, list[LogLine]] = {}
    which: dict[str, set[int]] = {}
    last: dict[str, int] = {}
    for line in lines:
        if line.text.startswith(SKIP_PREFIXES):
            continue
        text = _clean(line.text)
        if not text:
            continue
        forms = _forms(text)
        for hint in hints:
            for i, pattern in enumerate(hint.patterns):
                if not any(pattern.search(form) for form in forms):
                    continue
                which.setdefault(hint.id, set()).add(i)
                last[hint.id] = line.number
                got = found.setdefault(hint.id, [])
                if len(got) < LINES_PER_HINT and (not got or got[-1].number != line.number):
                    got.append(LogLine(line.number, text))
    matches = [
        Match(h, tuple(found[h.id]), len(which[h.id]), last[h.id]) for h in hints if h.id in found
    ]
    matches.sort(key=lambda m: m.score, reverse=True)
    return matches


def scan_log(
    catalog: Catalog | Sequence[Hint],
    path: Path,
    *,
    package: str | None = None,
    python: str | None = None,
    backend: str | None = None,
    version: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_lines: int = MAX_LINES,
) -> list[Match]:
    lines = read_log(path, max_bytes=max_bytes, max_lines=max_lines)
    return scan(catalog, lines, package=package, python=python, backend=backend, version=version)
