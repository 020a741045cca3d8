"""A package's own tests on the target: beyond "it imports", "it computes right".

After the import smoke test the build runs the tests the package's setting names
(``tests:`` of its catalog entry, :class:`~refinery.hints.models.PackageTests`) in a clean
session of the target (the smoke session: emulated on x86_64, native on s390x). As for
the smoke test, the *host's* pip installs the wheel, its dependencies and the test
requirements for the target with ``--target`` (pure wheels, or binary wheels for the
target from PyPI or the wheels of earlier waves); in the session a venv made with
``--without-pip`` points at that folder, and ``python -m pytest`` runs the command's
arguments with a JUnit XML report. The report gives the counts and the failing test
ids; a failure listed in ``known_failures`` is recorded as known (it still ran).

:func:`differential` runs the same tests against two wheels of one package (two build
routes: zig vs gcc, cross vs emulated) and lists every test whose outcome differs —
the cheap way to tell a miscompile (the routes differ) from an emulator bug (they agree).
"""

from __future__ import annotations

import shlex
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from refinery.builder.distindex import RootIndex
from refinery.builder.errors import SystemRecipeFailed
from refinery.builder.proc import OnLine, ProcResult
from refinery.builder.roots import S390X_MACHINES, BuildRoot, Mounts
from refinery.builder.smoke import SmokeSpec, host_pip_target_argv, logged_pip
from refinery.builder.systemlibs import UnprovidedLibrary, give
from refinery.core.models import DEFAULT_PYTHON, TestReport, normalize_name
from refinery.core.vocab import BackendChoice
from refinery.hints.models import PackageTests

#: What :func:`junit_outcomes` says of each test case.
PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"
#: At most this many failing ids in an attempt's reason.
REASON_IDS = 5
#: The version of :meth:`Differential.to_json`.
DIFFERENTIAL_SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class TestRun:
    """What to test: ``wheel`` for CPython ``python`` on ``arch`` with ``tests``; its
    dependencies and the test requirements come from ``find_links`` and
    ``extra_index_urls``; ``env`` is added to the test command's environment (e.g.
    ``QEMU_CPU`` to run under another emulated CPU model); ``timeout`` caps the
    setting's own."""

    __test__ = False  # not a pytest test class

    wheel: Path
    python: str
    arch: str
    tests: PackageTests
    find_links: tuple[Path, ...] = ()
    extra_index_urls: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    root_index: RootIndex | None = None  # names the packages of system libraries
    sdist: Path | None = None  # the unpacked sdist, for a setting's ``from_sdist``

    @property
    def budget(self) -> float:
        own = self.tests.timeout
        return own if self.timeout is None else min(own, self.timeout)


@dataclass(frozen=True)
class TestResult:
    """The record's :class:`TestReport` and every test case's outcome (by test id)."""

    __test__ = False

    report: TestReport
    outcomes: Mapping[str, str]


def pytest_args(command: str) -> list[str]:
    """The arguments after ``pytest`` of a setting's command."""
    argv = shlex.split(command)
    if not argv or argv[0] != "pytest":
        raise ValueError(f"a test command starts with 'pytest', not {command!r}")
    return argv[1:]


def install_argv(run: TestRun, target: Path) -> list[str]:
    """The host pip command installing the wheel, its dependencies and the test
    requirements for the target into ``target``."""
    spec = SmokeSpec(
        wheel=run.wheel,
        modules=(),
        python=run.python,
        arch=run.arch,
        find_links=run.find_links,
        extra_index_urls=run.extra_index_urls,
    )
    return [*host_pip_target_argv(spec, target), *run.tests.requires]


def copy_from_sdist(sdist: Path | None, paths: Sequence[str], dest: Path) -> str:
    """Copy a setting's ``from_sdist`` paths of the unpacked ``sdist`` into ``dest``
    (fresh), keeping their relative places; "" or why not."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if sdist is None:
        return "the tests come from the sdist (from_sdist), and no sdist was given"
    for rel in paths:
        source = sdist / rel
        if not source.exists():
            return f"the sdist has no {rel} (from_sdist)"
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
    return ""


def install(run: TestRun, target: Path, log: Path | None) -> str:
    """Install for the tests into ``target``; "" or why it failed."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    done = logged_pip(install_argv(run, target), log)
    if done.returncode == 0:
        return ""
    last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
    return f"installing the wheel and the test requirements failed: {last}"


