"""Matching, ranking and the advisor; the runner's retry record, learned first fixes and
known failures, with a fake build step (no build root)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from refinery.builder.options import AttemptSpec, BuildOptions, RunOptions
from refinery.builder.runner import build_plan
from refinery.builder.step import BuildOutcome
from refinery.core.cache import CacheRoot
from refinery.core.errors import NetworkError
from refinery.core.models import DerivedFix, FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.hints import load_catalog
from refinery.hints.advise import Advisor, RetrySettings, manager_for_backend
from refinery.hints.matcher import as_log_lines, read_log, scan
from refinery.hints.models import Catalog, Hint, HintFix, PackageEntry, Scope
from refinery.plan import Decider
from refinery.store import Store

HINTS = Path(__file__).resolve().parents[2] / "hints"


def hint(hid: str, *patterns: str, scope: Scope | None = None, **fix: Any) -> Hint:
    return Hint(hid, tuple(re.compile(p) for p in patterns), HintFix(**fix), scope or Scope())


def node(name: str = "demo", python: str = "3.11") -> PlanNode:
    return PlanNode(
        name,
        "1.0",
        python,
        NodeStatus.PENDING,
        "",
        True,
        wave=0,
        sdist=FileRef(f"{name}-1.0.tar.gz", f"file:///x/{name}-1.0.tar.gz", "ab" * 32),
    )


def outcome(tmp_path: Path, text: str, status: NodeStatus = NodeStatus.FAILED) -> BuildOutcome:
    log = tmp_path / f"{abs(hash(text))}.log"
    log.write_text(text)
    return BuildOutcome(status, "rootfs", "img", "3.11", log, exit_code=1, reason="boom")


# --- matcher --------------------------------------------------------------------------
def test_ranking_scope_then_patterns_then_position() -> None:
    generic = hint("generic", "zlib\\.h", apt=("zlib1g-dev",))
    scoped = hint("scoped", "zlib\\.h", scope=Scope(packages=("demo",)), apt=("x",))
    two = hint("two", "zlib\\.h", "-lz", apt=("y",))
    late = hint("late", "later line", apt=("z",))
    lines = as_log_lines(["fatal error: zlib.h: No such file", "cannot find -lz", "later line"])
    ranked = [m.hint.id for m in scan([generic, late, two, scoped], lines, package="demo")]
    assert ranked == ["scoped", "two", "late", "generic"]
    # out of scope: another package never sees the package-scoped hint
    assert "scoped" not in [m.hint.id for m in scan([scoped], lines, package="other")]
    # unknown package (``hints match`` without --package): scope does not exclude
    assert [m.hint.id for m in scan([scoped], lines)] == ["scoped"]


def test_scope_python_and_backend() -> None:
    newer = hint("newer", "x", scope=Scope(python=">=3.12", backends=("container",)), apt=("p",))
    lines = as_log_lines(["x"])
    assert scan([newer], lines, python="3.11") == []
    assert scan([newer], lines, python="3.12", backend="rootfs") == []
    assert len(scan([newer], lines, python="3.12", backend="container")) == 1


def test_own_phase_and_command_lines_never_match() -> None:
    zlib = hint("zlib", "zlib1g-dev", apt=("zlib1g-dev",))
    lines = as_log_lines(["==> recipes: apt: zlib1g-dev", "$ sh -c apt-get install zlib1g-dev"])
    assert scan([zlib], lines) == []
    colored = as_log_lines(["\x1b[31mfatal error: zlib1g-dev\x1b[0m"])
    assert scan([zlib], colored)[0].lines[0].text == "fatal error: zlib1g-dev"


def test_read_log_is_bounded_and_keeps_line_numbers(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 100_001)))
    tail = read_log(log, max_bytes=1000, max_lines=50)
    assert len(tail) == 50
    assert tail[-1].number == 100_000 and tail[-1].text == "line 100000"
    assert tail[0].number == 99_951 and tail[0].text == "line 99951"
    by_bytes = read_log(log, max_bytes=24)
    assert by_bytes[-1].text == "line 100000" and by_bytes[-1].number == 100_000


# --- advisor --------------------------------------------------------------------------
def test_advisor_applies_new_fixes_cumulatively_and_drops_tried_ones(tmp_path: Path) -> None:
    catalog = Catalog(
        hints=(
            hint("zlib", "zlib\\.h", apt=("zlib1g-dev",), dnf=("zlib-devel",)),
            hint("ffi", "ffi\\.h", apt=("libffi-dev",)),
            hint("dnf-only", "zlib\\.h", dnf=("something",)),
            hint("same", "zlib\\.h", apt=("zlib1g-dev",)),
        )
    )
    advisor = Advisor(catalog, "apt", RetrySettings(max_attempts=4, backoff=2.0))
    n = node()
    first = advisor(n, outcome(tmp_path, "fatal error: zlib.h: No such file\n"), 1)
    assert first is not None
    assert first.hint_ids == ("zlib",) and first.system_packages == ("zlib1g-dev",)
    assert first.recipes == ("apt: zlib1g-dev",)
    assert first.matched_lines == ("fatal error: zlib.h: No such file",)
    assert first.delay == 2.0
    assert set(advisor.decisions[0].dropped) == {"dnf-only", "same"}
    # attempt 2 fails on zlib again and on ffi: zlib is not tried twice, ffi is added
    second = advisor(n, outcome(tmp_path, "zlib.h\nfatal error: ffi.h\n"), 2)
    assert second is not None
    assert second.hint_ids == ("zlib", "ffi")
    assert second.system_packages == ("zlib1g-dev", "libffi-dev")
    assert second.recipes == ("apt: zlib1g-dev libffi-dev",)
    assert second.delay == 4.0  # exponential
    # attempt 3: nothing new applies
    assert advisor(n, outcome(tmp_path, "zlib.h\nffi.h\n"), 3) is None


def test_advisor_respects_max_attempts_and_recipe_failures(tmp_path: Path) -> None:
    catalog = Catalog(hints=(hint("zlib", "zlib\\.h", apt=("zlib1g-dev",)),))
    advisor = Advisor(catalog, "apt", RetrySettings(max_attempts=2))
    assert advisor(node(), outcome(tmp_path, "zlib.h"), 2) is None
    failed_recipe = outcome(tmp_path, "zlib.h", NodeStatus.SYSTEM_RECIPE_FAILED)
    assert Advisor(catalog, "apt")(node("b"), failed_recipe, 1) is None
    assert Advisor(catalog, "apt")(node("c"), outcome(tmp_path, "all good"), 1) is None


def test_backoff_is_capped() -> None:
    settings = RetrySettings(backoff=10, backoff_max=25)
    assert [settings.delay(n) for n in (1, 2, 3)] == [10, 20, 25]
    assert RetrySettings().delay(3) == 0


def test_managers_per_backend() -> None:
    assert manager_for_backend("rootfs") == "apt"
    assert manager_for_backend("container") == "dnf"
    assert manager_for_backend("native", "yum") == "yum"


def test_first_fix_from_learned_package_entries() -> None:
    catalog = Catalog(
        hints=(hint("zlib", "zlib\\.h", apt=("zlib1g-dev",), dnf=("zlib-devel",)),),
        packages=(PackageEntry("demo", ("zlib",)), PackageEntry("other", ("zlib",), ">=3.13")),
    )
    fix = Advisor(catalog, "dnf").first_fix(node())
    assert fix is not None and fix.system_packages == ("zlib-devel",) and fix.hint_ids == ("zlib",)
    assert Advisor(catalog, "dnf").first_fix(node("other")) is None  # python scope
    assert Advisor(catalog, "dnf").first_fix(node("third")) is None


def test_first_fix_leaves_out_hints_scoped_to_another_backend() -> None:
    """h5py's entry names a cross-only hint (the pack's HDF5 version): an attempt that
    starts on the emulated root gets the distro's HDF5 and not that version."""
    catalog = Catalog(
        hints=(
            hint("hdf5", "H5public\\.h", apt=("libhdf5-dev",)),
            hint("cross-hdf5", "x", scope=Scope(backends=("cross",)), env={"HDF5_VERSION": "1"}),
        ),
        packages=(PackageEntry("demo", ("hdf5", "cross-hdf5")),),
    )
    cross = Advisor(catalog, "apt").first_fix(node(), "cross")
    assert cross is not None and cross.hint_ids == ("hdf5", "cross-hdf5")
    emulated = Advisor(catalog, "apt").first_fix(node(), "rootfs")
    assert emulated is not None and emulated.hint_ids == ("hdf5",) and not emulated.env


