"""Smoke test: prove in a clean root that the repaired wheel loads and imports.

The wheel (and its dependencies, as target-platform wheels) is installed by the *host's*
pip with ``--target`` at native speed; inside a fresh, clean session a venv is made with
``--without-pip`` (sub-second even under emulation), pointed at that directory with a
``.pth`` file. In that venv's Python two things are proven:

(a) every shared object of the wheel is an ELF for the target that the dynamic loader
    accepts: ``ctypes.CDLL(path, RTLD_NOW)`` — all its libraries found, no undefined
    symbol (extension modules load inside the interpreter, whose ``Py*`` symbols they use);
(b) the top-level modules the wheel's ``RECORD`` installs import (``top_level.txt`` only
    orders them).

An import that fails only with ``ModuleNotFoundError`` for a module that is neither in
the wheel nor among its declared requirements (a helper extension importing the package
that depends on it, a module an embedding host provides) *needs context*: when (a)
passed, the wheel is good and the result carries a note. So does a module that refuses
a lone import with an ``ImportError`` of its own — raised by its code, not by the import
system (no ``name``) and not while handling another error (``psycopg_c``: "the psycopg
package should be imported before psycopg_c"). Anything else fails.

Before (a), the session is given the system libraries the wheel's manylinux policy lets
it assume and the root lacks (:mod:`refinery.builder.systemlibs`); the result says so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from refinery.builder.distindex import RootIndex
from refinery.builder.errors import SystemRecipeFailed
from refinery.builder.proc import OnLine, ProcResult
from refinery.builder.roots import BuildRoot, Mounts
from refinery.builder.systemlibs import Given, UnprovidedLibrary, give

#: e_machine of the ELF files each target architecture loads.
EM_FOR_ARCH = {"s390x": 22, "x86_64": 62, "aarch64": 183, "ppc64le": 21}

#: The line the smoke script prints for a shared object the loader refuses.
ELF_FAIL = "SMOKE ELF FAIL "
# argv[1]: a JSON file {"machine": int, "site": dir, "elf": [paths in site], "modules": [names]}.
IMPORT_SCRIPT = """\
import ctypes, importlib, json, os, sys, traceback
plan = json.load(open(sys.argv[1]))
bad = 0
for rel in plan["elf"]:
    path = os.path.join(plan["site"], rel)
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
        machine = int.from_bytes(head[18:20], "big" if head[5] == 2 else "little")
        if head[:4] != b"\\x7fELF" or machine != plan["machine"]:
            raise OSError(f"not an ELF for e_machine {plan['machine']} (e_machine {machine})")
        ctypes.CDLL(path, mode=os.RTLD_NOW)
    except BaseException as exc:
        bad = 1
        print(f"SMOKE ELF FAIL {rel}: {str(exc).replace(path + ': ', '')}", flush=True)
    else:
        print(f"SMOKE ELF OK {rel}", flush=True)
for name in plan["modules"]:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        bad = 1
        print(f"SMOKE MISSING {name} {exc.name}", flush=True)
        traceback.print_exc()
    except ImportError as exc:
        bad = 1
        own = exc.name is None and exc.__cause__ is None and exc.__context__ is None
        said = " ".join(str(exc).split())
        print(f"SMOKE REFUSED {name} {said}" if own else f"SMOKE FAIL {name}", flush=True)
        traceback.print_exc()
    except BaseException:
        bad = 1
        print(f"SMOKE FAIL {name}", flush=True)
        traceback.print_exc()
    else:
        print(f"SMOKE OK {name} {getattr(module, '__file__', '')}", flush=True)
sys.exit(bad)
"""
_DATA_LIB = re.compile(r"^[^/]+\.data/(purelib|platlib)/")
_MARKER_EXTRA = re.compile(r";.*\bextra\s*==")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name (``ruamel.yaml`` → ``ruamel-yaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class WheelContents:
    """What a wheel installs, from its ``RECORD``: top-level modules, every module name it
    provides, its regular packages (with ``__init__``), its shared objects (installed
    paths) and the distribution names it requires (without extras)."""

    modules: tuple[str, ...]
    provided: frozenset[str]
    packages: frozenset[str]
    shared_objects: tuple[str, ...]
    requires: frozenset[str]

    def owns(self, module: str) -> bool:
        """Whether ``module`` is (or would be) part of this wheel: provided by it, or
        inside one of its regular packages."""
        parts = module.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        return module in self.provided or bool(prefixes & self.packages)

    def declares(self, module: str) -> bool:
        """Whether a declared requirement's name matches ``module`` or a parent of it."""
        parts = module.split(".")
        return any(normalize(".".join(parts[: i + 1])) in self.requires for i in range(len(parts)))


