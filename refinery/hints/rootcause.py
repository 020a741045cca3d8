"""The root-cause line of a failed build log: the one line a human needs first.

Every line is given a rank by what it says: a compiler's ``fatal error:``, a linker's
``cannot find -lfoo``, a resolver conflict or a ``configure: error:`` says *why*; a
compiler's ``file.c:3:1: error:``, a raised exception's last line (``OSError: …``) or
``X: not found`` comes next; a bare ``error: …`` after that; lines that only report that
something failed (``error: command 'gcc' failed with exit code 1``, ``ERROR: Failed
building wheel``, ``collect2: error: ld returned 1 exit status``) rank last. Known noise
(setuptools' ``warning: no previously-included files``, deprecation banners, pip notices,
the build step's own ``==> `` phase and ``$ `` command lines) is never a cause. The
highest rank wins; among equals the first line wins (the first compiler error causes
the rest), except raised exceptions, where the last one is what finally stopped the build.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.hints.matcher import MAX_BYTES, LogLine, as_log_lines

MAX_LINE = 2_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_PIP_MARGIN = re.compile(r"^\s*(?:[│║|]\s?)+")  # pip's "│ " / "║ " subprocess margin

#: Lines that are never the cause, whatever words they contain.
NOISE = re.compile(
    r"""^(==>\ |\$\ |!!\ )
      | warning:\ no\ previously-included\ files
      | warning:\ manifest_maker | no\ previously-included\ directories
      | Deprecat | \*{8,} | !{8,} | ^\s*\[notice\] | ^\s*notice:
      | ^\s*note:\ This\ error\ originates | ^\s*hint:\ | See\ above\ for\ output
      | -Werror | -Wno-error | \b0\ errors?\b
      | ^\s*(copying|creating|adding|running|writing|reading|building)\s
      | ^\s*raise\s | pretending\ there\ aren't\ any
    """,
    re.VERBOSE,
)

_CAUSE = (
    r"conflicting dependencies|ResolutionImpossible|No solution found when resolving"
    r"|No matching distribution found|Could not find a version that satisfies"
    r"|failed to select a version for the requirement"
    r"|does not match extension requirement|Can not find valid pkg-config name"
    r"|undefined reference to|undefined symbol:|cannot open shared object file"
    r"|Dependency \"?[\w.+-]+\"? not found|dependency \S+ found: NO"
    r"|was not found in the pkg-config search path|CMake Error"
    r"|\b(executable|program|library|libraries|headers?) not found\b"
)
_RAISED = (
    r"^(?!subprocess\.|distutils\.|setuptools\.|CalledProcessError)"
    r"(\w+\.)*\w*(Error|Exception)(: |$)"
)
#: Lines that only say *that* something failed.
CONSEQUENCE = (
    r"failed with exit (code|status)|returned non-zero exit status|ld returned \d+ exit status"
    r"|Failed building wheel|Could not build wheels|subprocess-exited-with-error"
    r"|Backend subprocess exited|did not run successfully|exited with code"
)
#: (rank, pattern, later lines of this rank win): the first match gives a line its rank.
RANKS: tuple[tuple[int, re.Pattern[str], bool], ...] = (
    (100, re.compile(r"\bfatal error:|\bcannot find -l\S+|configure: error:"), False),
    (95, re.compile(_CAUSE, re.IGNORECASE), False),
    (10, re.compile(CONSEQUENCE, re.IGNORECASE), False),
    (
        90,
        re.compile(
            r"^\S+:\d+(:\d+)?: (error|Error):|^error\[E\d+\]|Error compiling Cython"
            r"|^(\S*/)?[\w.+-]+: (fatal )?error: "  # a tool's own: ld.lld, zig, gcc, cc1
        ),
        False,
    ),
    (80, re.compile(_RAISED), True),
    (75, re.compile(r"\S: not found$|: command not found|No such file or directory"), False),
    (60, re.compile(r"^(error|Error|ERROR)\b:?"), False),
    (5, re.compile(r"\berror\b", re.IGNORECASE), False),
)


@dataclass(frozen=True, slots=True)
class RootCause:
    number: int  # 1-based line number in the log
    text: str
    rank: int

    def reason(self, after: str) -> str:
        """``text (log line N; after)`` — the record's one-line reason."""
        return f"{self.text} (log line {self.number}; {after})" if after else self.text


def clean(text: str) -> str:
    """A log line without colour codes, pip's subprocess margin and outer blanks."""
    return _PIP_MARGIN.sub("", _ANSI.sub("", text[:MAX_LINE])).strip()


def rank(text: str) -> tuple[int, bool]:
    """The rank of one (cleaned) line, and whether later lines of that rank win."""
    if not text or NOISE.search(text):
        return 0, False
    for value, pattern, last in RANKS:
        if pattern.search(text):
            return value, last
    return 0, False


def log_lines(path: Path, max_bytes: int = MAX_BYTES) -> list[LogLine]:
    """The lines of the last ``max_bytes`` of ``path``, numbered as an editor (or
    ``grep -n``) numbers them: only ``\\n`` ends a line (a progress bar's ``\\r`` does not)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        start = max(0, size - max_bytes)
        fh.seek(0)
        before = fh.read(start).count(b"\n") if start else 0
        data = fh.read()
    parts = data.decode("utf-8", errors="replace").split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    skip = 1 if start else 0  # a partial first line
    return [LogLine(before + i + 1, text) for i, text in enumerate(parts) if i >= skip]


def root_cause(lines: Sequence[LogLine] | Iterable[str]) -> RootCause | None:
    """The best-ranked line of ``lines`` (plain strings count from line 1)."""
    numbered = (
        list(lines)
        if isinstance(lines, Sequence) and all(isinstance(x, LogLine) for x in lines)
        else as_log_lines(str(x) for x in lines)
    )
    best: RootCause | None = None
    for line in numbered:
        assert isinstance(line, LogLine)
        text = clean(line.text)
        value, last = rank(text)
        if value == 0:
            continue
        if best is None or value > best.rank or (value == best.rank and last):
            best = RootCause(line.number, text, value)
    return best
