"""A package's own tests (issue 19): the JUnit verdict, known failures, the record, the
step's tests phase and the runner (no fix is sought for a failed test), the
differential, and the catalog's strict ``tests:`` setting."""

from __future__ import annotations

import contextlib
import json
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fixtures.buildroot import PURE_SDIST, FakeRoot, FakeSession, node_for, ready_cache
from fixtures.sdists import write_sdist

from refinery.builder.options import AttemptSpec, BuildOptions, RunOptions
from refinery.builder.pkgtests import (
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    Difference,
    TestResult,
    TestRun,
    backend_for_tests,
    compare,
    copy_from_sdist,
    differences,
    failure_reason,
    judge,
    junit_outcomes,
    known_reason,
    pytest_args,
    summary,
    wheel_project,
    wheel_python,
)
from refinery.builder.proc import OnLine, ProcResult
from refinery.builder.roots import Mounts
from refinery.builder.runner import Fix, build_plan
from refinery.builder.step import BuildOutcome, build_node
from refinery.core.cache import CacheRoot
from refinery.core.models import Attempt, NodeStatus, Plan, PlanNode, Target, TestReport
from refinery.hints.loader import CatalogError, load_catalog
from refinery.hints.models import PackageTests
from refinery.store import Store

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="2" skipped="1" tests="6">
<testcase classname="demo.tests.test_m.TestR" name="test_gcd_overflow">
<failure message="x"/></testcase>
<testcase classname="demo.tests.test_m" name="test_ok"/>
<testcase classname="demo.tests.test_m" name="test_param[int32]"/>
<testcase classname="demo.tests.test_m" name="test_bad"><failure message="y"/></testcase>
<testcase classname="demo.tests.test_m" name="test_skip"><skipped message="s"/></testcase>
<testcase classname="" name="demo.tests.test_broken"><error message="collection"/></testcase>
</testsuite></testsuites>
"""
KNOWN = (("TestR::test_gcd_overflow", "a gcc build issue"),)


def done(code: int = 1, timed_out: bool = False) -> ProcResult:
    return ProcResult(("sh",), code, 1.0, timed_out, ())


def test_junit_outcomes_and_the_verdict(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    outcomes = junit_outcomes(junit)
    assert outcomes["demo.tests.test_m.TestR::test_gcd_overflow"] == FAILED
    assert outcomes["demo.tests.test_m::test_skip"] == SKIPPED
    assert outcomes["demo.tests.test_broken"] == ERROR
    assert list(outcomes.values()).count(PASSED) == 2
    report = judge(
        "pytest --pyargs demo", outcomes, PackageTests("pytest", (), 60.0, KNOWN), done()
    )
    assert (report.passed, report.failed, report.skipped, report.errors) == (2, 2, 1, 1)
    assert report.failures == ("demo.tests.test_m::test_bad", "demo.tests.test_broken")
    assert report.known == ("demo.tests.test_m.TestR::test_gcd_overflow: a gcc build issue",)
    assert not report.ok
    assert failure_reason(report) == "tests: 2 failed (test_bad, demo.tests.test_broken)"
    assert summary(report) == "2 passed, 3 failed (1 known), 1 skipped"


def test_only_known_failures_pass_and_nothing_run_fails() -> None:
    outcomes = {"pkg.t.TestR::test_gcd_overflow": FAILED, "pkg.t::test_a": PASSED}
    ok = judge("pytest", outcomes, PackageTests("pytest", (), 60.0, KNOWN), done(1))
    assert ok.ok and ok.known and not ok.failures
    empty = judge("pytest", {}, PackageTests("pytest"), done(4))
    assert not empty.ok and empty.reason == "no test ran (pytest exited 4)"
    assert failure_reason(empty) == "tests: no test ran (pytest exited 4)"
    slow = judge("pytest", {"a::b": PASSED}, PackageTests("pytest", (), 9.0), done(-9, True))
    assert not slow.ok and "timed out after 9 s" in slow.reason
    crashed = judge("pytest", {"a::b": PASSED}, PackageTests("pytest"), done(-11))
    assert crashed.reason == "pytest exited -11"


def test_known_reason_matches_ids_tails_and_parameters() -> None:
    known = (("test_m::test_p", "p"), ("pkg.t.TestC::test_x", "x"))
    assert known_reason("pkg.t.test_m::test_p[int64]", known) == "p"
    assert known_reason("pkg.t.TestC::test_x", known) == "x"
    assert known_reason("pkg.t.TestC::test_xy", known) is None
    assert known_reason("pkg.other_test_m::test_p", known) is None


def test_many_failures_are_cut_short_in_the_reason() -> None:
    report = TestReport("pytest", failed=7, failures=tuple(f"m::t{i}" for i in range(7)))
    assert failure_reason(report) == "tests: 7 failed (t0, t1, t2, t3, t4, +2 more)"


def test_the_record_holds_the_report_and_omits_it_when_absent() -> None:
    bare = Attempt(n=1, started="t")
    assert "tests" not in bare.to_json()
    report = TestReport("pytest -q", passed=3, failed=1, failures=("m::t",), seconds=2.5)
    tested = Attempt(n=1, started="t", tests=report)
    data = json.loads(json.dumps(tested.to_json()))
    assert data["tests"]["failures"] == ["m::t"]
    assert Attempt.from_json(data) == tested
    assert Attempt.from_json(bare.to_json()) == bare


def test_differences_list_every_changed_outcome(tmp_path: Path) -> None:
    a = {"m::t1": PASSED, "m::t2": FAILED, "m::t3": SKIPPED}
    b = {"m::t1": PASSED, "m::t2": PASSED, "m::t4": PASSED}
    assert differences(a, b) == (
        Difference("m::t2", FAILED, PASSED),
        Difference("m::t3", SKIPPED, "absent"),
        Difference("m::t4", "absent", PASSED),
    )
    report = TestReport("pytest")
    result = compare(
        tmp_path / "demo-1.0-cp311-cp311-linux_s390x.whl",
        tmp_path / "demo-1.0-cp312-cp312-linux_s390x.whl",
        TestResult(report, a),
        TestResult(report, b),
    )
    data = result.to_json()
    assert data["version"] == 1
    assert data["differences"][0] == {"test": "m::t2", "a": FAILED, "b": PASSED}


def test_names_from_wheels_commands_and_backends() -> None:
    assert wheel_project(Path("Foo_Bar-1.0-cp311-cp311-linux_s390x.whl")) == "foo-bar"
    assert wheel_python(Path("numpy-2.2.6-cp311-cp311-manylinux_2_27_s390x.whl")) == "3.11"
    assert wheel_python(Path("x-1.0-cp313-cp313t-linux_s390x.whl")) == "3.13"
    assert wheel_python(Path("x-1.0-py3-none-any.whl")) == "3.11"
    # cryptography's cp37-abi3: 3.7 is the oldest it runs on, not a Python the root has
    assert wheel_python(Path("cryptography-43.0.3-cp37-abi3-manylinux_2_28_s390x.whl")) == "3.11"
    assert pytest_args("pytest --pyargs 'a b' -q") == ["--pyargs", "a b", "-q"]
    with pytest.raises(ValueError, match="starts with 'pytest'"):
        pytest_args("python -m unittest")
    assert backend_for_tests("auto", "x86_64") == "rootfs"
    assert backend_for_tests("cross", "s390x") == "native"
    assert backend_for_tests("container", "x86_64") == "container"


# --- the step and the runner ---------------------------------------------------------
class JunitSession(FakeSession):
    """Runs the tests phase: writes the root's ``junit`` where ``--junitxml`` says."""

    root: JunitRoot

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
        cwd: str | None = None,
    ) -> ProcResult:
        found = re.search(r"--junitxml=(\S+)", argv[-1]) if argv[:2] == ["sh", "-c"] else None
        if found is None:
            return super().run(argv, env=env, timeout=timeout, on_line=on_line, log=log, cwd=cwd)
        self.root.calls.append((self.purpose, tuple(argv), dict(env or {})))
        Path(found.group(1)).write_text(self.root.junit)
        return ProcResult(tuple(argv), 1 if "<failure" in self.root.junit else 0, 0.1, False, ())


