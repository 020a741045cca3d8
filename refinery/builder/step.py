"""The build step, the same for every build root.

fetch + verify the sdist → prepare (tools, folders, a fix's constraints; in the build
session a fix's recipe packages) → ``python -m build --wheel`` → silent-fallback and
architecture checks → ``auditwheel show``/``repair`` → ``twine check`` → import smoke
test in a clean session (the phases live in :mod:`refinery.builder.phases`). The result
is a frozen :class:`BuildOutcome`; recording it is the runner's job.

Output lines go to ``on_line`` and into the attempt's log file. Phase boundaries are
lines starting with :data:`PHASE_PREFIX` (``"==> "``), so a renderer can fold them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from refinery.builder import isolation, phases
from refinery.builder.options import AttemptSpec, BuildOptions
from refinery.builder.outcome import (
    PHASE_PREFIX,
    AttemptLog,
    BuildOutcome,
    Durations,
    PhaseFailed,
    why_lines,
)
from refinery.builder.phases import FRONTEND_BOOT, StepContext, build_env, uv_env
from refinery.builder.roots import BuildRoot
from refinery.core.models import NodeStatus, PlanNode

__all__ = [
    "FRONTEND_BOOT",
    "PHASE_PREFIX",
    "BuildOutcome",
    "Durations",
    "PhaseFailed",
    "build_env",
    "build_node",
    "uv_env",
    "why_lines",
]


def build_node(
    node: PlanNode, root: BuildRoot, *, options: BuildOptions, spec: AttemptSpec
) -> BuildOutcome:
    """Build, repair, check and smoke-test one node's wheel in ``root``.

    A build problem never raises: every failure is an outcome; only a root that cannot
    work at all raises :class:`~refinery.builder.errors.BuildError` (the runner records
    it).
    """
    spec.workdir.mkdir(parents=True, exist_ok=True)
    log = spec.log_file
    log.parent.mkdir(parents=True, exist_ok=True)
    attempt = AttemptLog(log, spec.on_line, options.timeout)
    attempt.phase("start", f"{node.key} on {root.backend} ({root.image})")
    ctx = StepContext(node, root, options, spec, attempt)
    watch = isolation.DiskWatch(options.disk, [spec.workdir]) if options.disk else None
    try:
        with isolation.watching(watch):
            final = _run_phases(ctx, watch)
    except PhaseFailed as failure:
        if watch is not None and watch.reason:  # stopped for the disk, whatever failed then
            isolation.empty_folder(spec.workdir, keep=log)
            failure = PhaseFailed(watch.reason, result=failure.result, verdict=True)
        return attempt.failed(failure, root.backend, root.image, node.python)
    attempt.phase("done", f"built {final.name}")
    built = attempt.outcome(NodeStatus.BUILT, root.backend, root.image, node.python)
    return replace(built, exit_code=0)


def _run_phases(ctx: StepContext, watch: isolation.DiskWatch | None = None) -> Path:
    """Every phase in order; the final wheel, or :class:`PhaseFailed` from the first
    phase that cannot go on. ``watch`` also bounds the build session's own layer."""
    source = phases.fetch(ctx, phases.sdist_of(ctx))
    ws = phases.prepare(ctx)
    with ctx.root.build_session(ws.mounts, ctx.spec.target_platform) as session:
        if watch is not None and isinstance(session, isolation.HasScratch):
            watch.add(session.scratch)
        host_pip = phases.pip_config(ctx, session)
        interpreter = session.python(ctx.python)
        phases.install_recipes(ctx, session, phases.install_packs(ctx, session, source.project))
        built = phases.build(ctx, session, ws, source, interpreter=interpreter, host_pip=host_pip)
        phases.check_architecture(ctx, built, source.natives)
        final = phases.repair(ctx, session, ws, built)
        phases.sbom(ctx, session, final)
    ctx.attempt.wheel = final
    phases.check(ctx, final)
    phases.smoke(ctx, ws, final)
    phases.package_tests(ctx, ws, final, source.project)
    return final
