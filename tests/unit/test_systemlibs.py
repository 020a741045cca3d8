"""System libraries a wheel may assume (auditwheel's policies), what of them a wheel
needs, and the package of the root's distribution that ships each one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fixtures.elf import make_elf
from fixtures.fileindex import MULTIARCH, FixtureIndex
from fixtures.wheels import Project, make_wheel

from refinery.builder.distindex import RootIndex
from refinery.builder.smoke import SmokeResult, with_given
from refinery.builder.systemlibs import (
    ABSENT,
    PROBE,
    Assumed,
    Given,
    UnprovidedLibrary,
    absent,
    allowed_libraries,
    assumed,
    needed_libraries,
    packages_for,
)

TAG = "cp311-cp311-manylinux_2_28_s390x"


def wheel(tmp_path: Path, files: dict[str, bytes], tag: str = TAG) -> Path:
    filename, data, _ = make_wheel(Project("refinery-fixture-sys", "0.1.0"), tag, files=files)
    path = tmp_path / filename
    path.write_bytes(data)
    return path


def test_a_manylinux_tag_allows_its_policy_libraries() -> None:
    policy, allowed = allowed_libraries(f"x-1.0-{TAG}.whl")
    assert policy == "manylinux_2_28"
    assert {"libc.so.6", "libglib-2.0.so.0", "libGL.so.1", "libz.so.1"} <= allowed
    assert "libssl.so.3" not in allowed and "libdbus-1.so.3" not in allowed


def test_an_alias_tag_is_its_policy_and_a_linux_tag_has_none() -> None:
    both = "x-1.0-cp311-cp311-manylinux2014_s390x.manylinux_2_17_s390x.whl"
    policy, allowed = allowed_libraries(both)
    assert policy in ("manylinux2014", "manylinux_2_17")
    assert allowed == allowed_libraries("x-1.0-cp311-cp311-manylinux_2_17_s390x.whl")[1]
    assert allowed_libraries("x-1.0-cp311-cp311-linux_s390x.whl") == ("", frozenset())
    assert allowed_libraries("x-1.0-py3-none-any.whl") == ("", frozenset())


def test_the_needs_a_policy_allows_and_the_wheel_does_not_ship_are_assumed(
    tmp_path: Path,
) -> None:
    ext = make_elf({}, needed=("libglib-2.0.so.0", "libz.so.1", "libc.so.6", "libdbus-1-9d.so.3"))
    files = {
        "dbus/__init__.py": b"",
        "_glib.cpython-311-s390x-linux-gnu.so": ext,
        "x.libs/libdbus-1-9d.so.3": make_elf({}, needed=("libc.so.6",), soname="libdbus-1-9d.so.3"),
        "x.libs/libz-5a.so.1": make_elf({}, soname="libz.so.1"),
    }
    path = wheel(tmp_path, files)
    needed, shipped = needed_libraries(path)
    assert needed == {"libglib-2.0.so.0", "libz.so.1", "libc.so.6", "libdbus-1-9d.so.3"}
    assert {"libdbus-1-9d.so.3", "libz.so.1", "libz-5a.so.1"} <= shipped
    assert assumed(path) == Assumed("manylinux_2_28", ("libc.so.6", "libglib-2.0.so.0"))


def test_a_wheel_without_a_policy_tag_or_elf_files_assumes_nothing(tmp_path: Path) -> None:
    ext = make_elf({}, needed=("libglib-2.0.so.0",))
    linux = wheel(tmp_path, {"_g.so": ext}, tag="cp311-cp311-linux_s390x")
    assert assumed(linux) is None
    pure = wheel(tmp_path, {"pkg/__init__.py": b""})
    assert assumed(pure) is None


def test_apt_packages_come_from_the_roots_file_index(tmp_path: Path) -> None:
    found = RootIndex(FixtureIndex(tmp_path), MULTIARCH)
    chosen = packages_for(("libglib-2.0.so.0", "libGL.so.1"), "apt", found)
    assert chosen == {"libglib-2.0.so.0": "libglib2.0-0", "libGL.so.1": "libgl1"}  # not primus


def test_a_library_no_package_ships_is_said(tmp_path: Path) -> None:
    found = RootIndex(FixtureIndex(tmp_path), MULTIARCH)
    with pytest.raises(UnprovidedLibrary, match=r"libXrender.so.1: no package ships it"):
        packages_for(("libXrender.so.1",), "apt", found)
    with pytest.raises(UnprovidedLibrary, match="no file index of the root"):
        packages_for(("libglib-2.0.so.0",), "apt", None)


def test_rpm_roots_install_the_librarys_own_provide() -> None:
    chosen = packages_for(("libglib-2.0.so.0",), "dnf", None)
    assert chosen == {"libglib-2.0.so.0": "libglib-2.0.so.0()(64bit)"}


def test_the_probe_output_names_what_is_absent() -> None:
    lines = ["noise", f"{ABSENT}libglib-2.0.so.0\n", f"{ABSENT}libGL.so.1"]
    assert absent(lines) == ("libglib-2.0.so.0", "libGL.so.1")


def test_the_smoke_verdict_says_what_the_root_was_given() -> None:
    given = Given("manylinux_2_28", ("libglib-2.0.so.0",), ("libglib2.0-0",))
    verdict = SmokeResult(True, ("dbus",), (), 1.0, note="import needs context: x (needs y)")
    out = with_given(verdict, given)
    assert out.given == ("libglib2.0-0",)
    assert out.note.startswith("the clean root was given libglib2.0-0 for libglib-2.0.so.0: ")
    assert "manylinux_2_28 policy" in out.note and out.note.endswith("(needs y)")
    assert with_given(verdict, None) is verdict


def test_the_probe_is_plain_sh_over_ldconfigs_cache() -> None:
    done = subprocess.run(
        ["sh", "-c", PROBE, "probe", "libc.so.6", "libc.so", "librefinery-none.so.1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert absent(done.stdout.splitlines()) == ("libc.so", "librefinery-none.so.1")
    no_ldconfig = subprocess.run(
        ["sh", "-c", PROBE.replace("ldconfig", "refinery-no-ldconfig"), "probe", "libc.so.9"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert no_ldconfig.returncode == 0 and no_ldconfig.stdout == ""  # nothing is given
