"""Issue 19's CI gate: a package's own tests run on s390x after the smoke import.

Two tiny fixture packages whose tests are installed with the wheel are built in the
emulated root with a catalog that names their tests: ``pkgtests_pass`` (machine,
byte order, gcd: all pass on s390x) is ``built`` with its counts recorded;
``pkgtests_fail`` fails ``test_little_endian`` (s390x is big-endian), so the attempt
is ``failed`` with that test named, while ``test_known_to_fail``, listed as known,
is recorded as known; no fix is sought and no second attempt made. Needs the
rootfs root and PyPI (pytest for the target, pure wheels).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.options import RunOptions
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.runner import BuildEvent, Fix, build_plan
from refinery.builder.step import BuildOutcome
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.hints import load_catalog
from refinery.store import Store, sha256_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CATALOG = """packages:
  - package: refinery-fixture-tests-pass
    tests:
      command: pytest --pyargs refinery_fixture_tests_pass.tests.checks
      requires: [pytest]
      timeout: 600
  - package: refinery-fixture-tests-fail
    tests:
      command: pytest --pyargs refinery_fixture_tests_fail.tests.checks
      requires: [pytest]
      timeout: 600
      known_failures:
        checks::test_known_to_fail: the fixture's own known failure
"""


def node(kind: str, tmp_path: Path) -> PlanNode:
    sdist = make_sdist(FIXTURES / f"pkgtests_{kind}", tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    name = f"refinery-fixture-tests-{kind}"
    return PlanNode(name, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)


@pytest.mark.network
def test_own_tests_gate_the_build(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    (tmp_path / "hints").mkdir()
    (tmp_path / "hints" / "tests.yaml").write_text(CATALOG)
    catalog = load_catalog(tmp_path / "hints")
    nodes = (node("pass", tmp_path), node("fail", tmp_path))
    plan = Plan("it-tests", (), (Target(),), nodes, (tuple(n.key for n in nodes),), {})
    store = Store.open(str(tmp_path / "store"))
    lines: list[str] = []
    asked: list[str] = []

    def advise(n: PlanNode, outcome: BuildOutcome, attempt: int) -> Fix | None:
        asked.append(n.name)
        return None

    def on_event(event: BuildEvent) -> None:
        if event.kind == "line":
            lines.append(event.message)

    options = RunOptions(build=host_build_options(), workdir=tmp_path / "run", tests=catalog.tests)
    build_plan(plan, store, rootfs_root, options, on_event=on_event, advise=advise)

    good = store.get_record("refinery-fixture-tests-pass", "0.1.0", "3.11")
    assert good is not None and good.status is NodeStatus.BUILT, (good, lines[-40:])
    report = good.attempts[-1].tests
    assert report is not None, lines[-40:]
    assert (report.passed, report.failed, report.failures) == (3, 0, ())

    bad = store.get_record("refinery-fixture-tests-fail", "0.1.0", "3.11")
    assert bad is not None and bad.status is NodeStatus.FAILED
    assert len(bad.attempts) == 1 and asked == []  # a failed test is not a missing header
    assert bad.reason == "tests: 1 failed (test_little_endian)", lines[-40:]
    report = bad.attempts[0].tests
    assert report is not None and (report.passed, report.failed) == (1, 2)
    assert report.failures == ("refinery_fixture_tests_fail.tests.checks::test_little_endian",)
    assert report.known == (
        "refinery_fixture_tests_fail.tests.checks::test_known_to_fail: "
        "the fixture's own known failure",
    )
    log = store.get_log(bad.attempts[0].log or "")
    assert log is not None and b"==> tests: pytest --pyargs" in log