def test_forced_fixes_apply_before_the_first_attempt() -> None:
    from refinery.core.errors import InputError

    catalog = Catalog(
        hints=(
            hint("zlib", "zlib\\.h", apt=("zlib1g-dev",)),
            hint("libffi", "ffi\\.h", apt=("libffi-dev",)),
        ),
        packages=(PackageEntry("demo", ("zlib",)),),
    )
    advisor = Advisor(catalog, "apt", forced=("libffi",))
    fix = advisor.first_fix(node())
    assert fix is not None
    assert fix.hint_ids == ("zlib", "libffi")  # learned first
    assert fix.system_packages == ("zlib1g-dev", "libffi-dev")
    other = advisor.first_fix(node("other"))
    assert other is not None and other.hint_ids == ("libffi",)
    again = Advisor(catalog, "apt", forced=("zlib",)).first_fix(node())
    assert again is not None and again.hint_ids == ("zlib",)  # no repeats
    with pytest.raises(InputError, match=r"--fix nosuch: no such hint in the catalog"):
        Advisor(catalog, "apt", forced=("nosuch",))


# --- the runner with the advisor (fake build step) ------------------------------------
class StubRoot:
    backend = "rootfs"
    arch = "s390x"
    image = "stub@sha256:0"

    def prepare(self, on_line: Any = None) -> None:
        return None


