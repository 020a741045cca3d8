"""The freetds pack (pymssql): its recipe (a FreeTDS new enough for pymssql 2.4, with
OpenSSL, DB-Library only), the hint and package entry that give pymssql the pack before
its first attempt, and a derived freetds-dev that the pack stands in for."""

from __future__ import annotations

import re

import pytest
from fixtures.packsteps import first_fix

from refinery.builder.packs import stand_ins
from refinery.builder.packs.recipes import PackRecipe, closure
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog


def configure_flags(recipe: PackRecipe) -> set[str]:
    (configure,) = [s for s in recipe.steps if s.startswith("./configure ")]
    return set(configure.split())


def test_freetds_is_new_enough_for_pymssql_and_debians(recipes: dict[str, PackRecipe]) -> None:
    """pymssql 2.4 calls DBSETLENCRYPTION (FreeTDS >= 1.4); bookworm and trixie have
    1.3.17, so the tarball is sid's, still from Debian's pool."""
    freetds = recipes["freetds"]
    assert tuple(int(p) for p in freetds.version.split(".")) >= (1, 4)
    assert freetds.source is not None
    assert freetds.source.url.startswith("https://deb.debian.org/debian/pool/main/f/freetds/")
    assert f"_{freetds.version}+ds.orig.tar." in freetds.source.url
    assert freetds.notes and freetds.description
    assert [r.name for r in closure(recipes, ["freetds"])] == ["openssl", "freetds"]


def test_freetds_builds_db_library_with_openssl_and_nothing_else(
    recipes: dict[str, PackRecipe],
) -> None:
    freetds = recipes["freetds"]
    flags = configure_flags(freetds)
    assert {"--host={host}", "--enable-msdblib", "--with-openssl={deps}"} <= flags
    assert {"--enable-shared", "--disable-static"} <= flags  # auditwheel grafts libsybdb
    for off in ("odbc", "apps", "server", "pool", "krb5"):
        assert f"--disable-{off}" in flags, off
    assert "--with-gnutls=no" in flags
    built = [m for s in freetds.steps for m in re.findall(r"make -C (\S+) -j\{jobs\}$", s)]
    assert built == ["include", "src/utils", "src/replacements", "src/tds", "src/dblib"]
    installs = [s for s in freetds.steps if " install " in s]
    assert installs == [
        "make -C include install DESTDIR={destdir}",
        "make -C src/dblib install DESTDIR={destdir}",
    ]


def test_the_pack_stands_in_for_debians_freetds(recipes: dict[str, PackRecipe]) -> None:
    """Attempt 2 of the first run derived freetds-dev (1.3.17) from 'sqlfront.h': a zig
    build gets the pack instead, never the sysroot's libsybdb (glibc 2.36)."""
    assert stand_ins(recipes, ["freetds-dev", "libsybdb5", "pkg-config"]) == {
        "freetds-dev": "freetds",
        "libsybdb5": "freetds",
    }


def test_pymssql_gets_the_pack_from_its_first_attempt(catalog: Catalog) -> None:
    (entry,) = catalog.for_package("pymssql", "3.11")
    assert entry.hints == ("freetds",)
    remedy = first_fix(catalog, "pymssql", "2.4.6")
    assert remedy is not None
    assert remedy.packs == ("freetds",)
    assert remedy.system_packages == ("freetds-dev",)
    assert remedy.pack_packages == ("freetds-dev",)  # the pack stands in for it
    # setup.py adds -lgssapi_krb5 -lkrb5 unless told otherwise; the pack has no Kerberos
    assert dict(remedy.env) == {"LINK_KRB5": "NO"}


#: pymssql 2.4.6, attempt 1 of its first run (cross, zig for manylinux_2_28_s390x)
PYMSSQL_FAILURE = (
    "src/pymssql/_mssql.c:1410:10: fatal error: 'sqlfront.h' file not found\n"
    ' 1410 | #include "sqlfront.h"\n'
    "      |          ^~~~~~~~~~~~\n"
    "1 error generated."
)


@pytest.mark.parametrize(
    ("line", "matches"),
    [
        *[(line, True) for line in PYMSSQL_FAILURE.splitlines()[:1]],
        ("src/pymssql/_mssql.c:1410:10: fatal error: sqlfront.h: No such file or directory", True),
        ("ld.lld: error: unable to find library -lsybdb", True),  # zig's spelling
        ("/usr/bin/ld: cannot find -lsybdb: No such file or directory", True),
        ("copying src/pymssql/sqlfront.pxd -> build/lib.linux-s390x-cpython-311/pymssql", False),
        ("setup.py: include_dirs => ['/usr/local/include']", False),
        # attempt 2 with bookworm's freetds-dev: FreeTDS too old, not missing
        (
            "src/pymssql/_mssql.c:14119:19: error: call to undeclared function "
            "'DBSETLENCRYPTION'; ISO C99 and later do not support implicit function "
            "declarations [-Wimplicit-function-declaration]",
            False,
        ),
    ],
)
def test_the_freetds_hint_matches_a_missing_freetds_only(
    catalog: Catalog, line: str, matches: bool
) -> None:
    found = [m.hint.id for m in scan(catalog, as_log_lines([line]), package="pymssql")]
    assert ("freetds" in found) is matches, found
