"""The build check of the target promise: symbol versions read from ELF bytes, the
reason a wheel that needs a newer glibc fails with, and the attempt it fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.elf import make_elf
from fixtures.wheels import Project, make_wheel

from refinery.builder.outcome import AttemptLog, PhaseFailed
from refinery.builder.platform_check import (
    VersionNeed,
    enforce_target,
    inspect_platform,
    version_needs,
)
from refinery.core.models import NodeStatus

PROBE_NEEDS = {
    "libc.so.6": [("GLIBC_2.2", ["memcpy", "strlen"]), ("GLIBC_2.35", ["_dl_find_object"])],
    "libm.so.6": [("GLIBC_2.29", ["exp", "log", "pow", "exp2"])],
}


@pytest.mark.parametrize("big_endian", [True, False])
def test_version_needs_from_elf_bytes(big_endian: bool) -> None:
    needs = version_needs(make_elf(PROBE_NEEDS, big_endian=big_endian))
    assert needs == (
        VersionNeed("GLIBC_2.2", "libc.so.6", ("memcpy", "strlen")),
        VersionNeed("GLIBC_2.35", "libc.so.6", ("_dl_find_object",)),
        VersionNeed("GLIBC_2.29", "libm.so.6", ("exp", "exp2", "log", "pow")),
    )
    assert [n.glibc for n in needs] == [(2, 2), (2, 35), (2, 29)]


def test_versions_sort_as_numbers_and_other_libraries_are_not_glibc() -> None:
    needs = version_needs(
        make_elf(
            {
                "libc.so.6": [("GLIBC_2.34", ["pthread_create"]), ("GLIBC_2.4", ["f"])],
                "libstdc++.so.6": [("GLIBCXX_3.4.30", ["_ZSt4cout"])],
            }
        )
    )
    assert [n.version for n in needs] == ["GLIBC_2.4", "GLIBC_2.34", "GLIBCXX_3.4.30"]
    assert needs[-1].glibc is None


def test_not_an_elf_file_needs_nothing() -> None:
    assert version_needs(b"\x7fELF\x02\x02\x01" + b"\0" * 60) == ()
    assert version_needs(b"#!/bin/sh\n") == ()
    assert version_needs(make_elf({})) == ()


def wheel_with(tmp_path: Path, tag: str, elf: bytes) -> Path:
    project = Project("refinery-fixture-newglibc", "0.1.0")
    files = {
        "refinery_fixture_newglibc/__init__.py": b"",
        "refinery_fixture_newglibc/_probe.cpython-311-s390x-linux-gnu.so": elf,
    }
    filename, data, _ = make_wheel(project, tag, files=files)
    path = tmp_path / filename
    path.write_bytes(data)
    return path


TOO_NEW = "cp311-cp311-manylinux_2_35_s390x"
OLD = "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x"


def test_reason_names_version_library_symbol_and_file(tmp_path: Path) -> None:
    wheel = wheel_with(tmp_path, TOO_NEW, make_elf(PROBE_NEEDS))
    report = inspect_platform(wheel, "manylinux_2_28_s390x")
    assert not report.tag_fits and not report.ok
    assert report.best_tag == "manylinux_2_35_s390x"
    assert report.reason() == (
        "needs glibc 2.35: GLIBC_2.35 from libc.so.6 `_dl_find_object` in "
        "refinery_fixture_newglibc/_probe.cpython-311-s390x-linux-gnu.so "
        "(4 more symbol(s) newer than the target's glibc); "
        "target manylinux_2_28_s390x, wheel tagged manylinux_2_35_s390x"
    )
    # the same wheel keeps the promise of a newer target
    assert inspect_platform(wheel, "manylinux_2_35_s390x").ok
    assert not inspect_platform(wheel, "manylinux_2_34_s390x").ok


def test_many_symbols_are_shortened(tmp_path: Path) -> None:
    elf = make_elf({"libc.so.6": [("GLIBC_2.34", ["a", "b", "c", "d", "e"])]})
    report = inspect_platform(wheel_with(tmp_path, TOO_NEW, elf), "manylinux_2_28_s390x")
    assert report.reason().startswith(
        "needs glibc 2.34: GLIBC_2.34 from libc.so.6 `a`, `b`, `c` (+2) in "
    )


def test_a_tag_that_fits_with_a_symbol_that_does_not_still_fails(tmp_path: Path) -> None:
    report = inspect_platform(
        wheel_with(tmp_path, OLD, make_elf(PROBE_NEEDS)), "manylinux_2_28_s390x"
    )
    assert report.tag_fits and not report.ok
    assert report.reason().startswith("needs glibc 2.35: GLIBC_2.35 from libc.so.6")


def test_a_tag_too_new_without_glibc_symbols_says_so(tmp_path: Path) -> None:
    elf = make_elf({"libstdc++.so.6": [("GLIBCXX_3.4.30", ["_ZSt4cout"])]})
    report = inspect_platform(wheel_with(tmp_path, TOO_NEW, elf), "manylinux_2_28_s390x")
    assert report.reason() == (
        "the wheel does not install on its target: "
        "target manylinux_2_28_s390x, wheel tagged manylinux_2_35_s390x"
    )


def test_enforce_fails_the_attempt_and_logs_why(tmp_path: Path) -> None:
    wheel = wheel_with(tmp_path, TOO_NEW, make_elf(PROBE_NEEDS))
    attempt = AttemptLog(tmp_path / "build.log", None, 60.0)
    with pytest.raises(PhaseFailed) as failed:
        enforce_target(wheel, "manylinux_2_28_s390x", attempt)
    assert failed.value.status is NodeStatus.FAILED
    assert failed.value.reason.startswith("needs glibc 2.35: GLIBC_2.35 from libc.so.6")
    assert failed.value.lines is not None and len(failed.value.lines) == 2
    assert "libm.so.6 `exp`, `exp2`, `log` (+1)" in failed.value.lines[1]
    log = (tmp_path / "build.log").read_text()
    assert "installs on Ubuntu 22.04+, Debian 12+ (glibc 2.35+;" in log
    outcome = attempt.failed(failed.value, "rootfs", "img", "3.11")
    assert outcome.status is NodeStatus.FAILED and outcome.wheel is None
    assert outcome.matched_lines == failed.value.lines


def test_enforce_passes_a_wheel_that_keeps_the_promise(tmp_path: Path) -> None:
    elf = make_elf({"libc.so.6": [("GLIBC_2.2", ["memcpy"]), ("GLIBC_2.17", ["clock_gettime"])]})
    wheel = wheel_with(tmp_path, OLD, elf)
    attempt = AttemptLog(tmp_path / "build.log", None, 60.0)
    report = enforce_target(wheel, "manylinux_2_28_s390x", attempt)
    assert report.ok
    assert attempt.lines[-1] == (
        "platform: manylinux_2_17_s390x installs on target manylinux_2_28_s390x; newest "
        "glibc symbol GLIBC_2.17 from libc.so.6 `clock_gettime` in "
        "refinery_fixture_newglibc/_probe.cpython-311-s390x-linux-gnu.so"
    )
