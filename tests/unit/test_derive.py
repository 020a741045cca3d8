"""Fixes derived from the distribution's file index: a small real excerpt of bookworm's
Contents-s390x / Contents-all (tests/fixtures/contents) made into the query database."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.fileindex import MULTIARCH, FixtureIndex

from refinery.core.models import DerivedFix
from refinery.hints.derive import derive, file_index_deriver, queries_for, rank
from refinery.hints.missing import Missing
from refinery.upstream.debian import Owner, parse_contents, release_digests


@pytest.fixture
def index(tmp_path: Path) -> FixtureIndex:
    return FixtureIndex(tmp_path)


def answer(index: FixtureIndex, kind: str, name: str) -> DerivedFix:
    return derive(Missing(kind, name), index, MULTIARCH)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "name", "package", "path"),
    [
        ("header", "yaml.h", "libyaml-dev", "usr/include/yaml.h"),  # not yaml-cpp's
        ("header", "ffi.h", "libffi-dev", f"usr/include/{MULTIARCH}/ffi.h"),  # not botan's
        ("header", "openssl/ssl.h", "libssl-dev", "usr/include/openssl/ssl.h"),
        ("library", "snappy", "libsnappy-dev", f"usr/lib/{MULTIARCH}/libsnappy.so"),
        ("pkgconfig", "libzstd", "libzstd-dev", f"usr/lib/{MULTIARCH}/pkgconfig/libzstd.pc"),
        ("cmake", "GSL", "libgsl-dev", f"usr/lib/{MULTIARCH}/pkgconfig/gsl.pc"),
        ("cmake", "Eigen3", "libeigen3-dev", "usr/share/eigen3/cmake/Eigen3Config.cmake"),
        ("command", "xml2-config", "libxml2-dev", "usr/bin/xml2-config"),
        ("command", "pg_config", "libpq-dev", "usr/bin/pg_config"),
        ("compiler", "gfortran", "gfortran", "usr/bin/gfortran"),
    ],
)
def test_the_best_package_for_each_kind(
    index: FixtureIndex, kind: str, name: str, package: str, path: str
) -> None:
    got = answer(index, kind, name)
    assert got.answered and got.package == package
    assert got.candidates[0] == (path, package)
    assert path in got.summary() and package in got.summary()


def test_only_the_same_header_is_a_candidate(index: FixtureIndex) -> None:
    # botan's botan/ffi.h shares the file name, not the include path: not a candidate.
    got = answer(index, "header", "ffi.h")
    assert [pkg for _path, pkg in got.candidates] == ["libffi-dev"]
    assert got.queries == ("*/include/ffi.h",)


def test_ranking_standard_folder_then_dev_package_then_shorter_path() -> None:
    (q,) = queries_for(Missing("header", "yaml.h"), MULTIARCH)
    standard_dev = rank("usr/include/yaml.h", "libyaml-dev", q)
    standard_other = rank("usr/include/yaml.h", "yaml-tools", q)
    elsewhere_dev = rank("opt/vendor/include/yaml.h", "libvendor-dev", q)
    assert standard_dev < standard_other < elsewhere_dev


def test_the_arch_independent_index_is_asked_only_when_needed(index: FixtureIndex) -> None:
    answer(index, "header", "yaml.h")
    assert all(not arch_all for _name, arch_all in index.asked)
    got = answer(index, "header", "pybind11/pybind11.h")
    assert got.package == "pybind11-dev"
    assert ("pybind11.h", True) in index.asked


def test_nothing_answers_honestly(index: FixtureIndex) -> None:
    got = answer(index, "pkgconfig", "lapack")
    assert not got.answered and got.candidates == ()
    assert "nothing in the file index" in got.summary()


def test_a_python_module_is_a_build_requirement(index: FixtureIndex) -> None:
    assert answer(index, "module", "setuptools_scm").requirement == "setuptools-scm"
    assert answer(index, "module", "yaml").requirement == "pyyaml"
    assert index.asked == []  # not the distribution's question


def test_compiler_aliases_and_library_fallback_to_static() -> None:
    (query_,) = queries_for(Missing("compiler", "c++"), MULTIARCH)
    assert query_.name == "g++"
    names = [q.name for q in queries_for(Missing("library", "z"), MULTIARCH)]
    assert names == ["libz.so", "libz.a"]


def test_contents_lines_and_release_digests() -> None:
    rows = list(
        parse_contents(
            [
                "usr/include/yaml.h                 libdevel/libyaml-dev\n",
                "usr/share/doc/x/copyright          doc/x\n",
                "usr/bin/foo                        utils/a,admin/b\n",
            ]
        )
    )
    assert rows == [
        ("yaml.h", "usr/include/yaml.h", "libyaml-dev"),
        ("foo", "usr/bin/foo", "a,b"),
    ]
    release = (
        "Codename: bookworm\nMD5Sum:\n 0ed6 1484322 main/Contents-s390x.gz\n"
        "SHA256:\n fbe23a 9910731 main/Contents-s390x.gz\n 3e4f 32887 contrib/Contents-all\n"
    )
    assert release_digests(release) == {
        "main/Contents-s390x.gz": "fbe23a",
        "contrib/Contents-all": "3e4f",
    }


def test_a_deriver_reads_a_log_and_the_record_keeps_everything(index: FixtureIndex) -> None:
    deriver = file_index_deriver(index, MULTIARCH)
    log = [
        "src/_y.c:2:10: fatal error: yaml.h: No such file or directory",
        "ModuleNotFoundError: No module named 'Cython'",
    ]
    yaml, cython = deriver(log)
    assert (yaml.kind, yaml.name, yaml.package, yaml.line) == (
        "header",
        "yaml.h",
        "libyaml-dev",
        log[0],
    )
    assert cython.requirement == "cython"
    assert DerivedFix.from_json(yaml.to_json()) == yaml
    assert yaml.summary() == "header yaml.h → libyaml-dev (usr/include/yaml.h)"


def test_a_package_named_for_the_file_wins_a_tie() -> None:
    (q,) = queries_for(Missing("command", "krb5-config"), MULTIARCH)
    assert rank("usr/bin/krb5-config", "libkrb5-dev", q) < rank(
        "usr/bin/krb5-config", "heimdal-dev", q
    )


def test_a_file_outside_the_standard_folders_is_shown_not_chosen() -> None:
    class Vendored:
        def owners(self, filename: str, *, arch_all: bool = False) -> tuple[Owner, ...]:
            path = "usr/include/tg_owt/third_party/crc32c/src/include/crc32c/crc32c.h"
            return () if arch_all else (Owner(path, ("libtgowt-dev",)),)

    got = derive(Missing("header", "crc32c/crc32c.h"), Vendored(), MULTIARCH)
    assert not got.answered and got.candidates[0][1] == "libtgowt-dev"
