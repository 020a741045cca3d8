"""Strict catalog loading: every problem names file:line (and the closest valid key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from refinery.cli import main
from refinery.hints import catalog_digest, load_catalog
from refinery.hints.loader import CatalogError

GOOD = """\
# a comment
hints:
  - id: zlib
    match: ['fatal error: zlib\\.h']
    scope:
      packages: [Some_Pkg]
      python: '>=3.11'
      backends: [rootfs]
    fix:
      apt: [zlib1g-dev]
      dnf: [zlib-devel]
      env: {CFLAGS: '-O2'}
      constraints: ['cython<3']
    note: zlib
    evidence:
      - build: some-pkg==1.0@3.11
        attempt: 2
packages:
  - package: Other.Pkg
    hints: [zlib]
"""


def problems(tmp_path: Path, text: str, name: str = "x.yaml") -> list[str]:
    (tmp_path / name).write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    return [str(p) for p in info.value.problems]


def test_a_good_file_loads_into_typed_models(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    catalog = load_catalog(tmp_path)
    (hint,) = catalog.hints
    assert hint.id == "zlib" and hint.patterns[0].pattern == "fatal error: zlib\\.h"
    assert hint.scope.packages == ("some-pkg",) and hint.scope.python == ">=3.11"
    assert hint.fix.env == {"CFLAGS": "-O2"} and hint.fix.constraints == ("cython<3",)
    assert hint.evidence[0].attempt == 2
    assert str(hint.location) == f"{tmp_path / 'a.yaml'}:3"
    (entry,) = catalog.packages
    assert entry.package == "other-pkg" and entry.hints == ("zlib",)
    assert catalog.for_package("Other_Pkg") == (entry,)
    assert catalog.digest == catalog_digest(tmp_path)


def test_unknown_key_names_file_line_and_closest_key(tmp_path: Path) -> None:
    text = GOOD.replace("    note: zlib", "    noet: zlib").replace("      dnf:", "      dfn:")
    found = problems(tmp_path, text)
    path = tmp_path / "x.yaml"
    assert f"{path}:11: unknown key 'dfn' in fix of hint 'zlib'; did you mean 'dnf'?" in found
    assert f"{path}:14: unknown key 'noet' in hint; did you mean 'note'?" in found


def test_invalid_regex_and_empty_matching_regex(tmp_path: Path) -> None:
    text = (
        "hints:\n  - id: a\n    match:\n      - 'ok'\n      - 'bad(['\n      - '.*'\n"
        "    fix: {apt: [x]}\n"
    )
    found = problems(tmp_path, text)
    assert any(
        p.startswith(f"{tmp_path / 'x.yaml'}:5: hint 'a': invalid regex 'bad(['") for p in found
    )
    assert any(":6: hint 'a': regex '.*' matches an empty line" in p for p in found)


def test_empty_fix_and_missing_keys(tmp_path: Path) -> None:
    text = "hints:\n  - id: a\n    match: [x]\n    fix: {}\n  - match: [y]\n    fix: {apt: [z]}\n"
    found = problems(tmp_path, text)
    assert any(":4: hint 'a': the fix is empty" in p for p in found)
    assert any(":5: hint needs 'id'" in p for p in found)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("hints:\n  - id: dup\n    match: [x]\n    fix: {apt: [p]}\n")
    found = problems(tmp_path, "hints:\n\n  - id: dup\n    match: [y]\n    fix: {dnf: [q]}\n")
    assert found == [
        f"{tmp_path / 'x.yaml'}:3: duplicate hint id 'dup' (first at {tmp_path / 'a.yaml'}:2)"
    ]


def test_types_specifiers_backends_and_unknown_hint_references(tmp_path: Path) -> None:
    text = """\
hints:
  - id: a
    match: [x]
    scope: {python: 'three', backends: [rootsf]}
    fix: {apt: [p], env: {N: 1}}
packages:
  - package: b
    hints: [aa]
"""
    found = problems(tmp_path, text)
    assert any(":4: hint 'a'.scope.python 'three' is not a version specifier" in p for p in found)
    assert any(":4: hint 'a': unknown backend 'rootsf'" in p and "'rootfs'" in p for p in found)
    assert any(":5: hint 'a': env N must be a string (quote it)" in p for p in found)
    assert any(":7: package entry 'b': unknown hint 'aa'; did you mean 'a'?" in p for p in found)


def test_yaml_syntax_error_and_top_level_keys(tmp_path: Path) -> None:
    found = problems(tmp_path, "hints:\n  - id: a\n    match: [x\n")
    assert found[0].startswith(f"{tmp_path / 'x.yaml'}:") and "invalid YAML" in found[0]
    (tmp_path / "x.yaml").unlink()
    found = problems(tmp_path, "hint:\n  - id: a\n")
    assert found == [f"{tmp_path / 'x.yaml'}:1: unknown key 'hint' in file; did you mean 'hints'?"]


def test_cli_check_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("hints:\n  - id: a\n    match: ['(']\n    fixx: {apt: [p]}\n")
    result = CliRunner().invoke(main, ["hints", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert "x.yaml:3: hint 'a': invalid regex '('" in result.output
    assert "x.yaml:4: unknown key 'fixx' in hint; did you mean 'fix'?" in result.output
    assert "problem(s)" in result.output


def test_missing_directory_is_an_empty_catalog(tmp_path: Path) -> None:
    catalog = load_catalog(tmp_path / "none")
    assert catalog.hints == () and catalog.digest == catalog_digest(tmp_path / "none")