def junit_outcomes(junit: Path) -> dict[str, str]:
    """Every test case of a JUnit XML report: ``classname::name`` → its outcome."""
    out: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        test_id = f"{classname}::{name}" if classname else name
        tags = {child.tag for child in case}
        if "error" in tags:
            outcome = ERROR
        elif "failure" in tags:
            outcome = FAILED
        elif "skipped" in tags:
            outcome = SKIPPED
        else:
            outcome = PASSED
        out[test_id] = outcome
    return out


def known_reason(test_id: str, known: Sequence[tuple[str, str]]) -> str | None:
    """The reason ``test_id`` is a known failure: a listed id equal to it, or its tail
    (after a ``.`` or ``::``), with or without the parameters (``[...]``)."""
    bare = test_id.split("[", 1)[0]
    for key, reason in known:
        for candidate in (test_id, bare):
            if candidate == key or candidate.endswith((f"::{key}", f".{key}")):
                return reason
    return None


def short_id(test_id: str) -> str:
    """``pkg.tests.test_m.TestC::test_x[int]`` → ``test_x[int]``."""
    return test_id.rsplit("::", 1)[-1]


def judge(
    command: str,
    outcomes: Mapping[str, str],
    tests: PackageTests,
    result: ProcResult,
) -> TestReport:
    """The record of one run: counts, failing ids split into new and known."""
    counts = {PASSED: 0, FAILED: 0, SKIPPED: 0, ERROR: 0}
    failures: list[str] = []
    known: list[str] = []
    for test_id, outcome in outcomes.items():
        counts[outcome] += 1
        if outcome in (FAILED, ERROR):
            why = known_reason(test_id, tests.known_failures)
            if why is None:
                failures.append(test_id)
            else:
                known.append(f"{test_id}: {why}")
    reason = ""
    if result.timed_out:
        reason = f"timed out after {tests.timeout:.0f} s"
    elif not outcomes:
        reason = f"no test ran (pytest exited {result.exit_code})"
    elif result.exit_code not in (0, 1) and not failures:
        reason = f"pytest exited {result.exit_code}"
    return TestReport(
        command=command,
        passed=counts[PASSED],
        failed=counts[FAILED],
        skipped=counts[SKIPPED],
        errors=counts[ERROR],
        failures=tuple(failures),
        known=tuple(known),
        timed_out=result.timed_out,
        reason=reason,
    )


def summary(report: TestReport) -> str:
    """``5302 passed, 1 failed (1 known), 12 skipped`` (and why the run failed)."""
    parts = [f"{report.passed} passed"]
    bad = report.failed + report.errors
    if bad:
        known = f" ({len(report.known)} known)" if report.known else ""
        parts.append(f"{bad} failed{known}")
    if report.skipped:
        parts.append(f"{report.skipped} skipped")
    text = ", ".join(parts)
    return f"{text}; {report.reason}" if report.reason else text


def failure_reason(report: TestReport) -> str:
    """The attempt's reason for a failed test run: ``tests: 2 failed (test_x, test_y)``."""
    if report.failures:
        count = len(report.failures)
        names = ", ".join(short_id(t) for t in report.failures[:REASON_IDS])
        more = f", +{count - REASON_IDS} more" if count > REASON_IDS else ""
        return f"tests: {count} failed ({names}{more})"
    return f"tests: {report.reason}"


