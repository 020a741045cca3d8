"""bench/coverage.py's pure parts: the corpus file, a row from a record, the rates and
the tables. bench/ is not a package: the script is loaded from its path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from refinery.core.models import Attempt, BuildRecord, NodeStatus, WheelRef

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "coverage.py"
WHEEL = "ujson-6.1.0-cp311-cp311-manylinux2014_s390x.manylinux_2_17_s390x.whl"


@pytest.fixture(scope="module")
def cov() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_coverage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def record(*attempts: Attempt, status: NodeStatus, wheel: str = "", reason: str = "") -> Any:
    return BuildRecord(
        name="ujson",
        version="6.1.0",
        python="3.11",
        status=status,
        attempts=attempts,
        wheel=WheelRef(wheel, "0" * 64) if wheel else None,
        reason=reason,
    ).to_json()


def test_parse_corpus_skips_comments_and_normalizes(cov: ModuleType) -> None:
    text = "# header\n\nRuamel.Yaml.Clib==0.2.15  # dep\nujson==6.1.0\n"
    assert cov.parse_corpus(text) == [("ruamel-yaml-clib", "0.2.15"), ("ujson", "6.1.0")]
    with pytest.raises(ValueError, match="not a pin"):
        cov.parse_corpus("ujson>=6\n")


def test_row_of_a_retry_that_built_shows_the_fixes_of_the_attempt_that_built(
    cov: ModuleType,
) -> None:
    first = Attempt(1, "t0", duration=12.0, backend="cross", status="failed", reason="no yaml.h")
    second = Attempt(2, "t1", duration=30.5, backend="cross", hint_ids=("libyaml",), status="built")
    data = record(first, second, status=NodeStatus.BUILT, wheel=WHEEL)
    # derived fixes are read generically: a field the record will grow
    data["attempts"][1]["derived"] = [{"summary": "header yaml.h → libyaml-dev", "package": "x"}]
    row = cov.row_from_record(data, "ujson", "6.1.0", "pending")
    assert (row.outcome, row.attempts, row.first_try, row.built) == ("built", 2, False, True)
    assert row.fixes == ("libyaml",)
    assert row.derived == ("header yaml.h → libyaml-dev",)
    assert row.seconds == pytest.approx(42.5)
    assert cov.wheel_tag(row.wheel) == "manylinux2014_s390x.manylinux_2_17_s390x"


def test_row_of_a_failure_keeps_the_reason_and_no_wheel(cov: ModuleType) -> None:
    only = Attempt(1, "t0", duration=5.0, backend="rootfs", status="failed", reason="boom")
    row = cov.row_from_record(
        record(only, status=NodeStatus.FAILED, reason="fatal: lber.h"), "ujson", "6.1.0", "x"
    )
    assert (row.outcome, row.built, row.counted, row.wheel) == ("failed", False, True, "")
    assert row.reason == "fatal: lber.h"
    assert row.backend == "rootfs"


def test_rates_count_finished_builds_only(cov: ModuleType) -> None:
    built = Attempt(1, "t", duration=1.0, status="built")
    failed = Attempt(1, "t", duration=1.0, status="failed")
    retried = (failed, Attempt(2, "t", duration=1.0, status="built"))
    rows = [
        cov.row_from_record(record(built, status=NodeStatus.BUILT, wheel=WHEEL), "a", "1", ""),
        cov.row_from_record(record(*retried, status=NodeStatus.BUILT, wheel=WHEEL), "b", "1", ""),
        cov.row_from_record(record(failed, status=NodeStatus.FAILED), "c", "1", ""),
        cov.row_from_record(record(failed, status=NodeStatus.FAILED), "d", "1", ""),
        # interrupted mid-build, and never built: not measured
        cov.row_from_record(record(built, status=NodeStatus.BUILDING), "e", "1", ""),
        cov.row_from_record(None, "f", "1", "reused"),
    ]
    summary = cov.rates(rows)
    assert (summary.measured, summary.first_try, summary.final, summary.corpus) == (4, 1, 2, 6)
    lines = summary.lines()
    assert "first-try success: 1/4 (25.0 %)" in lines
    assert "final success: 2/4 (50.0 %)" in lines
    assert cov.rates([]).lines()[1] == "first-try success: 0/0 (-)"


def test_markdown_table_has_a_row_per_package_and_the_rates(cov: ModuleType) -> None:
    failed = Attempt(1, "t", duration=3.0, status="failed")
    rows = [
        cov.row_from_record(
            record(failed, status=NodeStatus.FAILED, reason="a | b\nsecond line"), "c", "1", ""
        ),
        cov.row_from_record(None, "f", "2", "reused"),
    ]
    text = cov.render_markdown(rows, cov.rates(rows), "Coverage")
    lines = text.splitlines()
    assert lines[0] == "## Coverage"
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(rows)
    assert "| c==1 | failed | 1 | - | - | 3 | a \\| b |" in table
    assert "- final success: 0/1 (0.0 %)" in lines
    assert "c==1" in cov.render_text(rows, cov.rates(rows))


def test_select_names_from_the_corpus(cov: ModuleType) -> None:
    corpus = [("markupsafe", "2.1.5"), ("ujson", "6.1.0")]
    assert cov.select(corpus, ["UJSON", ""]) == [("ujson", "6.1.0")]
    assert cov.select(corpus, [""]) == corpus
    with pytest.raises(SystemExit, match="not in the corpus: nope"):
        cov.select(corpus, ["nope"])


def test_a_derived_fix_is_listed_once(cov: ModuleType) -> None:
    """Its hint id (``derived:<package>``) names it already; the record's derived
    field of the same fix adds nothing to the table."""
    row = cov.Row(
        "tables",
        "3.10.1",
        "failed",
        attempts=3,
        fixes=("hdf5", "derived:libbz2-dev"),
        derived=("libbz2-dev", "header lzo/lzo1x.h → liblzo2-dev"),
    )
    fixes = cov._cells(row)[4]
    assert fixes == "hdf5, derived:libbz2-dev, derived: header lzo/lzo1x.h → liblzo2-dev"
