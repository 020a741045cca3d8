"""Bad input, one table (issue 14): every case of tests/fixtures/bad_inputs/cases.toml
exits 2 with one line naming FILE:LINE (or the argument at fault) and stores nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fixtures.bad_inputs import HERE, Case, cases, run_case

CASES = cases()


def test_the_corpus_is_large_and_covers_every_kind() -> None:
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert kinds == {"requirements", "wheel", "hints", "config", "pack", "plan", "store", "cli"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_stored(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    shutil.copytree(HERE, work, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.chdir(work)
    outcome = run_case(case, work, tmp_path / "store")
    assert outcome.exit_code == 2, outcome
    assert outcome.stored == []
    assert outcome.lines, "no error printed"
    first = outcome.lines[0].removeprefix("refinery: error: ")
    if case.kind == "cli":  # click names the argument at fault, after its usage lines
        assert case.expect in outcome.lines[-1], outcome.lines
        return
    assert first.startswith(case.where), outcome.lines
    assert case.expect in first, outcome.lines
    if case.kind != "hints":  # a catalog check adds a count of its problems
        assert len(outcome.lines) == 1, outcome.lines
