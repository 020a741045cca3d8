"""Learning: evidence from records, round-trip writes that change only the added entry."""

from __future__ import annotations

import difflib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from refinery.cli import main
from refinery.core.models import Attempt, BuildRecord, DerivedFix, NodeStatus, PlanNode
from refinery.hints import load_catalog
from refinery.hints.advise import Advisor
from refinery.hints.learn import add_entries, evidence_of, learned_from_records
from refinery.hints.models import Catalog, HintFix
from refinery.store import Store

HINTS = Path(__file__).resolve().parents[2] / "hints"

COMMENTED = """\
# Team catalog — keep entries sorted.   (a comment that must survive)
hints:
  # zlib first
  - id: zlib
    match:
      - 'fatal error: zlib\\.h: No such file or directory'   # gcc
      - "cannot find -lz"
    fix: {apt: [zlib1g-dev], dnf: [zlib-devel]}
    note: >-
      folded note
      on two lines

  - id: ffi   # inline comment
    match: ['ffi\\.h']
    fix:
      apt:
        - libffi-dev
      dnf: [libffi-devel]

packages:
  - package: already-known
    hints: [ffi]
    # trailing comment in the last entry
"""


def record(
    name: str,
    *,
    first_hints: tuple[str, ...] = (),
    fixed: tuple[str, ...] = ("zlib",),
    final: str = "built",
) -> BuildRecord:
    attempts = (
        Attempt(
            1,
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:01:00Z",
            backend="rootfs",
            image="img",
            hint_ids=first_hints,
            status="failed",
            log=f"logs/{name}/1.0/3.11/1.log",
        ),
        Attempt(
            2,
            "2025-01-01T00:01:00Z",
            "2025-01-01T00:02:00Z",
            backend="rootfs",
            image="img",
            hint_ids=(*first_hints, *fixed),
            status=final,
        ),
    )
    status = NodeStatus.BUILT if final == "built" else NodeStatus.FAILED
    return BuildRecord(name, "1.0", "3.11", status, attempts=attempts)


def test_evidence_only_from_retries_a_hint_fixed() -> None:
    got = evidence_of(record("a"))
    assert got is not None
    ids, proof = got
    assert ids == ("zlib",)
    assert (proof.build, proof.attempt, proof.log) == ("a==1.0@3.11", 2, "logs/a/1.0/3.11/1.log")
    assert evidence_of(record("b", final="failed")) is None
    assert evidence_of(record("c", fixed=())) is None
    # hints applied before the first attempt (learned earlier) are no new evidence
    assert evidence_of(record("d", first_hints=("zlib",), fixed=())) is None


