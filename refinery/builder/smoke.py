"""Smoke test: import the repaired wheel's top-level modules in a clean root.

The wheel (and its dependencies, as target-platform wheels) is installed by the *host's*
pip with ``--target`` at native speed; inside a fresh, clean session a venv is made with
``--without-pip`` (sub-second even under emulation), pointed at that directory with a
``.pth`` file, and each module is imported in isolated mode. Undeclared system libraries
show up as failed imports.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.proc import OnLine, ProcResult
from refinery.builder.roots import BuildRoot, Mounts

IMPORT_SCRIPT = """\
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except BaseException:
        failed.append(name)
        print(f"SMOKE FAIL {name}", flush=True)
        traceback.print_exc()
    else:
        print(f"SMOKE OK {name} {getattr(module, '__file__', '')}", flush=True)
sys.exit(1 if failed else 0)
"""


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    modules: tuple[str, ...]
    failed: tuple[str, ...]
    seconds: float
    reason: str = ""
    deps_installed: bool = True


def manylinux_platforms(arch: str, glibc_max: int = 40) -> list[str]:
    """``--platform`` values accepting any manylinux wheel for ``arch`` (and linux_*)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_max, 16, -1)]
    return [*tags, f"manylinux2014_{arch}", f"linux_{arch}"]


@dataclass(frozen=True, kw_only=True)
class SmokeSpec:
    """What to smoke-test: ``wheel`` for CPython ``python`` on ``arch``, importing
    ``modules``; its dependencies come from ``find_links`` and ``extra_index_urls``."""

    wheel: Path
    modules: tuple[str, ...]
    python: str
    arch: str
    find_links: tuple[Path, ...] = ()
    extra_index_urls: tuple[str, ...] = ()


def host_pip_target_argv(spec: SmokeSpec, target: Path) -> list[str]:
    nodot = spec.python.replace(".", "")
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "--no-compile",
        "--target",
        str(target),
        "--only-binary=:all:",
        "--python-version",
        spec.python,
        "--implementation",
        "cp",
        "--abi",
        f"cp{nodot}",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for platform_tag in manylinux_platforms(spec.arch):
        argv += ["--platform", platform_tag]
    argv += ["--platform", "any"]
    for link in spec.find_links:
        argv += ["--find-links", str(link)]
    for url in spec.extra_index_urls:
        argv += ["--extra-index-url", url]
    argv.append(str(spec.wheel))
    return argv


def install_for_smoke(spec: SmokeSpec, target: Path, log: Path | None = None) -> bool:
    """Install the wheel plus dependencies into ``target``; fall back to the wheel alone.

    Returns False when dependencies could not be installed (the import may still work).
    """
    target.mkdir(parents=True, exist_ok=True)
    argv = host_pip_target_argv(spec, target)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if log is not None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
    if done.returncode == 0:
        return True
    with zipfile.ZipFile(spec.wheel) as zf:
        zf.extractall(target)
    return False


def smoke_test(
    root: BuildRoot,
    mounts: Mounts,
    spec: SmokeSpec,
    *,
    timeout: float | None = 600,
    on_line: OnLine | None = None,
    log: Path | None = None,
) -> SmokeResult:
    started = time.monotonic()
    if not spec.modules:
        return SmokeResult(False, (), (), 0.0, "the wheel has no importable top-level module")
    site = mounts.work / "smoke-site"
    deps_ok = install_for_smoke(spec, site, log)
    script = mounts.work / "smoke_import.py"
    script.write_text(IMPORT_SCRIPT)
    python = spec.python
    with root.smoke_session(mounts) as session:
        interpreter = session.python(python)
        venv_host = mounts.work / "smoke-venv"
        if venv_host.exists():
            shutil.rmtree(venv_host)
        venv = session.inside(venv_host)
        pth = f"{venv}/lib/python{python}/site-packages/refinery-smoke.pth"
        command = (
            f"{interpreter} -m venv --without-pip {venv} && "
            f"echo {session.inside(site)} > {pth} && "
            f'exec {venv}/bin/python -I {session.inside(script)} "$@"'
        )
        result = session.run(
            ["sh", "-c", command, "smoke", *spec.modules],
            timeout=timeout,
            on_line=on_line,
            log=log,
            cwd="/tmp",
        )
    failed = tuple(line.split()[2] for line in result.tail if line.startswith("SMOKE FAIL "))
    return SmokeResult(
        ok=result.ok and not failed,
        modules=spec.modules,
        failed=failed,
        seconds=time.monotonic() - started,
        reason=_reason(result, failed),
        deps_installed=deps_ok,
    )


def _reason(result: ProcResult, failed: tuple[str, ...]) -> str:
    """Why a smoke run failed, in one sentence ("" when it passed)."""
    if result.ok and not failed:
        return ""
    if result.timed_out:
        return "smoke test timed out"
    if failed:
        return f"import failed in a clean root: {', '.join(failed)}"
    return f"smoke test exited with {result.exit_code}"
