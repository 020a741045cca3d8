"""The runner's ``advise`` callback: from a failed attempt to the next attempt's fix.

:class:`Advisor` is called by ``refinery.builder.runner.build_plan`` after every failed
attempt with ``(node, outcome, attempt_number)``. It scans the attempt's log (bounded),
ranks the hints that match in the node's scope, drops those already applied (by id, or
because they would add nothing), and returns the cumulative :class:`Remedy` — every fix
so far plus the new ones — because each attempt runs in a fresh throwaway root. The
remedy carries the matched log lines (for the record) and the exponential backoff to
wait before the next attempt. ``first_fix`` gives the learned per-package fixes that
apply before the first attempt.

Nothing here imports the build stage: the outcome is read through a small protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from refinery.core.errors import InputError
from refinery.core.models import NodeStatus, PlanNode
from refinery.core.vocab import PackageManager
from refinery.hints.matcher import MAX_BYTES, MAX_LINES, Match, as_log_lines, read_log, scan
from refinery.hints.models import Catalog, Remedy

# Which package manager a backend's roots use (native: whatever the host has).
BACKEND_MANAGERS: dict[str, PackageManager] = {
    "rootfs": "apt",
    "container": "dnf",
    "cross": "apt",  # installed into the sysroot, with apt under emulation
}


class AttemptOutcome(Protocol):
    """What the advisor reads of ``refinery.builder.step.BuildOutcome``."""

    @property
    def status(self) -> NodeStatus: ...

    @property
    def log(self) -> Path: ...

    @property
    def matched_lines(self) -> tuple[str, ...]: ...

    @property
    def backend(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """``max_attempts`` counts the first attempt; the n-th retry waits
    ``backoff * 2**(n-1)`` seconds, at most ``backoff_max``."""

    max_attempts: int = 3
    backoff: float = 0.0
    backoff_max: float = 300.0
    max_bytes: int = MAX_BYTES
    max_lines: int = MAX_LINES

    def delay(self, failed_attempt: int) -> float:
        if self.backoff <= 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff * 2 ** max(0, failed_attempt - 1)))


@dataclass(frozen=True, slots=True)
class Decision:
    """Why the advisor did what it did after one attempt (for logs and tests)."""

    node: str
    attempt: int
    matched: tuple[str, ...]  # hint ids that matched, best first
    applied: tuple[str, ...]  # hint ids newly applied
    dropped: tuple[str, ...]  # matched but already tried / nothing to add / not for this root
    remedy: Remedy | None


def manager_for_backend(backend: str, detected: str | None = None) -> str | None:
    """``apt``/``dnf``/``yum`` for a backend; ``detected`` is the native host's manager."""
    if backend == "native":
        return detected
    return BACKEND_MANAGERS.get(backend, detected)


class Advisor:
    def __init__(
        self,
        catalog: Catalog,
        manager: str | None,
        settings: RetrySettings | None = None,
        forced: Sequence[str] = (),
    ) -> None:
        self.catalog = catalog
        self.manager = manager or ""
        self.settings = settings or RetrySettings()
        unknown = [h for h in forced if catalog.get(h) is None]
        if unknown:
            raise InputError(f"--fix {', '.join(unknown)}: no such hint in the catalog")
        # Hints asked for by hand (a re-dispatch's fixes): applied before attempt 1.
        self.forced = tuple(dict.fromkeys(forced))
        self.decisions: list[Decision] = []
        self._applied: dict[str, Remedy] = {}
        self._lock = threading.Lock()

    # --- before the first attempt -------------------------------------------------
    def first_fix(self, node: PlanNode) -> Remedy | None:
        """Learned per-package entries and forced hints: their fixes apply from the
        first attempt."""
        remedy = Remedy()
        learned = [h for e in self.catalog.for_package(node.name, node.python) for h in e.hints]
        for hint_id in dict.fromkeys([*learned, *self.forced]):
            hint = self.catalog.get(hint_id)
            if hint is not None and hint.fix.applicable(self.manager):
                remedy = remedy.plus(hint, self.manager)
        if not remedy.hint_ids:
            return None
        with self._lock:
            self._applied[node.key] = remedy
        return remedy

    # --- after a failed attempt ---------------------------------------------------
    def matches(self, node: PlanNode, outcome: AttemptOutcome) -> list[Match]:
        try:
            lines = read_log(
                outcome.log, max_bytes=self.settings.max_bytes, max_lines=self.settings.max_lines
            )
        except OSError:
            lines = as_log_lines(outcome.matched_lines)
        return scan(
            self.catalog, lines, package=node.name, python=node.python, backend=outcome.backend
        )

    def __call__(self, node: PlanNode, outcome: AttemptOutcome, n: int) -> Remedy | None:
        if outcome.status in (NodeStatus.BUILT, NodeStatus.MISSING):
            return None
        with self._lock:
            current = self._applied.get(node.key, Remedy())
        matches = self.matches(node, outcome) if self.catalog.hints else []
        applied: list[Match] = []
        dropped: list[str] = []
        remedy = current
        for match in matches:
            hint = match.hint
            fresh = (
                hint.id not in remedy.hint_ids
                and hint.fix.applicable(self.manager)
                and remedy.adds_to(hint, self.manager)
            )
            if fresh:
                remedy = remedy.plus(hint, self.manager)
                applied.append(match)
            else:
                dropped.append(hint.id)
        result: Remedy | None = None
        # A fix whose own system packages failed to install is not retried as is, and
        # the runner stops at max_attempts anyway; say so in the decision all the same.
        retry = (
            applied
            and n < self.settings.max_attempts
            and outcome.status is not NodeStatus.SYSTEM_RECIPE_FAILED
        )
        if retry:
            lines = tuple(dict.fromkeys(t for m in applied for t in m.texts))
            result = replace(remedy, matched_lines=lines, delay=self.settings.delay(n))
            with self._lock:
                self._applied[node.key] = result
        with self._lock:
            self.decisions.append(
                Decision(
                    node.key,
                    n,
                    tuple(m.hint.id for m in matches),
                    tuple(m.hint.id for m in applied) if retry else (),
                    tuple(dropped),
                    result,
                )
            )
        return result