def test_learned_entries_skip_what_the_catalog_knows(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(COMMENTED)
    catalog = load_catalog(tmp_path)
    learned = learned_from_records(
        [
            record("b"),
            record("already-known", fixed=("ffi",)),
            record("a"),
            record("a", fixed=("ffi",)),
            record("x", fixed=("unknown-hint",)),
        ],
        catalog,
    )
    assert [(item.package, item.hints, len(item.evidence)) for item in learned] == [
        ("a", ("zlib", "ffi"), 2),
        ("b", ("zlib",), 1),
    ]


def test_round_trip_changes_only_the_added_entry(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text(COMMENTED)
    catalog = load_catalog(tmp_path)
    learned = learned_from_records([record("zlib-user")], catalog)
    new = add_entries(COMMENTED, learned)
    diff = list(difflib.unified_diff(COMMENTED.splitlines(), new.splitlines(), lineterm="", n=0))
    removed = [line for line in diff[2:] if line.startswith("-")]
    added = [line[1:] for line in diff[2:] if line.startswith("+")]
    assert removed == []
    assert added == [
        "  - package: zlib-user",
        "    hints: [zlib]",
        "    note: 'learned from zlib-user==1.0@3.11: zlib fixed the build'",
        "    evidence:",
        "      - build: zlib-user==1.0@3.11",
        "        backend: rootfs",
        "        image: img",
        "        attempt: 2",
        "        at: '2025-01-01T00:02:00Z'",
        "        log: logs/zlib-user/1.0/3.11/1.log",
    ]
    # the comment that ended the file still ends it (ruamel keeps it at the document end)
    assert new.endswith("    # trailing comment in the last entry\n")
    (tmp_path / "team.yaml").write_text(new)
    reloaded = load_catalog(tmp_path)
    assert [p.package for p in reloaded.packages] == ["already-known", "zlib-user"]


def test_round_trip_on_the_real_catalog_and_a_new_file(tmp_path: Path) -> None:
    for path in sorted(HINTS.glob("*.yaml")):
        old = path.read_text()
        new = add_entries(old, learned_from_records([record("p")], load_catalog(HINTS)))
        assert new.startswith(old), path.name  # nothing of the file changed, only appended
    fresh = add_entries("", learned_from_records([record("p")], load_catalog(HINTS)))
    assert fresh.startswith("# Learned per-package entries")
    assert "packages:\n  - package: p\n    hints: [zlib]\n" in fresh


def test_cli_learn_writes_the_entry_and_the_next_build_applies_it(tmp_path: Path) -> None:
    hints = tmp_path / "hints"
    shutil.copytree(HINTS, hints)
    store = Store.open(str(tmp_path / "store"))
    fixed = record("zlib-user")
    store.update_record("zlib-user", "1.0", "3.11", lambda _r: fixed)
    store.update_record("other", "1.0", "3.11", lambda _r: record("other", fixed=()))
    runner = CliRunner()
    args = ["--store", str(tmp_path / "store"), "hints", "learn", "--hints", str(hints)]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "+  - package: zlib-user" in dry.output and not (hints / "learned.yaml").exists()
    result = runner.invoke(main, [*args, "--no-propose"])
    assert result.exit_code == 0, result.output
    catalog = load_catalog(hints)
    shipped = [(p.package, p.hints) for p in load_catalog(HINTS).packages]
    learned = [(p.package, p.hints) for p in catalog.packages]
    assert sorted(learned) == sorted([*shipped, ("zlib-user", ("zlib",))])
    # learning again finds nothing new
    again = runner.invoke(main, [*args, "--no-propose"])
    assert again.exit_code == 0 and "nothing to learn" in again.output
    only = runner.invoke(main, [*args, "--node", "nope==1.0@3.11"])
    assert only.exit_code == 2


def test_cli_learn_proposes_a_pull_request_on_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposed: list[dict[str, object]] = []

    class FakeGitHub:
        def __init__(self, repo: str, token: str | None, **kwargs: object) -> None:
            assert (repo, token) == ("org/farm", "t0ken")

        def __enter__(self) -> FakeGitHub:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def propose_file(self, path: str, content: str, **kwargs: object) -> str:
            proposed.append({"path": path, "content": content, **kwargs})
            return "https://github.com/org/farm/pull/7"

    monkeypatch.setattr("refinery.gitops.github.GitHub", FakeGitHub)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/farm")
    hints = tmp_path / "hints"
    shutil.copytree(HINTS, hints)
    store = Store.open(str(tmp_path / "store"))
    store.update_record("zlib-user", "1.0", "3.11", lambda _r: record("zlib-user"))
    result = CliRunner().invoke(
        main, ["--store", str(tmp_path / "store"), "hints", "learn", "--hints", str(hints)]
    )
    assert result.exit_code == 0, result.output
    (pr,) = proposed
    assert str(pr["path"]).endswith("learned.yaml")
    assert "package: zlib-user" in str(pr["content"])
    assert str(pr["branch"]).startswith("refinery/learned-hints-")
    assert "```diff" in str(pr["body"])
    assert "proposed as https://github.com/org/farm/pull/7" in result.output


def test_a_derived_fix_that_worked_is_learned_as_a_fix_of_its_own(tmp_path: Path) -> None:
    derived = DerivedFix(
        "header",
        "snappy-c.h",
        "fatal error: snappy-c.h: No such file or directory",
        ("*/include/snappy-c.h",),
        (("usr/include/snappy-c.h", "libsnappy-dev"),),
        package="libsnappy-dev",
    )
    built = record("snappyish", fixed=("derived:libsnappy-dev",))
    last = replace(built.attempts[-1], derived=(derived,))
    built = replace(built, attempts=(built.attempts[0], last))
    assert BuildRecord.from_json(built.to_json()) == built  # the record keeps it

    (learned,) = learned_from_records([built], Catalog())
    assert learned.hints == () and learned.fix == HintFix(apt=("libsnappy-dev",))
    assert "apt: libsnappy-dev fixed the build" in learned.note
    text = add_entries("", [learned])
    assert "    fix:\n      apt: [libsnappy-dev]\n" in text and "hints:" not in text
    (tmp_path / "learned.yaml").write_text(text)
    remedy = Advisor(load_catalog(tmp_path), "apt").first_fix(
        PlanNode("snappyish", "1.0", "3.11", NodeStatus.PENDING, "", True)
    )
    assert remedy is not None and remedy.system_packages == ("libsnappy-dev",)