def run_tests(
    root: BuildRoot,
    mounts: Mounts,
    run: TestRun,
    *,
    on_line: OnLine | None = None,
    log: Path | None = None,
) -> TestResult:
    """Install ``run.wheel`` with the test requirements for the target, run the tests in
    a clean session of ``root``, read the JUnit report."""
    started = time.monotonic()
    command = run.tests.command
    site = mounts.work / "tests-site"
    problem = install(run, site, log)
    sources = mounts.work / "tests-src"
    if not problem and run.tests.from_sdist:
        problem = copy_from_sdist(run.sdist, run.tests.from_sdist, sources)
    if problem:
        return TestResult(TestReport(command=command, reason=problem), {})
    junit = mounts.work / "tests-junit.xml"
    junit.unlink(missing_ok=True)
    with root.smoke_session(mounts) as session:
        try:
            give(session, run.wheel, run.root_index, timeout=run.budget, on_line=on_line, log=log)
        except (UnprovidedLibrary, SystemRecipeFailed) as exc:
            reason = f"a system library the wheel may assume could not be given: {exc}"
            return TestResult(TestReport(command=command, reason=reason), {})
        venv_host = mounts.work / "tests-venv"
        if venv_host.exists():
            shutil.rmtree(venv_host)
        venv, python = session.inside(venv_host), run.python
        pth = f"{venv}/lib/python{python}/site-packages/refinery-tests.pth"
        # tests of the sdist run where they were copied, imported without putting their
        # folder first on sys.path (the wheel, not a source tree, is what they test)
        here = session.inside(sources) if run.tests.from_sdist else "/tmp"
        args = [  # test ids relative to the installed packages: alike for any wheel
            *pytest_args(command),
            "-p",
            "no:cacheprovider",
            f"--rootdir={here if run.tests.from_sdist else session.inside(site)}",
            f"--junitxml={session.inside(junit)}",
            *(["--import-mode=importlib"] if run.tests.from_sdist else []),
        ]
        script = (
            f"{session.python(python)} -m venv --without-pip {venv} && "
            f"echo {session.inside(site)} > {pth} && "
            f"exec {venv}/bin/python -I -u -m pytest {shlex.join(args)}"  # -u: the log as it runs
        )
        result = session.run(
            ["sh", "-c", script],
            env=dict(run.env),
            timeout=run.budget,
            on_line=on_line,
            log=log,
            cwd=here,
        )
    outcomes = junit_outcomes(junit) if junit.is_file() else {}
    report = judge(command, outcomes, run.tests, result)
    seconds = round(time.monotonic() - started, 1)
    return TestResult(replace(report, seconds=seconds), outcomes)


@dataclass(frozen=True)
class Difference:
    """One test whose outcome differs between two wheels (``absent``: not run there)."""

    test_id: str
    a: str
    b: str


def differences(a: Mapping[str, str], b: Mapping[str, str]) -> tuple[Difference, ...]:
    """Every test whose outcome differs between runs ``a`` and ``b``."""
    out = [
        Difference(t, a.get(t, "absent"), b.get(t, "absent"))
        for t in sorted({*a, *b})
        if a.get(t, "absent") != b.get(t, "absent")
    ]
    return tuple(out)


@dataclass(frozen=True)
class Differential:
    """The same tests run on two wheels of one package, and where their outcomes differ."""

    wheel_a: str
    wheel_b: str
    a: TestResult
    b: TestResult
    differences: tuple[Difference, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": DIFFERENTIAL_SCHEMA,
            "a": {"wheel": self.wheel_a, "report": self.a.report.to_json()},
            "b": {"wheel": self.wheel_b, "report": self.b.report.to_json()},
            "differences": [{"test": d.test_id, "a": d.a, "b": d.b} for d in self.differences],
        }


def compare(wheel_a: Path, wheel_b: Path, a: TestResult, b: TestResult) -> Differential:
    """The differential of two runs of the same tests."""
    return Differential(wheel_a.name, wheel_b.name, a, b, differences(a.outcomes, b.outcomes))


def wheel_project(wheel: Path) -> str:
    """The normalised project name of a wheel file (``Foo_Bar-1.0-…`` → ``foo-bar``)."""
    return normalize_name(wheel.name.split("-", 1)[0])


def wheel_python(wheel: Path, default: str = DEFAULT_PYTHON) -> str:
    """The CPython version a wheel's tag names (``cp311`` → ``3.11``), else ``default``;
    a stable-ABI wheel's tag (``cp37-abi3``) names the oldest it runs on, not a target:
    ``default`` too."""
    parts = wheel.name.removesuffix(".whl").split("-")
    tag, abi = (parts[-3], parts[-2]) if len(parts) >= 5 else ("", "")
    if tag.startswith("cp") and tag[2:].isdigit() and len(tag) > 3 and abi != "abi3":
        return f"{tag[2]}.{tag[3:]}"
    return default


def backend_for_tests(backend: BackendChoice, machine: str) -> BackendChoice:
    """The backend whose clean session runs tests: on s390x the machine itself, on
    another host the emulated root (a cross backend's smoke session is that root too)."""
    if backend in ("auto", "cross"):
        return "native" if machine in S390X_MACHINES else "rootfs"
    return backend