def _module_parts(installed: str) -> tuple[list[str], bool] | None:
    """``pkg/sub/mod.py`` → (``[pkg, sub, mod]``, True); a data file gives its folders
    (False: not code); None for what names no module."""
    parts = installed.split("/")
    leaf = parts[-1]
    code = True
    if leaf.endswith(".py"):
        parts[-1] = leaf[:-3]
    elif re.fullmatch(r"[^.]+(\.[\w-]+)?\.so", leaf):
        parts[-1] = leaf.split(".", 1)[0]
    elif len(parts) > 1:
        parts, code = parts[:-1], False
    else:
        return None
    if not all(p.isidentifier() for p in parts) or "__pycache__" in parts:
        return None
    return parts, code


def wheel_contents(wheel: Path, hint: tuple[str, ...] = ()) -> WheelContents:
    """Read ``wheel``'s RECORD and METADATA; ``hint`` (top_level.txt) orders modules, and
    a dotted module of it the wheel provides (a package entry's ``imports``) is imported
    after the top-level ones."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        record = next(
            (n for n in names if n.count("/") == 1 and n.endswith(".dist-info/RECORD")), ""
        )
        lines = zf.read(record).decode(errors="replace").splitlines() if record else names
        meta = next(
            (n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), ""
        )
        metadata = zf.read(meta).decode(errors="replace") if meta else ""
    paths = [_DATA_LIB.sub("", line.rsplit(",", 2)[0]) for line in lines if line.strip()]
    paths = [p for p in paths if not p.split("/")[0].endswith((".dist-info", ".data"))]
    provided: set[str] = set()
    packages: set[str] = set()
    top: set[str] = set()
    for path in paths:
        found = _module_parts(path)
        if found is None:
            continue
        parts, code = found
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        provided.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        if code:
            top.add(parts[0])
    ordered = [m for m in hint if m in top] + sorted(top - set(hint))
    ordered += [m for m in hint if "." in m and m in provided]
    elf = tuple(p for p in paths if re.search(r"\.so(\.[\d.]+)?$", p))
    requires = frozenset(
        normalize(found.group(1))
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and not _MARKER_EXTRA.search(line)
        for found in [_REQ_NAME.match(line.partition(":")[2])]
        if found
    )
    return WheelContents(tuple(ordered), frozenset(provided), frozenset(packages), elf, requires)


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    modules: tuple[str, ...]
    failed: tuple[str, ...]
    seconds: float
    reason: str = ""
    deps_installed: bool = True
    elf_failed: tuple[str, ...] = ()
    needs_context: tuple[str, ...] = field(default=())  # "module (needs missing)"
    note: str = ""  # set when the wheel passed but some import needs context
    given: tuple[str, ...] = ()  # packages the clean root was given (systemlibs)


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
    root_index: RootIndex | None = None  # names the packages of system libraries


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


def logged_pip(argv: list[str], log: Path | None) -> subprocess.CompletedProcess[str]:
    """Run a host pip command; its command line and output are appended to ``log``."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if log is not None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
    return done


