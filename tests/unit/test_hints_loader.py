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


PATCH = """\
Why: a header line patch(1) skips.

--- a/pkg/setup.py
+++ b/pkg/setup.py
@@ -1 +1 @@
-old
+new
"""

PATCHED = """\
hints:
  - id: crate-pin
    match: ['asn1 = "\\\\^0\\\\.16']
    scope: {packages: [Crypto_Graphy], versions: '>=43,<44'}
    fix: {patches: [fix-asn1.patch]}
packages:
  - package: other
    versions: '>=2'
    fix: {env: {X: '1'}}
"""


def test_patches_and_version_scopes_load(tmp_path: Path) -> None:
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "fix-asn1.patch").write_text(PATCH)
    (tmp_path / "a.yaml").write_text(PATCHED)
    catalog = load_catalog(tmp_path)
    (hint,) = catalog.hints
    (patch,) = hint.fix.patches
    assert patch.name == "fix-asn1.patch" and patch.text == PATCH
    assert hint.scope.versions == ">=43,<44" and hint.scope.packages == ("crypto-graphy",)
    assert hint.scope.applies("cryptography", version="43.0.3") is False  # other name
    assert hint.scope.applies("crypto-graphy", version="43.0.3")
    assert not hint.scope.applies("crypto-graphy", version="50.0.2")
    assert hint.scope.applies("crypto-graphy")  # an unknown version excludes nothing
    (entry,) = catalog.packages
    assert catalog.for_package("other", version="2.1") == (entry,)
    assert catalog.for_package("other", version="1.9") == ()
    # the patch is part of the catalog's digest: editing it re-enables builds
    before = catalog_digest(tmp_path)
    (tmp_path / "patches" / "fix-asn1.patch").write_text(PATCH.replace("+new", "+newer"))
    assert catalog_digest(tmp_path) != before


@pytest.mark.parametrize(
    ("fix", "present", "expected"),
    [
        ("{patches: [gone.patch]}", False, "patch 'gone.patch': cannot read"),
        ("{patches: [fix-asn1.patch]}", True, "not a unified diff"),
        ("{patches: ['../x.patch']}", False, "is not a patch file name"),
    ],
)
def test_a_patch_must_exist_and_be_a_unified_diff(
    tmp_path: Path, fix: str, present: bool, expected: str
) -> None:
    if present:
        (tmp_path / "patches").mkdir()
        (tmp_path / "patches" / "fix-asn1.patch").write_text("just words\n")
    text = f"hints:\n  - id: p\n    match: ['x']\n    fix: {fix}\n"
    (found,) = problems(tmp_path, text)
    assert found.startswith(f"{tmp_path / 'x.yaml'}:4: hint 'p': ") and expected in found


def test_a_version_scope_needs_packages_and_a_specifier(tmp_path: Path) -> None:
    text = (
        "hints:\n  - id: v\n    match: ['x']\n    scope:\n      versions: '>=1'\n"
        "    fix: {env: {A: '1'}}\n  - id: w\n    match: ['y']\n"
        "    scope: {packages: [p], versions: 'one'}\n    fix: {env: {A: '1'}}\n"
    )
    found = problems(tmp_path, text)
    assert any(":5: hint 'v': scope.versions needs scope.packages" in p for p in found), found
    assert any("hint 'w'.scope.versions 'one' is not a version specifier" in p for p in found)


def test_a_package_entry_may_name_modules_the_smoke_test_imports(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "packages:\n  - package: cryptography\n"
        "    imports: [cryptography.hazmat.bindings._rust]\n"
        "  - package: cryptography\n    python: '>=3.12'\n    imports: [cryptography.x509]\n"
    )
    catalog = load_catalog(tmp_path)
    assert catalog.imports("Cryptography", "3.11") == ("cryptography.hazmat.bindings._rust",)
    assert catalog.imports("cryptography", "3.12") == (
        "cryptography.hazmat.bindings._rust",
        "cryptography.x509",
    )
    assert catalog.imports("other", "3.11") == ()
    (found,) = problems(tmp_path, "packages:\n  - package: p\n    imports: ['a..b']\n")
    assert found.endswith(":3: package entry 'p': 'a..b' is not a module name (a.b.c)")