class JunitRoot(FakeRoot):
    def __init__(self, junit: str) -> None:
        super().__init__()
        self.junit = junit

    @contextlib.contextmanager
    def _session(self, mounts: Mounts, purpose: str) -> Iterator[JunitSession]:
        yield JunitSession(self, mounts, purpose)


@pytest.fixture(autouse=True)
def no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("refinery.builder.phases.ensure_uv", lambda tools, arch: None)


@pytest.fixture
def cache(tmp_path: Path) -> CacheRoot:
    return ready_cache(tmp_path / "cache")[0]


@pytest.fixture(autouse=True)
def quick_install(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The host pip install of the tests phase, as a plain unzip (pure: no pip here)."""
    installed: list[Path] = []

    def install(run: TestRun, target: Path, log: Path | None) -> str:
        installed.append(run.wheel)
        with zipfile.ZipFile(run.wheel) as zf:
            zf.extractall(target)
        return ""

    monkeypatch.setattr("refinery.builder.pkgtests.install", install)
    return installed


def step(tmp_path: Path, cache: CacheRoot, root: JunitRoot, tests: PackageTests) -> BuildOutcome:
    sdist = write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    spec = AttemptSpec(workdir=tmp_path / "work", tests=tests)
    return build_node(node_for(sdist), root, options=BuildOptions(cache=cache), spec=spec)


def test_a_failed_test_fails_the_attempt(
    tmp_path: Path, cache: CacheRoot, quick_install: list[Path]
) -> None:
    root = JunitRoot(JUNIT)
    outcome = step(tmp_path, cache, root, PackageTests("pytest --pyargs demo -q", (), 60, KNOWN))
    assert outcome.status is NodeStatus.FAILED
    assert outcome.reason == "tests: 2 failed (test_bad, demo.tests.test_broken)"
    assert outcome.tests is not None and outcome.tests.passed == 2
    assert [w.name for w in quick_install] == ["demo-1.0-py3-none-any.whl"]
    command = next(c for c in root.calls if "--junitxml=" in c[1][-1])
    assert command[0] == "smoke"  # a clean session, not the build's
    assert "-m pytest --pyargs demo -q -p no:cacheprovider" in command[1][-1]
    log = outcome.log.read_text()
    assert "==> tests: pytest --pyargs demo -q" in log
    assert "tests: known failure demo.tests.test_m.TestR::test_gcd_overflow" in log


def test_known_failures_only_keep_the_attempt_built(tmp_path: Path, cache: CacheRoot) -> None:
    junit = JUNIT.replace('<failure message="y"/>', "").replace('<error message="collection"/>', "")
    outcome = step(tmp_path, cache, JunitRoot(junit), PackageTests("pytest", (), 60, KNOWN))
    assert outcome.status is NodeStatus.BUILT, outcome.reason
    assert outcome.tests is not None and len(outcome.tests.known) == 1


def test_no_setting_no_tests_phase(tmp_path: Path, cache: CacheRoot) -> None:
    sdist = write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    root = JunitRoot(JUNIT)
    spec = AttemptSpec(workdir=tmp_path / "work")
    outcome = build_node(node_for(sdist), root, options=BuildOptions(cache=cache), spec=spec)
    assert outcome.ok and outcome.tests is None
    assert "==> tests" not in outcome.log.read_text()


def test_the_runner_records_tests_and_seeks_no_fix(tmp_path: Path, cache: CacheRoot) -> None:
    sdist = write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    node = node_for(sdist)
    plan = Plan("p", (), (Target(),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    asked: list[int] = []

    def advise(n: PlanNode, outcome: BuildOutcome, attempt: int) -> Fix | None:
        asked.append(attempt)
        return Fix(hint_ids=("anything",), recipes=("apt: x",), system_packages=("x",))

    def tests_for(name: str, python: str, version: str) -> PackageTests | None:
        return PackageTests("pytest --pyargs demo") if name == "demo" else None

    options = RunOptions(build=BuildOptions(cache=cache), workdir=tmp_path / "run", tests=tests_for)
    build_plan(plan, store, JunitRoot(JUNIT), options, advise=advise)
    record = store.get_record("demo", "1.0", "3.11")
    assert record is not None and asked == []
    assert [a.status for a in record.attempts] == ["failed"]
    tests = record.attempts[0].tests
    assert tests is not None and tests.failures == (
        "demo.tests.test_m.TestR::test_gcd_overflow",
        "demo.tests.test_m::test_bad",
        "demo.tests.test_broken",
    )
    assert record.reason.startswith("tests: 3 failed (test_gcd_overflow, test_bad")


# --- the catalog ---------------------------------------------------------------------
def catalog(tmp_path: Path, text: str) -> CatalogError | None:
    (tmp_path / "hints").mkdir(exist_ok=True)
    (tmp_path / "hints" / "t.yaml").write_text(text)
    try:
        load_catalog(tmp_path / "hints")
    except CatalogError as exc:
        return exc
    return None


def test_catalog_reads_a_tests_setting(tmp_path: Path) -> None:
    text = """packages:
  - package: Demo_Pkg
    tests:
      command: pytest --pyargs demo -q
      requires: [pytest, "hypothesis>=6"]
      timeout: 90
      known_failures:
        TestR::test_x: fails on s390x because of a reason
"""
    assert catalog(tmp_path, text) is None
    found = load_catalog(tmp_path / "hints").tests("demo-pkg", "3.11")
    assert found == PackageTests(
        "pytest --pyargs demo -q",
        ("pytest", "hypothesis>=6"),
        90.0,
        (("TestR::test_x", "fails on s390x because of a reason"),),
    )
    assert load_catalog(tmp_path / "hints").tests("other", "3.11") is None


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "      comand: pytest\n",
            4,
            "unknown key 'comand' in tests of package entry 'demo'; did you mean 'command'?",
        ),
        ("      command: python -m unittest\n", 4, "command must start with 'pytest'"),
        ("      command: pytest\n      timeout: -1\n", 5, "timeout must be a positive number"),
        ("      command: pytest\n      requires: ['not a req!!']\n", 5, "is not a requirement"),
        ("      command: pytest\n      known_failures:\n        t::x: ''\n", 6, "needs a reason"),
        ("      command: pytest\n      known_failures: [t::x]\n", 5, "must be a mapping"),
        ("      requires: [pytest]\n", 4, "needs 'command'"),
    ],
)
def test_catalog_rejects_bad_tests_settings(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    error = catalog(tmp_path, f"packages:\n  - package: demo\n    tests:\n{body}")
    assert error is not None
    problem = error.problems[0]
    assert message in problem.message, [str(p) for p in error.problems]
    assert problem.location.line == line and problem.location.path.endswith("t.yaml")


def test_the_shipped_catalog_sets_numpy_tests_with_the_gcd_explained() -> None:
    found = load_catalog(Path(__file__).parents[2] / "hints").tests("numpy", "3.11")
    assert found is not None and "numpy._core.tests.test_umath" in found.command
    reasons = dict(found.known_failures)
    assert "DSGR" in reasons["TestRationalFunctions::test_gcd_overflow"]


def test_the_install_command_adds_the_test_requirements(tmp_path: Path) -> None:
    from refinery.builder.pkgtests import install_argv

    run = TestRun(
        wheel=tmp_path / "demo-1.0-py3-none-any.whl",
        python="3.11",
        arch="s390x",
        tests=PackageTests("pytest", ("pytest>=8", "hypothesis")),
        find_links=(tmp_path / "wheels",),
        timeout=30.0,
    )
    argv = install_argv(run, tmp_path / "site")
    assert argv[-3:] == [str(run.wheel), "pytest>=8", "hypothesis"]
    assert "manylinux_2_17_s390x" in argv and "--only-binary=:all:" in argv
    assert argv[argv.index("--find-links") + 1] == str(tmp_path / "wheels")
    assert run.budget == 30.0


# --- the package page ----------------------------------------------------------------
def test_the_package_page_shows_the_tests(tmp_path: Path) -> None:
    from dataclasses import replace

    from fixtures.sitestore import write_demo_store

    from refinery.core.models import BuildRecord
    from refinery.site import Generator, SiteOptions, load

    store = write_demo_store(tmp_path / "store")
    report = TestReport(
        "pytest --pyargs zlib_user",
        passed=41,
        failed=2,
        skipped=3,
        failures=("zlib_user.tests.test_a::test_x",),
        known=("zlib_user.tests.test_a::test_gcd: <a gcc build issue>",),
    )

    def change(current: BuildRecord | None) -> BuildRecord:
        assert current is not None
        last = replace(current.attempts[-1], tests=report)
        return current.evolve(attempts=(*current.attempts[:-1], last))

    store.update_record("zlib-user", "2.0", "3.11", change)
    status = tmp_path / "status"
    options = SiteOptions(pip_index="https://x/simple", hints_dir=status / "no-hints")
    Generator(store, status, options).run(load(store))
    page = (status / "packages" / "zlib-user.md").read_text()
    assert "tests on s390x: 41 passed, 2 failed, 3 skipped" in page
    assert "failed <code>zlib_user.tests.test_a::test_x</code>" in page
    assert "known failure <code>zlib_user.tests.test_a::test_gcd</code>: &lt;a gcc" in page


# --- the command ---------------------------------------------------------------------
def test_the_command_wants_a_node_and_a_setting(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from refinery.cli import main
    from refinery.cli.test import parse_env, settings_for
    from refinery.core.errors import InputError

    runner = CliRunner()
    done = runner.invoke(main, ["--store", str(tmp_path / "s"), "test"])
    assert done.exit_code != 0 and "name a NODE" in done.output
    demo = Path("demo-1.0-cp311-cp311-manylinux_2_28_s390x.whl")
    with pytest.raises(InputError, match="no tests setting"):
        settings_for(tmp_path / "no-hints", demo, "3.11", None, ())
    given = settings_for(tmp_path / "no-hints", demo, "3.11", "pytest -x", ("pytest",))
    assert given == PackageTests("pytest -x", ("pytest",))
    shipped = Path(__file__).parents[2] / "hints"
    numpy_wheel = Path("numpy-2.4.6-cp311-cp311-manylinux_2_28_s390x.whl")
    numpy = settings_for(shipped, numpy_wheel, "3.11", None, ("scipy",))
    assert numpy.requires[-1] == "scipy" and numpy.known_failures
    # cbor2's setting is for cbor2 6 (its sequence tests read docs/usage.rst): not 5
    cbor2 = "cbor2-{}-cp311-cp311-manylinux_2_28_s390x.whl"
    assert settings_for(shipped, Path(cbor2.format("6.3.0")), "3.11", None, ()).from_sdist
    with pytest.raises(InputError, match="no tests setting"):
        settings_for(shipped, Path(cbor2.format("5.6.5")), "3.11", None, ())
    assert parse_env(["QEMU_CPU=z14", "A=b=c"]) == {"QEMU_CPU": "z14", "A": "b=c"}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_env(["QEMU_CPU"])


def test_tests_from_the_sdist_are_copied_to_a_folder_of_their_own(tmp_path: Path) -> None:
    """jellyfish: tests/ and the testdata/ they open relative to where they run; the
    sdist's sources (python/jellyfish) stay behind: the wheel is what is tested."""
    sdist = tmp_path / "jellyfish-1.3.0"
    for rel in ("tests/test_jellyfish.py", "testdata/soundex.csv", "python/jellyfish/x.py"):
        (sdist / rel).parent.mkdir(parents=True, exist_ok=True)
        (sdist / rel).write_text(rel)
    dest = tmp_path / "tests-src"
    (dest / "stale").mkdir(parents=True)
    assert copy_from_sdist(sdist, ("tests", "testdata/soundex.csv"), dest) == ""
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == ["testdata/soundex.csv", "tests/test_jellyfish.py"]
    assert copy_from_sdist(sdist, ("test",), dest) == "the sdist has no test (from_sdist)"
    assert "no sdist was given" in copy_from_sdist(None, ("tests",), dest)


def test_from_sdist_paths_stay_inside_the_sdist(tmp_path: Path) -> None:
    from refinery.hints import load_catalog
    from refinery.hints.loader import CatalogError

    good = "packages:\n  - package: p\n    tests:\n      command: pytest tests\n"
    (tmp_path / "a.yaml").write_text(good + "      from_sdist: [tests, data/x.csv]\n")
    assert load_catalog(tmp_path).tests("p", "3.11").from_sdist == ("tests", "data/x.csv")
    for bad in ("../up", "/abs", "a//b"):
        (tmp_path / "a.yaml").write_text(good + f"      from_sdist: ['{bad}']\n")
        with pytest.raises(CatalogError, match="is not a path inside the sdist"):
            load_catalog(tmp_path)


def test_numexprs_known_failures_are_numpy_21s_float32_trigonometry_only(catalog: Any) -> None:
    """numexpr's test_expressions compares with numpy, whose 2.1.x float32 sin/cos/tan are
    wrong on s390x: those cases are known, by full id; any other expression or dtype that
    disagrees still fails the attempt."""
    tests = catalog.tests("numexpr", "3.11")
    assert tests is not None and len(tests.known_failures) == 18
    for test_id, reason in tests.known_failures:
        assert re.fullmatch(r"test_expressions\[.*(sin|cos|tan)\(.*-float32-.*\]", test_id)
        assert "numpy 2.1" in reason
    module = "numexpr.tests.test_numexpr::"
    other = f"{module}test_expressions[a + sin(b+c)-2-float64-none-False-X]"
    assert known_reason(other, tests.known_failures) is None
    assert known_reason(f"{module}test_expressions", tests.known_failures) is None
    assert known_reason(module + tests.known_failures[0][0], tests.known_failures) is not None