def fake_build(fail_without: str, lines: Sequence[str]) -> Any:
    """A build step that fails with ``lines`` unless ``fail_without`` is installed."""
    calls: list[dict[str, Any]] = []

    def build_node(
        n: PlanNode, root: Any, *, options: BuildOptions, spec: AttemptSpec
    ) -> BuildOutcome:
        system_packages = spec.system_packages
        calls.append({"packages": tuple(system_packages), "env": dict(spec.env)})
        log = spec.log_file
        log.parent.mkdir(parents=True, exist_ok=True)
        ok = fail_without in system_packages
        log.write_text("==> build\n" + ("built\n" if ok else "\n".join(lines) + "\n"))
        status = NodeStatus.BUILT if ok else NodeStatus.FAILED
        return BuildOutcome(
            status,
            root.backend,
            root.image,
            n.python,
            log,
            exit_code=0 if ok else 1,
            reason="" if ok else "wheel build failed",
            matched_lines=() if ok else tuple(lines[-1:]),
        )

    build_node.calls = calls  # type: ignore[attr-defined]
    return build_node


def run_options(tmp_path: Path, catalog_digest: str = "") -> RunOptions:
    build = BuildOptions(cache=CacheRoot(tmp_path / "cache"))
    return RunOptions(build=build, workdir=tmp_path / "run", catalog_digest=catalog_digest)


def test_runner_records_both_attempts_hint_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_build(
        "zlib1g-dev", ["gcc -c x.c", "x.c:1:10: fatal error: zlib.h: No such file or directory"]
    )
    monkeypatch.setattr("refinery.builder.runner.build_node", fake)
    catalog = load_catalog(HINTS)
    n = node("zdemo")
    plan = Plan("p", (), (Target(),), (n,), ((n.key,),), {}, catalog_digest=catalog.digest)
    store = Store.open(str(tmp_path / "store"))
    advisor = Advisor(catalog, "apt")
    summary = build_plan(
        plan,
        store,
        StubRoot(),  # type: ignore[arg-type]
        run_options(tmp_path),
        advise=advisor,
        first_fix=advisor.first_fix,  # type: ignore[arg-type]
    )
    assert summary.results[0].status is NodeStatus.BUILT and summary.results[0].attempts == 2
    record = store.get_record("zdemo", "1.0", "3.11")
    assert record is not None
    one, two = record.attempts
    assert (one.status, one.hint_ids, one.recipes) == ("failed", (), ())
    assert one.matched_lines == ("x.c:1:10: fatal error: zlib.h: No such file or directory",)
    assert (two.status, two.hint_ids, two.recipes) == ("built", ("zlib",), ("apt: zlib1g-dev",))
    assert fake.calls[1]["packages"] == ("zlib1g-dev",)
    assert [e.kind for e in record.events] == [
        "leased",
        "building",
        "failed",
        "retry",
        "building",
        "built",
    ]


