"""Log excerpts: the failing lines of a build log, highlighted and anchored.

A line is highlighted when the build step or a hint matched it (``Attempt.matched_lines``)
or when it looks like an error by itself (compiler errors, tracebacks, pip failures).
The excerpt keeps a few lines of context around each, plus the end of the log.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

ERROR_LINE = re.compile(
    r"""(
        \berror:| \berror\[| ^error\b| \bfatal\ error\b| ^E\s{2,}| \*\*\*\ Error
      | ^Traceback\ \(most\ recent\ call\ last\) | ^\w+(\.\w+)*(Error|Exception):\s
      | (?-i:\bERROR\b|\bFAILED\b) | \bfailed\ with\ exit\ code\b | ^==>\ (failed|error)
      | No\ such\ file\ or\ directory | undefined\ reference\ to | command\ not\ found
      | Could\ not\ find | not\ found\b.*\brequired
    )""",
    re.VERBOSE | re.IGNORECASE,
)
# Lines that mention "error" but are not failures.
NOT_ERROR = re.compile(r"-Werror|-Wno-error|errors?=0|\b0 errors?\b|error_|_error\b", re.I)

CONTEXT = 3
TAIL = 12
MAX_LINES = 160
MAX_LINE_CHARS = 400


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, as in the full log
    text: str
    marked: bool


@dataclass(frozen=True, slots=True)
class Excerpt:
    lines: tuple[Line | None, ...]  # None: a gap
    total: int
    marked: int

    def html(self, prefix: str) -> str:
        """A ``<pre>`` block; each line anchored ``{prefix}-L{n}``, marked lines highlighted."""
        out = ['<pre class="refinery-log">']
        for line in self.lines:
            if line is None:
                out.append('<span class="gap">⋯</span>')
                continue
            anchor = f"{prefix}-L{line.number}"
            cls = ' class="hl"' if line.marked else ""
            text = line.text if len(line.text) <= MAX_LINE_CHARS else line.text[:MAX_LINE_CHARS] + "…"
            out.append(
                f'<span id="{anchor}"{cls}><a class="ln" href="#{anchor}">{line.number}</a>'
                f"{html.escape(text)}</span>"
            )
        out.append("</pre>")
        return "".join(out)


def is_error(line: str) -> bool:
    return bool(ERROR_LINE.search(line)) and not NOT_ERROR.search(line)


def excerpt(text: str, matched: Sequence[str] = (), *, tail: int = TAIL) -> Excerpt:
    """The interesting part of ``text``: marked lines with context, then the tail."""
    lines = text.splitlines()
    wanted = {m.strip() for m in matched if m.strip()}
    marked = [i for i, line in enumerate(lines) if line.strip() in wanted or is_error(line)]
    marked_set = set(marked)
    keep: set[int] = set(range(max(0, len(lines) - tail), len(lines)))
    for i in marked:
        keep.update(range(max(0, i - CONTEXT), min(len(lines), i + CONTEXT + 1)))
    chosen = sorted(keep)
    if len(chosen) > MAX_LINES:
        # Keep the first marked lines with context and the tail; drop the middle.
        head = [i for i in chosen if i < len(lines) - tail][: MAX_LINES - tail]
        chosen = sorted(set(head) | set(range(max(0, len(lines) - tail), len(lines))))
    out: list[Line | None] = []
    previous = -1
    for i in chosen:
        if i != previous + 1:
            out.append(None)
        out.append(Line(i + 1, lines[i], i in marked_set))
        previous = i
    return Excerpt(tuple(out), len(lines), len(marked))
