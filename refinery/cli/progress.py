"""How far a build has come, read from its output one line at a time (pure).

What the build tools say about themselves, as they say it to a log:

- ninja, meson and samurai: ``[215/438] Compiling C object …``
- CMake's makefiles: ``[ 45%] Building C object …``
- cargo (also under maturin): ``   Compiling libc v0.2.150`` (a count of crates so far;
  ``(12/80)`` when the line carries it)
- pypa/build and setuptools: ``* Building wheel...``, ``running build_ext``,
  ``building 'x._speedups' extension``
- the build step itself: ``==> build: python -m build --wheel`` (its phase; see
  :data:`refinery.builder.outcome.PHASE_PREFIX`); ``==> start`` begins an attempt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from refinery.builder.outcome import PHASE_PREFIX

NINJA = re.compile(r"^\s*\[(\d+)/(\d+)\]\s")
CMAKE = re.compile(r"^\s*\[\s*(\d{1,3})%\]\s")
CARGO = re.compile(r"^\s*Compiling\s+([\w.+-]+)\s+v\d\S*(?:.*\((\d+)/(\d+)\)\s*$)?")
PYPA = re.compile(r"^\* (Creating|Installing|Getting|Building)\b([^:.]*)")
SETUPTOOLS = re.compile(r"^(?:running (\w+)|building '([^']+)' extension)")


@dataclass(frozen=True, slots=True)
class Progress:
    """A node's progress: the build step's phase, what the build tool last reported
    (``step``), and how far as a fraction when the tool counts."""

    phase: str = ""
    step: str = ""
    fraction: float | None = None

    def text(self) -> str:
        """``build · [215/438] 49%``: phase, step, percentage (each when known)."""
        parts = [p for p in (self.phase, self.step) if p]
        if self.fraction is not None and "%" not in self.step:
            parts.append(f"{self.fraction * 100:.0f}%")
        return " · ".join(parts)


def _counted(done: int, total: int) -> float | None:
    return min(1.0, done / total) if total > 0 else None


class ProgressReader:
    """Feed a node's lines in order; :attr:`progress` is the latest reading."""

    def __init__(self) -> None:
        self.progress = Progress()
        self._crates = 0

    def feed(self, line: str) -> Progress:
        text = line.rstrip("\r\n")
        if text.startswith(PHASE_PREFIX):
            self._phase(text[len(PHASE_PREFIX) :])
        else:
            step = self._step(text)
            if step is not None:
                self.progress = replace(self.progress, step=step[0], fraction=step[1])
        return self.progress

    def _phase(self, rest: str) -> None:
        name = rest.split(":", 1)[0].strip()
        if name == "start":  # a new attempt: nothing of the last one holds
            self._crates = 0
            self.progress = Progress(phase=name)
        elif name:
            self.progress = Progress(phase=name)

    def _step(self, text: str) -> tuple[str, float | None] | None:
        found = NINJA.match(text)
        if found is not None:
            done, total = int(found.group(1)), int(found.group(2))
            return f"[{done}/{total}]", _counted(done, total)
        found = CMAKE.match(text)
        if found is not None:
            percent = int(found.group(1))
            return f"{percent}%", min(1.0, percent / 100)
        found = CARGO.match(text)
        if found is not None:
            self._crates += 1
            if found.group(2) is not None:
                done, total = int(found.group(2)), int(found.group(3))
                return f"cargo {found.group(1)} ({done}/{total})", _counted(done, total)
            return f"cargo: {self._crates} crates ({found.group(1)})", None
        return self._python_step(text)

    def _python_step(self, text: str) -> tuple[str, float | None] | None:
        found = PYPA.match(text)
        if found is not None:
            words = f"{found.group(1)}{found.group(2)}".strip()
            return words.lower(), None
        found = SETUPTOOLS.match(text)
        if found is not None:
            what = found.group(1) or f"extension {found.group(2)}"
            return what, None
        return None
