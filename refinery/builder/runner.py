"""Build a plan's nodes wave by wave and record every attempt in the store.

For each pending node: lease its record (``leased``, with an expiry), mark it
``building`` with a new attempt, run :func:`refinery.builder.step.build_node`, upload the
attempt's log to ``logs/<name>/<version>/<python>/<n>.log``, store the wheel
(content-addressed), and close the attempt (``built``/``failed``/``missing``/
``system_recipe_failed``). Wheels built — here or by earlier jobs — for nodes of earlier
waves are offered to later builds as a ``--find-links`` directory, so a build that
needs our numpy gets it.

An optional ``advise`` callback (the hints stage) may return a :class:`Fix` for a failed
attempt; the node then goes to ``retry`` and is built again with the fix applied.

An optional :class:`~refinery.builder.fallback.Fallback` (``--backend auto`` with a cross
primary: the emulated rootfs) takes over a node whose attempt on the primary root failed
for a cross-specific reason: the next attempt, and every later one of that node, runs on
the fallback root (a ``fallback`` event says why; the attempt records its backend). The
move happens once per node and is granted even after the last allowed attempt, so a node
gets at most ``max_attempts + 1`` attempts; hint-advised retries go on on whichever root
the node is on (a fix advised for the failed attempt travels along). A package whose
catalog entry says ``emulate`` starts on the fallback root. Nothing here prints:
progress goes to ``on_event``.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import Requirement

from refinery.builder.errors import BuildError
from refinery.builder.fallback import Fallback, Finding
from refinery.builder.options import AttemptSpec, RunOptions
from refinery.builder.proc import OnLine
from refinery.builder.roots import BuildRoot
from refinery.builder.step import BuildOutcome, build_node
from refinery.core.clock import later, now
from refinery.core.models import (
    Attempt,
    BuildRecord,
    NodeStatus,
    Plan,
    PlanNode,
    WheelRef,
    normalize_name,
)
from refinery.core.target import platform_for
from refinery.core.vocab import EventKind
from refinery.hints.models import Remedy as Fix
from refinery.store import Store, log_key

LEASE_MARGIN = 600.0


@dataclass(frozen=True)
class BuildEvent:
    """Progress for the CLI. ``kind``: wave, skip, leased, building, line, retry,
    fallback, done, finished."""

    kind: EventKind
    node: str | None = None
    message: str = ""
    wave: int | None = None
    status: NodeStatus | None = None
    outcome: BuildOutcome | None = None


OnEvent = Callable[[BuildEvent], None]
Advise = Callable[[PlanNode, BuildOutcome, int], Fix | None]
FirstFix = Callable[[PlanNode, str], Fix | None]  # (node, the first attempt's backend)

__all__ = [
    "Advise",
    "BuildEvent",
    "Fallback",
    "FirstFix",
    "Fix",
    "NodeResult",
    "RunHooks",
    "RunSummary",
    "build_plan",
]


@dataclass(frozen=True)
class RunHooks:
    """The runner's callbacks: progress (``on_event``), a fix for the next attempt after
    a failure (``advise``), a fix before the first attempt (``first_fix``)."""

    on_event: OnEvent
    advise: Advise | None = None
    first_fix: FirstFix | None = None


@dataclass(frozen=True)
class NodeResult:
    key: str
    status: NodeStatus
    reason: str = ""
    wheel: WheelRef | None = None
    attempts: int = 0
    outcome: BuildOutcome | None = None


@dataclass(frozen=True)
class RunSummary:
    results: tuple[NodeResult, ...]

    @property
    def failed(self) -> tuple[NodeResult, ...]:
        bad = {NodeStatus.FAILED, NodeStatus.SYSTEM_RECIPE_FAILED}
        return tuple(r for r in self.results if r.status in bad)

    @property
    def built(self) -> tuple[NodeResult, ...]:
        return tuple(r for r in self.results if r.status is NodeStatus.BUILT)

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for result in self.results:
            out[str(result.status)] = out.get(str(result.status), 0) + 1
        return out


def planned_constraints(plan: Plan, node: PlanNode) -> tuple[str, ...]:
    """Pin the build environment to the versions the plan chose for the node's build
    dependencies, so a build uses the numpy (say) that an earlier wave built."""
    out: list[str] = []
    for key in node.build_deps:
        try:
            dep = plan.node(key)
        except KeyError:
            continue
        if dep.status is not NodeStatus.MISSING:
            out.append(f"{dep.name}=={dep.version}")
    return tuple(out)


def with_fix_constraints(planned: Sequence[str], fixed: Sequence[str]) -> tuple[str, ...]:
    """The plan's pins with a fix's constraints: a fix that constrains a package the plan
    pinned replaces that pin (the hint matched because the planned version failed:
    ``setuptools<81`` over the plan's ``setuptools==84.2.1``)."""
    names = {normalize_name(Requirement(c).name) for c in fixed}
    kept = [c for c in planned if normalize_name(Requirement(c).name) not in names]
    return (*kept, *fixed)


def _normal_selector(item: str) -> str:
    name, sep, rest = item.strip().partition("==")
    return f"{normalize_name(name)}{sep}{rest}"


def selected(node: PlanNode, wanted: Collection[str]) -> bool:
    """``--node`` matching: ``name==version@python`` or ``name==version`` (any spelling)."""
    return node.key in wanted or f"{node.name}=={node.version}" in wanted


def _ignore(_: BuildEvent) -> None:
    return None


@dataclass
class _Track:
    """Where one node is built and with what: its current root and fix."""

    root: BuildRoot
    fix: Fix | None
    attempts: int = 0


@dataclass(frozen=True)
class _Next:
    """What follows a failed attempt: the next attempt's fix (``advised``: newly given
    by the advisor) and, when the node moves to the fallback root, why."""

    fix: Fix | None
    advised: bool = False
    moved: Finding | None = None


class _Run:
    def __init__(
        self,
        plan: Plan,
        store: Store,
        root: BuildRoot,
        options: RunOptions,
        hooks: RunHooks,
        workdir: Path,
        fallback: Fallback | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.root = root
        self.fallback = fallback
        self.options = options
        self.workdir = workdir
        self.wheels = self.workdir / "wheels"
        self.wheels.mkdir(parents=True, exist_ok=True)
        self.emit = hooks.on_event
        self.advise = hooks.advise
        self.first_fix = hooks.first_fix
        self.timeout = options.build.timeout
        self.max_attempts = options.max_attempts
        self.catalog_digest = options.catalog_digest or plan.catalog_digest
        self.lock = threading.Lock()

    # --- wheels of earlier waves --------------------------------------------------
    def collect_wheels(self) -> None:
        """Put every already-built wheel of this plan into the find-links directory."""
        for node in self.plan.nodes:
            record = self.store.get_record(node.name, node.version, node.python)
            if record is None or record.wheel is None:
                continue
            if record.status not in (NodeStatus.BUILT, NodeStatus.CACHED):
                continue
            self._offer(record.wheel)

    def _offer(self, ref: WheelRef, local: Path | None = None) -> None:
        target = self.wheels / ref.filename
        if target.exists():
            return
        if local is not None:
            shutil.copyfile(local, target)
            return
        data = self.store.get_wheel(ref)
        if data is not None:
            target.write_bytes(data)

    # --- records ------------------------------------------------------------------
    def _lease(self, node: PlanNode, upfront: str | None) -> tuple[BuildRecord | None, str]:
        """Claim the node's record; ``(None, why)`` when someone else has it or it's done.
        ``upfront``: why the node starts on the fallback root (recorded as an event)."""
        budget = self.max_attempts + (1 if self.fallback is not None else 0)
        expires = later(self.timeout * budget + LEASE_MARGIN)
        refused: list[str] = []

        def change(current: BuildRecord | None) -> BuildRecord:
            refused.clear()
            if current is not None and current.status is NodeStatus.BUILT and current.wheel:
                refused.append(f"already built ({current.wheel.filename})")
                return current
            if current is not None and current.lease_held():
                refused.append(f"leased elsewhere until {current.lease_expires}")
                return current
            base = current or BuildRecord(
                name=node.name,
                version=node.version,
                python=node.python,
                status=NodeStatus.PENDING,
            )
            leased = base.evolve(
                status=NodeStatus.LEASED,
                lease_expires=expires,
                plan_id=self.plan.plan_id,
                sdist_sha256=node.sdist.sha256 if node.sdist else None,
                catalog_digest=self.catalog_digest,
                reason="",
            ).with_event(now(), "leased", f"plan {self.plan.plan_id} on {self.root.backend}")
            if upfront is not None and self.fallback is not None:
                message = f"attempt {len(base.attempts) + 1} on {self.fallback.root.backend}"
                leased = leased.with_event(now(), "fallback", f"{message}: {upfront}")
            return leased

        record = self.store.update_record(node.name, node.version, node.python, change)
        if refused:
            return None, refused[0]
        return record, ""

    def _start_attempt(self, node: PlanNode, fix: Fix | None, root: BuildRoot) -> int:
        number: list[int] = []

        def change(current: BuildRecord | None) -> BuildRecord:
            assert current is not None
            n = len(current.attempts) + 1
            number[:] = [n]
            attempt = Attempt(
                n=n,
                started=now(),
                backend=root.backend,
                image=root.image,
                recipes=fix.recipes if fix else (),
                hint_ids=fix.hint_ids if fix else (),
                derived=fix.derived if fix else (),
                log=log_key(node.name, node.version, node.python, n),
            )
            return current.evolve(
                status=NodeStatus.BUILDING, attempts=(*current.attempts, attempt)
            ).with_event(now(), "building", f"attempt {n}")

        self.store.update_record(node.name, node.version, node.python, change)
        return number[0]

    def _finish_attempt(
        self,
        node: PlanNode,
        n: int,
        outcome: BuildOutcome,
        wheel: WheelRef | None,
        log: str | None,
        after: _Next | None,
    ) -> BuildRecord:
        status = outcome.status
        record_status = NodeStatus.RETRY if after is not None else status
        advised = after.fix if after is not None and after.advised else None
        moved = after.moved if after is not None else None
        matched = (advised.matched_lines if advised else ()) or outcome.matched_lines
        if moved is not None:
            matched = tuple(dict.fromkeys((moved.line, *matched)))

        def change(current: BuildRecord | None) -> BuildRecord:
            assert current is not None
            attempts = list(current.attempts)
            for i, attempt in enumerate(attempts):
                if attempt.n == n:
                    attempts[i] = replace(
                        attempt,
                        ended=now(),
                        duration=round(outcome.durations.total, 1),
                        exit=outcome.exit_code,
                        log=log,
                        status=str(status),
                        reason=outcome.reason,
                        matched_lines=matched,
                        auditwheel=outcome.auditwheel_show,
                        packs=outcome.packs,
                        sbom=outcome.sbom,
                        tests=outcome.tests,
                        network=outcome.network,
                    )
            updated = current.evolve(
                status=record_status,
                attempts=tuple(attempts),
                wheel=wheel if wheel is not None else current.wheel,
                reason=outcome.reason,
                lease_expires=current.lease_expires if after is not None else None,
            )
            message = outcome.reason or (wheel.filename if wheel else "")
            updated = updated.with_event(now(), str(status), message)
            if moved is not None and self.fallback is not None:
                where = f"attempt {n + 1} on {self.fallback.root.backend}"
                updated = updated.with_event(now(), "fallback", f"{where}: {moved.reason}")
            if advised is not None:
                hints = ", ".join(advised.hint_ids) or "a fix"
                recipes = f" ({'; '.join(advised.recipes)})" if advised.recipes else ""
                updated = updated.with_event(now(), "retry", f"applying {hints}{recipes}")
            return updated

        return self.store.update_record(node.name, node.version, node.python, change)

    # --- one node -----------------------------------------------------------------
    def build(self, node: PlanNode, wave: int) -> NodeResult:
        key = node.key
        upfront = self.fallback.start_reason(node) if self.fallback is not None else None
        record, why = self._lease(node, upfront)
        if record is None:
            self.emit(BuildEvent("skip", key, why, wave=wave))
            current = self.store.get_record(node.name, node.version, node.python)
            status = current.status if current else NodeStatus.PENDING
            return NodeResult(key, status, why, current.wheel if current else None)
        self.emit(BuildEvent("leased", key, f"until {record.lease_expires}", wave=wave))
        first = self.fallback.root if upfront is not None and self.fallback else self.root
        fix = self.first_fix(node, first.backend) if self.first_fix is not None else None
        track = _Track(self.root, fix)
        if upfront is not None and self.fallback is not None:
            track.root = self.fallback.root
            self.emit(BuildEvent("fallback", key, f"on {track.root.backend}: {upfront}", wave=wave))
        while True:
            outcome, wheel, after = self._one_attempt(node, track, wave)
            if after is None:
                break
            self._announce(key, wave, outcome, after)
            if after.moved is not None and self.fallback is not None:
                track.root = self.fallback.root
            if after.advised and after.fix is not None and after.fix.delay > 0:
                time.sleep(after.fix.delay)
            track.fix = after.fix
        self.emit(
            BuildEvent(
                "done",
                key,
                outcome.reason or (wheel.filename if wheel else ""),
                wave=wave,
                status=outcome.status,
                outcome=outcome,
            )
        )
        return NodeResult(key, outcome.status, outcome.reason, wheel, track.attempts, outcome)

    def _one_attempt(
        self, node: PlanNode, track: _Track, wave: int
    ) -> tuple[BuildOutcome, WheelRef | None, _Next | None]:
        """One attempt on the node's current root, recorded; what follows it (None: done)."""
        key = node.key
        n = self._start_attempt(node, track.fix, track.root)
        track.attempts += 1
        self.emit(BuildEvent("building", key, f"attempt {n} on {track.root.backend}", wave=wave))

        def on_line(line: str) -> None:
            self.emit(BuildEvent("line", key, line, wave=wave))

        outcome = self._attempt(node, n, track, on_line)
        log = self._upload_log(node, n, outcome.log)
        wheel = None
        if outcome.ok and outcome.wheel is not None:
            wheel = self.store.put_wheel(outcome.wheel)
            with self.lock:
                self._offer(wheel, outcome.wheel)
        after = self._after(node, track, outcome, n)
        self._finish_attempt(node, n, outcome, wheel, log, after)
        return outcome, wheel, after

    def _after(self, node: PlanNode, track: _Track, outcome: BuildOutcome, n: int) -> _Next | None:
        """What follows a finished attempt: None (done), a hint's retry on the same root,
        or the move to the fallback root (once; with the advised fix, if any)."""
        if outcome.ok or outcome.status is NodeStatus.MISSING:
            return None
        if outcome.tests is not None and not outcome.tests.ok:
            return None  # a failed test is not a missing header: no fix, no other root
        advised = None
        if self.advise is not None and track.attempts < self.max_attempts:
            advised = self.advise(node, outcome, n)
        fallback = self.fallback
        if fallback is not None and track.root is not fallback.root:
            finding = fallback.classify(outcome.log)
            if finding is not None:
                return _Next(advised or track.fix, advised is not None, finding)
        return _Next(advised, advised=True) if advised is not None else None

    def _announce(self, key: str, wave: int, outcome: BuildOutcome, after: _Next) -> None:
        """The CLI's events for what follows a failed attempt (fallback, retry)."""
        if after.moved is not None and self.fallback is not None:
            where = f"to {self.fallback.root.backend}"
            self.emit(BuildEvent("fallback", key, f"{where}: {after.moved.reason}", wave=wave))
        if after.advised and after.fix is not None:
            self.emit(
                BuildEvent(
                    "retry",
                    key,
                    ", ".join(after.fix.hint_ids),
                    wave=wave,
                    status=NodeStatus.RETRY,
                    outcome=outcome,
                )
            )

    def _attempt(self, node: PlanNode, n: int, track: _Track, on_line: OnLine) -> BuildOutcome:
        fix, root = track.fix, track.root
        attempt_dir = self.workdir / "nodes" / node.key.replace("@", "-py") / str(n)
        if attempt_dir.exists():
            shutil.rmtree(attempt_dir)
        log = attempt_dir / "build.log"
        try:
            spec = AttemptSpec(
                workdir=attempt_dir / "work",
                log=log,
                find_links=self.wheels,
                env=fix.env if fix else {},
                constraints=with_fix_constraints(
                    planned_constraints(self.plan, node), fix.constraints if fix else ()
                ),
                system_packages=fix.system_packages if fix else (),
                build_requires=fix.build_requires if fix else (),
                packs=fix.packs if fix else (),
                pack_packages=fix.pack_packages if fix else (),
                config_settings=fix.config_settings if fix else (),
                network=fix.network if fix else "",
                patches=fix.patches if fix else (),
                vendor=fix.vendor if fix else {},
                tests=self.options.tests(node.name, node.python, node.version)
                if self.options.tests
                else None,
                imports=self.options.imports(node.name, node.python)
                if self.options.imports
                else (),
                on_line=on_line,
                target_platform=platform_for(self.plan.targets, node.python),
            )
            return build_node(node, root, options=self.options.build, spec=spec)
        except Exception as exc:
            # A root that broke mid-build (BuildError) or a bug: the attempt is recorded
            # as failed with the traceback in its log, and the other nodes go on.
            what = "build root error" if isinstance(exc, BuildError) else "internal error"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as fh:
                fh.write(f"!! {what}: {exc}\n{traceback.format_exc()}")
            on_line(f"!! {what}: {exc}")
            return BuildOutcome(
                status=NodeStatus.FAILED,
                backend=root.backend,
                image=root.image,
                python=node.python,
                log=log,
                reason=f"{what}: {exc}",
            )
        finally:
            work = attempt_dir / "work"
            if work.exists():
                keep = work / "wheelhouse"
                for child in work.iterdir():
                    if child == keep:
                        continue
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)

    def _upload_log(self, node: PlanNode, n: int, path: Path) -> str | None:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return self.store.put_log(node.name, node.version, node.python, n, data)


def build_plan(
    plan: Plan,
    store: Store,
    root: BuildRoot,
    options: RunOptions,
    *,
    on_event: OnEvent | None = None,
    advise: Advise | None = None,
    first_fix: FirstFix | None = None,
    fallback: Fallback | None = None,
) -> RunSummary:
    """Build the plan's pending nodes wave by wave (see :class:`RunOptions`).

    Returns one :class:`NodeResult` per node considered. ``first_fix`` gives a fix to
    apply before a node's first attempt (learned hints); ``advise`` one for the next
    attempt after a failure (its ``delay`` is waited out in status ``retry``), up to
    ``options.max_attempts`` attempts. ``fallback`` is the root a node moves to after a
    cross-specific failure on ``root`` (see the module's docstring); it is prepared too.
    """
    emit = on_event or _ignore
    root.prepare(on_line=lambda line: emit(BuildEvent("line", None, line)))
    if fallback is not None:
        fallback.root.prepare(on_line=lambda line: emit(BuildEvent("line", None, line)))
    own_workdir = options.workdir is None
    base = options.workdir or Path(tempfile.mkdtemp(prefix="refinery-build."))
    hooks = RunHooks(emit, advise, first_fix)
    runner = _Run(plan, store, root, options, hooks, base, fallback)
    started = time.monotonic()
    try:
        results = _waves(plan, runner, options, emit)
    finally:
        if own_workdir:
            shutil.rmtree(base, ignore_errors=True)
    emit(
        BuildEvent("finished", None, f"{len(results)} node(s) in {time.monotonic() - started:.0f}s")
    )
    return RunSummary(tuple(results))


def _waves(plan: Plan, runner: _Run, options: RunOptions, emit: OnEvent) -> list[NodeResult]:
    """Each wave's selected pending nodes, ``options.jobs`` at a time."""
    only = options.only
    wanted = {_normal_selector(item) for item in only} if only is not None else None
    results: list[NodeResult] = []
    for wave_no, wave in enumerate(plan.waves):
        nodes = []
        for key in wave:
            node = plan.node(key)
            if wanted is not None and not selected(node, wanted):
                continue
            if node.status is not NodeStatus.PENDING:
                emit(BuildEvent("skip", key, f"plan says {node.status}", wave=wave_no))
                continue
            nodes.append(node)
        if not nodes:
            continue
        emit(BuildEvent("wave", None, f"wave {wave_no}: {len(nodes)} node(s)", wave=wave_no))
        runner.collect_wheels()
        with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
            results += list(pool.map(lambda n, w=wave_no: runner.build(n, w), nodes))
    return results
