"""The libsodium pack (pynacl) and the sqlite3 and proj packs: their recipes, the hint
and package entry that give pynacl its libsodium before the first attempt, and the
steps that install SQLite's library without its shell."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.packsteps import first_fix, step_values

from refinery.builder.packs import stand_ins
from refinery.builder.packs.recipes import PACK_PREFIX, PackRecipe, closure
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog

DEBIAN_POOL = "https://deb.debian.org/debian/pool/main/"


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def test_the_recipes_build_debians_upstream_tarballs(recipes: dict[str, PackRecipe]) -> None:
    for name in ("libsodium", "sqlite3"):
        recipe = recipes[name]
        assert recipe.source is not None, name
        assert recipe.source.url.startswith(DEBIAN_POOL), name
        assert f"_{recipe.version}.orig.tar." in recipe.source.url, name
        assert recipe.notes and recipe.description, name
    assert [r.name for r in closure(recipes, ["proj"])] == ["sqlite3", "proj"]
    # PROJ >= 9.4 is not on the mirror: the copy gdal-async vendors, named as such
    proj = recipes["proj"]
    assert proj.source is not None
    assert proj.source.url.startswith("https://registry.npmjs.org/gdal-async/-/")
    assert "gdal-async" in proj.notes and "gdal-async" in proj.description


def test_libsodium_has_aegis_and_is_configured_for_the_target(
    recipes: dict[str, PackRecipe],
) -> None:
    """PyNaCl 1.6 binds crypto_aead_aegis* (libsodium >= 1.0.19), and configure must be
    told the host: guessing it (the build machine, x86_64) makes libsodium little-endian,
    which PyNaCl's bundled build got wrong on s390x."""
    sodium = recipes["libsodium"]
    assert version(sodium.version) >= (1, 0, 19)
    (configure,) = [s for s in sodium.steps if s.startswith("./configure")]
    assert "--host={host}" in configure.split()
    assert "--enable-shared" in configure.split() and "--disable-static" in configure.split()
    assert not any("make check" in s for s in sodium.steps)  # target programs: no QEMU here


def test_the_packs_stand_in_for_debians_development_packages(
    recipes: dict[str, PackRecipe],
) -> None:
    assert stand_ins(recipes, ["libsodium-dev", "libsqlite3-dev", "libproj-dev", "tcl"]) == {
        "libsodium-dev": "libsodium",
        "libsqlite3-dev": "sqlite3",
        "libproj-dev": "proj",
    }


def test_pynacl_links_the_pack_from_the_first_attempt(catalog: Catalog) -> None:
    (entry,) = catalog.for_package("pynacl", "3.11")
    assert entry.hints == ("libsodium",)
    remedy = first_fix(catalog, "pynacl", "1.6.2")
    assert remedy is not None
    assert remedy.packs == ("libsodium",)
    assert dict(remedy.env) == {"SODIUM_INSTALL": "system"}  # not the bundled copy
    assert remedy.system_packages == ("libsodium-dev",)
    assert remedy.pack_packages == ("libsodium-dev",)  # the pack stands in for it


@pytest.mark.parametrize(
    ("line", "matches"),
    [
        ("_sodium.c:570:10: fatal error: 'sodium.h' file not found", True),
        ("_sodium.c:570:10: fatal error: sodium.h: No such file or directory", True),
        ("ld.lld: error: unable to find library -lsodium", True),  # zig's spelling
        ("/usr/bin/ld: cannot find -lsodium: No such file or directory", True),
        ("checking for sodium.h... yes", False),
        ("gcc -I/opt/refinery-packs/include -c _sodium.c -lsodium", False),
    ],
)
def test_the_libsodium_hint_matches_a_missing_libsodium_only(
    catalog: Catalog, line: str, matches: bool
) -> None:
    found = [m.hint.id for m in scan(catalog, as_log_lines([line]), package="pynacl")]
    assert ("libsodium" in found) is matches, found


PROJ_H = """\
#define PROJ_VERSION_MAJOR 9
#define PROJ_VERSION_MINOR {minor}
#define PROJ_VERSION_PATCH 1
#define PROJ_VERSION_NUMBER PROJ_COMPUTE_VERSION(PROJ_VERSION_MAJOR, PROJ_VERSION_MINOR, 1)
"""


