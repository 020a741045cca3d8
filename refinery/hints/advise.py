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

from refinery.core.errors import InputError, NetworkError
from refinery.core.models import NodeStatus, PlanNode
from refinery.core.vocab import PackageManager
from refinery.hints.derive import Deriver
from refinery.hints.matcher import (
    MAX_BYTES,
    MAX_LINES,
    LogLine,
    Match,
    as_log_lines,
    read_log,
    scan,
)
from refinery.hints.models import Catalog, Hint, Remedy

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
    derived: tuple[str, ...] = ()  # what the file index answered (or not), when asked


def for_node(hint: Hint, node: PlanNode) -> Hint:
    """``hint`` with the node's name and version filled into its fix's env values."""
    fix = hint.fix.for_node(node.name, node.version)
    return hint if fix is hint.fix else replace(hint, fix=fix)


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
        deriver: Deriver | None = None,
    ) -> None:
        self.catalog = catalog
        # Asked when no catalog hint helps: log lines -> fixes from the distribution's
        # file index (None: the root's distribution has none).
        self.deriver = deriver
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
    def first_fix(self, node: PlanNode, backend: str | None = None) -> Remedy | None:
        """Learned per-package entries and forced hints: their fixes apply from the
        first attempt (a hint scoped to other Pythons or backends than the node's and
        the first attempt's ``backend`` is left out)."""
        remedy = Remedy()
        entries = self.catalog.for_package(node.name, node.python, node.version)
        learned = [h for e in entries for h in e.hints]
        hints = [self.catalog.get(hint_id) for hint_id in dict.fromkeys([*learned, *self.forced])]
        hints += [e.own_hint for e in entries]
        for hint in hints:
            if hint is None or not hint.scope.applies(
                python=node.python, backend=backend, version=node.version
            ):
                continue
            if hint.fix.applicable(self.manager):
                remedy = remedy.plus(for_node(hint, node), self.manager)
        if not remedy.hint_ids:
            return None
        with self._lock:
            self._applied[node.key] = remedy
        return remedy

    # --- after a failed attempt ---------------------------------------------------
    def log_lines(self, outcome: AttemptOutcome) -> list[LogLine]:
        try:
            return read_log(
                outcome.log, max_bytes=self.settings.max_bytes, max_lines=self.settings.max_lines
            )
        except OSError:
            return as_log_lines(outcome.matched_lines)

    def matches(self, node: PlanNode, outcome: AttemptOutcome) -> list[Match]:
        return scan(
            self.catalog,
            self.log_lines(outcome),
            package=node.name,
            python=node.python,
            backend=outcome.backend,
            version=node.version,
        )

    def derive(self, outcome: AttemptOutcome, remedy: Remedy) -> tuple[Remedy, tuple[str, ...]]:
        """``remedy`` plus the fixes derived from the log (those that add something),
        and a line per missing thing the file index was asked about."""
        if self.deriver is None:
            return remedy, ()
        lines = [line.text for line in self.log_lines(outcome)]
        try:
            found = self.deriver(lines)
        except (NetworkError, OSError) as exc:  # no file index to be had: say so, go on
            return remedy, (f"file index unavailable: {exc}",)
        for fix in found:
            if fix.answered and remedy.adds_derived(fix):
                remedy = remedy.plus_derived(fix, self.manager)
        return remedy, tuple(fix.summary() for fix in found)

    def _apply(
        self, node: PlanNode, matches: Sequence[Match], remedy: Remedy
    ) -> tuple[Remedy, list[Match], list[str]]:
        """``remedy`` plus the matched hints that add something; (remedy, applied, dropped)."""
        applied: list[Match] = []
        dropped: list[str] = []
        for match in matches:
            hint = for_node(match.hint, node)
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
        return remedy, applied, dropped

    def __call__(self, node: PlanNode, outcome: AttemptOutcome, n: int) -> Remedy | None:
        if outcome.status in (NodeStatus.BUILT, NodeStatus.MISSING):
            return None
        with self._lock:
            current = self._applied.get(node.key, Remedy())
        matches = self.matches(node, outcome) if self.catalog.hints else []
        remedy, applied, dropped = self._apply(node, matches, current)
        # A fix whose own system packages failed to install is not retried as is, and
        # the runner stops at max_attempts anyway; say so in the decision all the same.
        recipe_failed = outcome.status is NodeStatus.SYSTEM_RECIPE_FAILED
        asked: tuple[str, ...] = ()
        if not applied and not recipe_failed:  # the catalog has nothing: ask the data
            remedy, asked = self.derive(outcome, remedy)
        derived = remedy.derived[len(current.derived) :]
        result: Remedy | None = None
        retry = bool(applied or derived) and n < self.settings.max_attempts and not recipe_failed
        if retry:
            texts = [t for m in applied for t in m.texts] + [d.line for d in derived if d.line]
            lines = tuple(dict.fromkeys(texts))
            result = replace(remedy, matched_lines=lines, delay=self.settings.delay(n))
            with self._lock:
                self._applied[node.key] = result
        new_ids = [m.hint.id for m in applied] + list(remedy.hint_ids[len(current.hint_ids) :])
        with self._lock:
            self.decisions.append(
                Decision(
                    node.key,
                    n,
                    tuple(m.hint.id for m in matches),
                    tuple(dict.fromkeys(new_ids)) if retry else (),
                    tuple(dropped),
                    result,
                    asked,
                )
            )
        return result
