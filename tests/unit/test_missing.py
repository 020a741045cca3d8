"""Every "missing X" shape, recognised on a real tool's message (tests/fixtures/missing_logs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinery.hints.missing import Missing, find_missing, missing_in

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "missing_logs"


def found(name: str) -> tuple[Missing, ...]:
    return find_missing((LOGS / name).read_text().splitlines())


@pytest.mark.parametrize(
    ("log", "kind", "what", "line"),
    [
        ("gcc-header.log", "header", "foo/bar.h", 2),
        ("zig-header.log", "header", "ffi.h", 1),
        ("ld-library.log", "library", "snappy", 1),
        ("pkg-config.log", "pkgconfig", "libzstdxx", 1),
        ("meson-dependency.log", "pkgconfig", "libfoo9", 4),
        ("meson-fortran.log", "compiler", "gfortran", 1),
        ("meson-program.log", "command", "cythonx", 1),
        ("cmake-config.log", "cmake", "ZLIBX", 3),
        ("cmake-module.log", "cmake", "GSL", 2),
        ("sh-command.log", "command", "xml9-config", 1),
        ("bash-command.log", "command", "foo-config", 1),
        ("distutils-compiler.log", "compiler", "g++", 2),
        ("python-module.log", "module", "setuptools_scm", 3),
        ("subprocess-command.log", "command", "pg_config", 3),
    ],
)
def test_each_shape_on_a_real_message(log: str, kind: str, what: str, line: int) -> None:
    first = found(log)[0]
    assert (first.kind, first.name, first.line) == (kind, what, line)
    assert what.partition(".")[0] in first.text or what in first.text


def test_one_finding_per_thing_in_log_order() -> None:
    # pkg-config.log names libzstdxx twice (new and old pkg-config wording): once.
    assert [m.name for m in found("pkg-config.log")] == ["libzstdxx"]
    lines = ["fatal error: a.h: No such file or directory", "cannot find -lz", "cannot find -lz"]
    assert [(m.kind, m.name) for m in find_missing(lines)] == [("header", "a.h"), ("library", "z")]


def test_ordinary_lines_name_nothing() -> None:
    for line in (
        "error: command '/usr/bin/gcc' failed with exit code 1",
        "Could not find a version that satisfies the requirement foo",
        "checking for foo.h... no",
        "",
    ):
        assert missing_in(line) is None, line


def test_labels_for_people() -> None:
    assert Missing("library", "snappy").label == "library -lsnappy"
    assert Missing("pkgconfig", "libzstd").label == "pkg-config module libzstd"
    assert Missing("cmake", "GSL").label == "CMake package GSL"
    assert Missing("header", "yaml.h").label == "header yaml.h"