def proj_tree(root: Path, minor: int = 5, db_version: str = "9.5.1") -> Path:
    """gdal-async's deps/libproj/proj, as far as the steps that do not compile read it."""
    proj = root / "deps/libproj/proj"
    for folder in ("src/iso19111", "src/apps", "include/proj", "data"):
        (proj / folder).mkdir(parents=True)
    (proj / "src/proj.h").write_text(PROJ_H.format(minor=minor))
    for name in ("proj_experimental.h", "proj_constants.h", "proj_symbol_rename.h", "geodesic.h"):
        (proj / "src" / name).write_text(name)
    for name in [f"src/f{i}.cpp" for i in range(150)] + ["src/geodesic.c", "src/apps/cct.cpp"]:
        (proj / name).write_text("")
    (proj / "include/proj/crs.hpp").write_text("crs")
    (proj / "data/world").write_text("world")
    sql = "CREATE TABLE metadata(key, value); INSERT INTO metadata VALUES ('PROJ.VERSION', ?);"
    sql = sql.replace("?", f"'{db_version}'")
    subprocess.run(["sqlite3", str(proj / "data/proj.db"), sql], check=True)
    return proj


def run_steps(recipe: PackRecipe, tree: Path, stage: Path) -> subprocess.CompletedProcess[str]:
    """The recipe's steps but the compiler's (no zig here): the library is a stand-in."""
    values = step_values(stage)
    for step in recipe.steps:
        if "$CC" in step or "$CXX" in step:
            (tree / "deps/libproj/proj/libproj.so.25.9.5.1").write_bytes(b"\x7fELF")
            continue
        argv = ["sh", "-c", step.format(**values)]
        done = subprocess.run(argv, cwd=tree, capture_output=True, text=True, check=False)
        if done.returncode:
            return done
    return done


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 program (scripts/setup)")
def test_proj_checks_its_release_and_installs_library_headers_data_and_pc(
    recipes: dict[str, PackRecipe], tmp_path: Path
) -> None:
    proj = recipes["proj"]
    tree, stage = tmp_path / "package", tmp_path / "stage"
    proj_tree(tree)
    assert run_steps(proj, tree, stage).returncode == 0
    prefix = stage / PACK_PREFIX
    installed = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if not p.is_dir())
    assert installed == [
        "include/geodesic.h",
        "include/proj.h",
        "include/proj/crs.hpp",
        "include/proj_constants.h",
        "include/proj_experimental.h",
        "include/proj_symbol_rename.h",
        "lib/libproj.so",
        "lib/libproj.so.25",
        "lib/libproj.so.25.9.5.1",
        "lib/pkgconfig/proj.pc",
        "share/proj/proj.db",
        "share/proj/world",
    ]
    assert (prefix / "lib/libproj.so").resolve().name == "libproj.so.25.9.5.1"
    pc = (prefix / "lib/pkgconfig/proj.pc").read_text()
    assert "Version: 9.5.1" in pc and f"prefix=/{PACK_PREFIX}\n" in pc and "${prefix}/lib" in pc
    config = (tree / "deps/libproj/proj/src/proj_config.h").read_text()
    assert '#define PACKAGE_VERSION "9.5.1"' in config
    sources = (tree / "deps/libproj/proj/sources").read_text().split()
    assert "src/geodesic.c" in sources and "src/apps/cct.cpp" not in sources  # no programs
    assert '-DPROJ_DATA="{prefix}/share/proj"' in proj.env["PROJ_CFLAGS"]


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 program (scripts/setup)")
@pytest.mark.parametrize(("minor", "db"), [(6, "9.5.1"), (5, "9.6.0")])
def test_proj_refuses_another_release_in_its_headers_or_database(
    recipes: dict[str, PackRecipe], tmp_path: Path, minor: int, db: str
) -> None:
    """A newer gdal-async vendors a newer PROJ: the recipe's version must be re-read."""
    proj_tree(tmp_path / "package", minor, db)
    assert run_steps(recipes["proj"], tmp_path / "package", tmp_path / "stage").returncode
    assert not (tmp_path / "stage").exists()


def test_sqlite3_installs_its_library_headers_and_pc_file_without_the_shell(
    recipes: dict[str, PackRecipe], tmp_path: Path
) -> None:
    sqlite = recipes["sqlite3"]
    (configure,) = [s for s in sqlite.steps if s.startswith("./configure")]
    assert "--host={host}" in configure and "BUILD_CC=gcc" in configure  # lemon & co.
    assert not any(re.search(r"make( -\S+)* install\b", s) for s in sqlite.steps)
    tree = tmp_path / "src"
    (tree / "src").mkdir(parents=True)
    for name in ("sqlite3.h", "src/sqlite3ext.h", "sqlite3.pc"):
        (tree / name).write_text(name + "\n")
    stage = tmp_path / "stage"
    values = step_values(stage)
    for step in sqlite.steps:
        if step.startswith(("install ", "find ")):
            subprocess.run(["sh", "-c", step.format(**values)], cwd=tree, check=True)
    prefix = stage / PACK_PREFIX
    installed = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    assert installed == ["include/sqlite3.h", "include/sqlite3ext.h", "lib/pkgconfig/sqlite3.pc"]
