"""What an attempt produces and how a phase says it failed.

:class:`BuildOutcome` is the frozen result of one attempt; :class:`PhaseFailed` is what
a phase of the build step raises instead of returning (the step turns it into the
failed outcome in one place); :class:`AttemptLog` is the book-keeping of a running
attempt (its log file, streamed lines, deadline, timings and what the phases found).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from refinery.builder.proc import OnLine, ProcResult
from refinery.builder.smoke import ELF_FAIL, SmokeResult
from refinery.core.models import NodeStatus, PackUse, SbomSummary, TestReport
from refinery.hints.matcher import LogLine
from refinery.hints.rootcause import log_lines, root_cause

PHASE_PREFIX = "==> "
_WHY = re.compile(
    r"error|fail|fall(ing)? ?back|could not|couldn't|cannot|can't|not found|no such file|"
    r"unable|speedups|not (be )?compiled|pure[- ]python|warning: ",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Durations:
    fetch: float = 0.0
    recipes: float = 0.0
    build: float = 0.0
    repair: float = 0.0
    check: float = 0.0
    smoke: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class BuildOutcome:
    """What one attempt produced. ``status`` is built, failed, missing or
    system_recipe_failed; ``reason`` says why in one sentence for humans."""

    status: NodeStatus
    backend: str
    image: str
    python: str
    log: Path
    wheel: Path | None = None
    exit_code: int | None = None
    timed_out: bool = False
    reason: str = ""
    matched_lines: tuple[str, ...] = ()
    auditwheel_show: str = ""
    smoke: SmokeResult | None = None
    durations: Durations = field(default_factory=Durations)
    packs: tuple[PackUse, ...] = ()  # library packs the build used
    sbom: SbomSummary | None = None  # the SBOM written into the wheel
    tests: TestReport | None = None  # the package's own tests on the target, if it has any
    network: str = ""  # how the build step ran: isolated, allowed: why, not isolated: why

    @property
    def ok(self) -> bool:
        return self.status is NodeStatus.BUILT


def why_lines(lines: Sequence[str], limit: int = 25) -> tuple[str, ...]:
    """The log lines that most likely explain a failure (last ``limit`` matches)."""
    hits = [line for line in lines if _WHY.search(line) and not line.startswith(PHASE_PREFIX)]
    return tuple(hits[-limit:])


class PhaseFailed(Exception):
    """A phase of the build step could not go on: the attempt ends with ``status``.

    ``result`` is the command that failed (its exit code and timeout go to the record);
    ``lines`` the output that explains it (default: everything the attempt printed);
    ``verdict``: the reason is a check of ours that already names the cause (e.g. the
    target-platform promise), so no log line is sought in its place.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: NodeStatus = NodeStatus.FAILED,
        result: ProcResult | None = None,
        lines: Sequence[str] | None = None,
        verdict: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.result = result
        self.lines = tuple(lines) if lines is not None else None
        self.verdict = verdict


class AttemptLog:
    """Book-keeping of one running attempt: log, streamed lines, deadline, timings, and
    what the phases found so far (the wheel, ``auditwheel show``, the smoke result)."""

    def __init__(self, log: Path, on_line: OnLine | None, timeout: float) -> None:
        self.log = log
        self.on_line = on_line
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.timings: dict[str, float] = {}
        self.lines: list[str] = []
        self.wheel: Path | None = None
        self.auditwheel_show = ""
        self.smoke: SmokeResult | None = None
        self.packs: tuple[PackUse, ...] = ()
        self.sbom: SbomSummary | None = None
        self.tests: TestReport | None = None
        self.network = ""

    def emit(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def note(self, line: str) -> None:
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        self.emit(line)

    def phase(self, name: str, message: str = "") -> None:
        self.note(f"{PHASE_PREFIX}{name}{': ' + message if message else ''}")

    def remaining(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    def timed(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def durations(self) -> Durations:
        t = self.timings
        return Durations(
            fetch=t.get("fetch", 0.0),
            recipes=t.get("recipes", 0.0),
            build=t.get("build", 0.0),
            repair=t.get("repair", 0.0),
            check=t.get("check", 0.0),
            smoke=t.get("smoke", 0.0),
            total=time.monotonic() - self.started,
        )

    def outcome(self, status: NodeStatus, backend: str, image: str, python: str) -> BuildOutcome:
        """The outcome of a finished attempt (what the phases found, the timings); a built
        one's reason is the smoke test's note (an import that needs context), if any."""
        return BuildOutcome(
            status=status,
            backend=backend,
            image=image,
            python=python,
            log=self.log,
            wheel=self.wheel,
            auditwheel_show=self.auditwheel_show,
            smoke=self.smoke,
            packs=self.packs,
            sbom=self.sbom,
            tests=self.tests,
            network=self.network,
            reason=self.smoke.note if self.smoke is not None else "",
            durations=self.durations(),
        )

    def failed(self, failure: PhaseFailed, backend: str, image: str, python: str) -> BuildOutcome:
        """The one place a phase failure becomes the attempt's outcome (and a log line).

        When a command failed (or no command was named), the reason is the root-cause
        line of the failing phase's output with its log line number, then the exit code
        (or the phase's own reason)."""
        reason = self.cause(failure)
        self.note(f"!! {failure.status}: {reason}")
        result = failure.result
        base = self.outcome(failure.status, backend, image, python)
        return replace(
            base,
            exit_code=result.exit_code if result else None,
            timed_out=result.timed_out if result else False,
            reason=reason,
            matched_lines=why_lines(failure.lines if failure.lines is not None else self.lines),
        )

    def phase_lines(self) -> tuple[str, list[LogLine]]:
        """The name of the last phase and the log's lines since its ``==> `` line."""
        try:
            lines = log_lines(self.log)
        except OSError:
            return "", []
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].text.startswith(PHASE_PREFIX):
                name = lines[i].text[len(PHASE_PREFIX) :].split(":", 1)[0].strip()
                return name, lines[i + 1 :]
        return "", lines

    def cause(self, failure: PhaseFailed) -> str:
        """``root-cause line (log line N; build exited 1)``, or the failure's own reason
        when the phase's command succeeded or its output names no cause."""
        result = failure.result
        if failure.verdict or (result is not None and result.ok):
            return failure.reason
        phase, lines = self.phase_lines()
        found = root_cause(lines)
        if found is None:
            return failure.reason
        if found.text.removeprefix(ELF_FAIL) in failure.reason:  # it says it already
            return f"{failure.reason} (log line {found.number})"
        if result is not None and result.timed_out:
            after = f"{phase or 'command'} timed out"
        elif result is not None and result.exit_code is not None:
            after = f"{phase or 'command'} exited {result.exit_code}"
        else:
            after = failure.reason
        return found.reason(after)
