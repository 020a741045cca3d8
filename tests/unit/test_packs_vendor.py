"""A fix that vendors a pack into the sdist (``fix.vendor``): pyproj 3.7 bundles PROJ
from ``pyproj/proj_dir`` the way PyPI's wheels do, so the catalog builds the proj pack
(PROJ 9.5.1) and copies it there."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.packsteps import first_fix

from refinery.builder.packs import PACK_PREFIX, Pack, PackFailed, PackRecipe, vendor_into
from refinery.hints import load_catalog
from refinery.hints.loader import CatalogError
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog, Hint, HintFix, Remedy, fix_lines

CATALOG = """\
hints:
  - id: proj
    match: ['proj executable not found']
    fix:
      packs: [proj]
      vendor: {proj: pyproj/proj_dir}
      env: {PROJ_WHEEL: "1"}
"""
#: pyproj 3.7.2's setup.py, attempt 1 of campaign run 5 (cross, zig), log line 65.
NOT_FOUND = (
    "proj executable not found. Please set the PROJ_DIR variable. For more information "
    "see: https://pyproj4.github.io/pyproj/stable/installation.html"
)


def test_vendor_loads_and_shows_in_the_fix_lines(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text(CATALOG)
    hint = load_catalog(tmp_path).get("proj")
    assert hint is not None and dict(hint.fix.vendor) == {"proj": "pyproj/proj_dir"}
    assert "vendor: pack proj into pyproj/proj_dir/" in fix_lines(hint.fix)
    remedy = Remedy.from_hints((hint,), "apt")
    assert dict(remedy.vendor) == {"proj": "pyproj/proj_dir"}
    assert "vendor: pack proj into pyproj/proj_dir/" in remedy.recipes
    assert not remedy.adds_to(hint, "apt")
    elsewhere = Hint("x", (), HintFix(packs=("proj",), vendor={"proj": "src/proj"}))
    assert remedy.adds_to(elsewhere, "apt")


@pytest.mark.parametrize(
    ("vendor", "problem"),
    [
        ("{geos: pyproj/proj_dir}", "vendor names pack 'geos', which fix.packs lacks"),
        ("{proj: /opt/proj}", "vendor folder '/opt/proj' must be a relative path in the sdist"),
        ("{proj: ../proj}", "vendor folder '../proj' must be a relative path in the sdist"),
        ("[proj]", "fix.vendor must be a mapping, not a list"),
    ],
)
def test_a_bad_vendor_is_a_catalog_error_naming_the_line(
    tmp_path: Path, vendor: str, problem: str
) -> None:
    (tmp_path / "h.yaml").write_text(CATALOG.replace("{proj: pyproj/proj_dir}", vendor))
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    text = [str(p) for p in info.value.problems]
    assert any("h.yaml:6: hint 'proj'" in p and problem in p for p in text), text


def made_pack(tmp_path: Path, name: str = "proj") -> Pack:
    recipe = PackRecipe(name, "9.5.1", "source", text="")
    pack = Pack(recipe, "c" * 64, tmp_path / "packs" / name)
    lib = pack.prefix / "lib"
    lib.mkdir(parents=True)
    (lib / "libproj.so.25.9.5.1").write_bytes(b"\x7fELF")
    (lib / "libproj.so.25").symlink_to("libproj.so.25.9.5.1")
    (pack.prefix / "share/proj").mkdir(parents=True)
    (pack.prefix / "share/proj/proj.db").write_bytes(b"SQLite format 3\x00")
    return pack


def test_vendor_into_copies_the_packs_prefix_into_the_sdist(tmp_path: Path) -> None:
    pack = made_pack(tmp_path)
    project = tmp_path / "pyproj-3.7.2"
    (project / "pyproj").mkdir(parents=True)
    lines = vendor_into(project, [pack], {"proj": "pyproj/proj_dir"})
    assert lines == ["pack proj 9.5.1 copied into pyproj/proj_dir/ (3 files)"]
    into = project / "pyproj/proj_dir"
    assert (into / "share/proj/proj.db").read_bytes().startswith(b"SQLite")
    assert (into / "lib/libproj.so.25").is_symlink()  # links kept, not doubled
    assert str(pack.prefix).endswith(PACK_PREFIX)
    with pytest.raises(PackFailed, match="pyproj/proj_dir/ exists in the sdist"):
        vendor_into(project, [pack], {"proj": "pyproj/proj_dir"})
    with pytest.raises(PackFailed, match="pack geos was not made"):
        vendor_into(project, [pack], {"geos": "geos"})


def test_pyproj_37_gets_the_proj_pack_in_its_proj_dir_on_the_cross_backend(
    catalog: Catalog, recipes: dict[str, PackRecipe]
) -> None:
    cross = first_fix(catalog, "pyproj", "3.7.2", "cross")
    assert cross is not None and cross.hint_ids == ("pyproj-proj",)
    assert cross.packs == ("proj",) and dict(cross.vendor) == {"proj": "pyproj/proj_dir"}
    # setup.py cannot run the target's `proj` to ask: the version is the pack's
    assert dict(cross.env) == {"PROJ_WHEEL": "1", "PROJ_VERSION": recipes["proj"].version}
    assert tuple(int(p) for p in recipes["proj"].version.split(".")) >= (9, 4, 0)
    assert first_fix(catalog, "pyproj", "3.7.2", "rootfs") is None  # no pack there
    assert first_fix(catalog, "pyproj", "3.6.1", "cross") is None  # 9.1 did
    found = [m.hint.id for m in scan(catalog, as_log_lines([NOT_FOUND]), package="pyproj")]
    assert found == ["pyproj-proj"]
