"""The libsodium pack (pynacl) and the sqlite3 and proj packs: their recipes, the hint
and package entry that give pynacl its libsodium before the first attempt, and the
steps that install SQLite's library without its shell."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from fixtures.packsteps import cmake_options, first_fix

from refinery.builder.packs import stand_ins
from refinery.builder.packs.recipes import PACK_PREFIX, PackRecipe, closure
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog

DEBIAN_POOL = "https://deb.debian.org/debian/pool/main/"


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def test_the_recipes_build_debians_upstream_tarballs(recipes: dict[str, PackRecipe]) -> None:
    for name in ("libsodium", "sqlite3", "proj"):
        recipe = recipes[name]
        assert recipe.source is not None, name
        assert recipe.source.url.startswith(DEBIAN_POOL), name
        assert f"_{recipe.version}.orig.tar." in recipe.source.url, name
        assert recipe.notes and recipe.description, name
    assert [r.name for r in closure(recipes, ["proj"])] == ["sqlite3", "proj"]


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


def test_proj_makes_proj_db_with_the_build_machines_sqlite3_program(
    recipes: dict[str, PackRecipe],
) -> None:
    options = cmake_options(recipes["proj"])
    assert options["EXE_SQLITE3"] == "/usr/bin/sqlite3"  # runs on the build machine
    # the library links the sqlite3 pack, never the build machine's libsqlite3
    assert options["SQLITE3_INCLUDE_DIR"] == "{deps}/include"
    assert options["SQLITE3_LIBRARY"] == "{deps}/lib/libsqlite3.so"
    off = ("BUILD_TESTING", "BUILD_APPS", "ENABLE_TIFF", "ENABLE_CURL")
    assert {k: options[k] for k in off} == dict.fromkeys(off, "OFF")
    assert options["BUILD_SHARED_LIBS"] == "ON" and options["CMAKE_INSTALL_LIBDIR"] == "lib"
    assert recipes["proj"].steps[-1] == "test -s {destdir}{prefix}/share/proj/proj.db"


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
    values = {
        "prefix": f"/{PACK_PREFIX}",
        "destdir": str(stage),
        "deps": "",
        "host": "",
        "jobs": "1",
    }
    for step in sqlite.steps:
        if step.startswith(("install ", "find ")):
            subprocess.run(["sh", "-c", step.format(**values)], cwd=tree, check=True)
    prefix = stage / PACK_PREFIX
    installed = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
    assert installed == ["include/sqlite3.h", "include/sqlite3ext.h", "lib/pkgconfig/sqlite3.pc"]