def test_a_failure_is_recorded_with_sdist_hash_and_catalog_digest_then_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_build("never", ["error: something nobody knows"])
    monkeypatch.setattr("refinery.builder.runner.build_node", fake)
    hints = tmp_path / "hints"
    hints.mkdir()
    (hints / "a.yaml").write_text("hints:\n  - id: z\n    match: [zzz]\n    fix: {apt: [z]}\n")
    catalog = load_catalog(hints)
    n = node("broken")
    plan = Plan("p", (), (Target(),), (n,), ((n.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    build_plan(
        plan,
        store,
        StubRoot(),  # type: ignore[arg-type]
        run_options(tmp_path, catalog_digest=catalog.digest),
        advise=Advisor(catalog, "apt"),  # type: ignore[arg-type]
    )
    record = store.get_record("broken", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.FAILED
    assert len(record.attempts) == 1  # no hint matched: no retry
    assert n.sdist is not None
    assert record.sdist_sha256 == n.sdist.sha256 and record.catalog_digest == catalog.digest
    # the planner: same sdist + same catalog -> skipped_known_failure ...
    base = PlanNode("broken", "1.0", "3.11", NodeStatus.MISSING, "", True)
    decided = Decider("", store, catalog.digest).conclude(base, Target(), None, n.sdist)
    assert decided.status is NodeStatus.SKIPPED_KNOWN_FAILURE
    # ... and a catalog change (a new hint) makes it eligible again
    (hints / "b.yaml").write_text("hints:\n  - id: y\n    match: [nobody]\n    fix: {apt: [y]}\n")
    changed = load_catalog(hints).digest
    assert changed != catalog.digest
    again = Decider("", store, changed).conclude(base, Target(), None, n.sdist)
    assert again.status is NodeStatus.PENDING


# --- fixes derived from the file index ------------------------------------------------
def snappy_deriver(lines: Sequence[str]) -> tuple[DerivedFix, ...]:
    """A file index that knows one header (the real derive code is in test_derive.py)."""
    out: list[DerivedFix] = []
    for line in lines:
        if "snappy-c.h" in line:
            out.append(
                DerivedFix(
                    "header",
                    "snappy-c.h",
                    line,
                    ("*/include/snappy-c.h",),
                    (("usr/include/snappy-c.h", "libsnappy-dev"),),
                    package="libsnappy-dev",
                )
            )
        if "ghost.h" in line:
            out.append(DerivedFix("header", "ghost.h", line, ("*/include/ghost.h",)))
    return tuple(out)


def test_the_catalog_first_then_the_file_index(tmp_path: Path) -> None:
    zlib = hint("zlib", "zlib\\.h", apt=("zlib1g-dev",))
    advisor = Advisor(
        Catalog((zlib,)), "apt", RetrySettings(max_attempts=3), deriver=snappy_deriver
    )
    both = "fatal error: zlib.h: No such file\nfatal error: snappy-c.h: No such file"
    first = advisor(node(), outcome(tmp_path, both), 1)
    assert first is not None and first.hint_ids == ("zlib",) and first.derived == ()
    second = advisor(node(), outcome(tmp_path, "fatal error: snappy-c.h: No such file"), 2)
    assert second is not None
    assert second.hint_ids == ("zlib", "derived:libsnappy-dev")
    assert second.system_packages == ("zlib1g-dev", "libsnappy-dev")
    assert second.recipes == ("apt: zlib1g-dev libsnappy-dev",)
    assert [d.package for d in second.derived] == ["libsnappy-dev"]
    assert second.matched_lines == ("fatal error: snappy-c.h: No such file",)
    decision = advisor.decisions[-1]
    assert decision.applied == ("derived:libsnappy-dev",)
    assert decision.derived == ("header snappy-c.h → libsnappy-dev (usr/include/snappy-c.h)",)


def test_nothing_derived_twice_and_unanswered_is_said(tmp_path: Path) -> None:
    advisor = Advisor(Catalog(), "apt", RetrySettings(max_attempts=5), deriver=snappy_deriver)
    log = "fatal error: snappy-c.h: No such file\nfatal error: ghost.h: No such file"
    assert advisor(node(), outcome(tmp_path, log), 1) is not None
    assert advisor(node(), outcome(tmp_path, log), 2) is None  # the same again: no retry
    assert "ghost.h → nothing in the file index" in advisor.decisions[-1].derived[1]


def test_no_deriver_or_no_index_means_no_derived_fix(tmp_path: Path) -> None:
    log = "fatal error: snappy-c.h: No such file"
    assert Advisor(Catalog(), "apt")(node(), outcome(tmp_path, log), 1) is None

    def offline(lines: Sequence[str]) -> tuple[DerivedFix, ...]:
        raise NetworkError("GET http://deb.debian.org/...: connection refused")

    advisor = Advisor(Catalog(), "apt", deriver=offline)
    assert advisor(node(), outcome(tmp_path, log), 1) is None
    assert advisor.decisions[-1].derived[0].startswith("file index unavailable: GET")


def test_a_package_entry_with_a_fix_of_its_own_applies_first() -> None:
    entry = PackageEntry("demo", (), fix=HintFix(apt=("libsnappy-dev",)))
    remedy = Advisor(Catalog((), (entry,)), "apt").first_fix(node())
    assert remedy is not None and remedy.hint_ids == ("learned:demo",)
    assert remedy.system_packages == ("libsnappy-dev",)


def test_the_catalog_speaks_gcc_and_clang() -> None:
    zlib = hint("zlib", "fatal error: zlib\\.h: No such file or directory", apt=("zlib1g-dev",))
    clang = as_log_lines(["src/_zcrc.c:3:10: fatal error: 'zlib.h' file not found"])
    (match,) = scan([zlib], clang)
    assert match.lines[0].text == "src/_zcrc.c:3:10: fatal error: 'zlib.h' file not found"
    other = as_log_lines(["src/x.c:3:10: fatal error: 'zlibx.h' file not found"])
    assert scan([zlib], other) == []