def install_for_smoke(spec: SmokeSpec, target: Path, log: Path | None = None) -> bool:
    """Install the wheel plus dependencies into ``target``; fall back to the wheel alone.

    Returns False when dependencies could not be installed (the import may still work).
    """
    target.mkdir(parents=True, exist_ok=True)
    done = logged_pip(host_pip_target_argv(spec, target), log)
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
    """Install ``spec.wheel`` for the target, then prove (a) and (b) in a clean session."""
    started = time.monotonic()
    contents = wheel_contents(spec.wheel, spec.modules)
    if not contents.modules:
        return SmokeResult(False, (), (), 0.0, "the wheel has no importable top-level module")
    site = mounts.work / "smoke-site"
    if site.exists():
        shutil.rmtree(site)
    deps_ok = install_for_smoke(spec, site, log)
    script = mounts.work / "smoke_import.py"
    script.write_text(IMPORT_SCRIPT)
    plan = mounts.work / "smoke_plan.json"
    python = spec.python
    with root.smoke_session(mounts) as session:
        try:
            given = give(
                session, spec.wheel, spec.root_index, timeout=timeout, on_line=on_line, log=log
            )
        except (UnprovidedLibrary, SystemRecipeFailed) as exc:
            reason = f"a system library the wheel may assume could not be given: {exc}"
            return SmokeResult(False, contents.modules, (), time.monotonic() - started, reason)
        inside_site = session.inside(site)
        plan.write_text(
            json.dumps(
                {
                    "machine": EM_FOR_ARCH.get(spec.arch, 0),
                    "site": inside_site,
                    "elf": list(contents.shared_objects),
                    "modules": list(contents.modules),
                }
            )
        )
        interpreter = session.python(python)
        venv_host = mounts.work / "smoke-venv"
        if venv_host.exists():
            shutil.rmtree(venv_host)
        venv = session.inside(venv_host)
        pth = f"{venv}/lib/python{python}/site-packages/refinery-smoke.pth"
        command = (
            f"{interpreter} -m venv --without-pip {venv} && "
            f"echo {inside_site} > {pth} && "
            f'exec {venv}/bin/python -I {session.inside(script)} "$@"'
        )
        heard: list[str] = []

        def hear(line: str) -> None:
            if line.startswith("SMOKE "):
                heard.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(line)

        result = session.run(
            ["sh", "-c", command, "smoke", session.inside(plan)],
            timeout=timeout,
            on_line=hear,
            log=log,
            cwd="/tmp",
        )
    verdict = with_given(judge(result, heard, contents), given)
    if verdict.note:
        line = f"smoke: {verdict.note}"
        if log is not None:
            with log.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        if on_line is not None:
            on_line(line)
    return replace(verdict, seconds=time.monotonic() - started, deps_installed=deps_ok)


def with_given(verdict: SmokeResult, given: Given | None) -> SmokeResult:
    """The verdict, saying which system packages the clean root was given."""
    if given is None:
        return verdict
    note = "; ".join(n for n in (given.note(), verdict.note) if n)
    return replace(verdict, given=given.packages, note=note)


def judge(result: ProcResult, lines: Sequence[str], contents: WheelContents) -> SmokeResult:
    """The verdict on a smoke run: its exit and its ``SMOKE …`` output ``lines``. It
    passes only when every shared object loaded and every module imported or needs
    context."""
    elf_failed: list[str] = []
    failed: list[str] = []
    context: list[str] = []
    passed: set[str] = set()
    for line in lines:
        if line.startswith(("SMOKE OK ", "SMOKE ELF OK ")):
            passed.add(line.split()[-1] if line.startswith("SMOKE ELF") else line.split()[2])
        if line.startswith(ELF_FAIL):
            elf_failed.append(line.removeprefix(ELF_FAIL))
        elif line.startswith("SMOKE FAIL "):
            failed.append(line.split()[2])
        elif line.startswith("SMOKE REFUSED "):
            _, _, module, *said = line.split()
            context.append(f"{module} (refuses a lone import: {' '.join(said)})")
            passed.add(module)
        elif line.startswith("SMOKE MISSING "):
            _, _, module, *missing = line.split()
            gone = missing[0] if missing else ""
            if gone and gone != "None" and not contents.owns(gone) and not contents.declares(gone):
                context.append(f"{module} (needs {gone})")
                passed.add(module)
            else:
                failed.append(module)
    wanted = {*contents.modules, *contents.shared_objects}
    ok = not result.timed_out and not elf_failed and not failed and wanted <= passed
    note = ""
    if ok and context:
        note = (
            f"import needs context: {', '.join(context)} — what it needs is neither in the "
            "wheel nor among its requirements; every shared object loaded"
        )
    reason = "" if ok else _reason(result, tuple(elf_failed), tuple(failed))
    return SmokeResult(
        ok=ok,
        modules=contents.modules,
        failed=tuple(failed),
        seconds=0.0,
        reason=reason,
        elf_failed=tuple(elf_failed),
        needs_context=tuple(context),
        note=note,
    )


def _reason(result: ProcResult, elf_failed: tuple[str, ...], failed: tuple[str, ...]) -> str:
    """Why a smoke run failed, in one sentence."""
    if result.timed_out:
        return "smoke test timed out"
    if elf_failed:
        return f"shared object not loadable in a clean root: {'; '.join(elf_failed)}"
    if failed:
        return f"import failed in a clean root: {', '.join(failed)}"
    return f"smoke test exited with {result.exit_code}"
