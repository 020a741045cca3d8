"""The cross toolchain's CMake file with real CMake: a library pack (below the sysroot's
``/opt/refinery-packs``) is what ``find_library``/``find_path`` find, before the
sysroot's own copy, as for the compilers and pkg-config. (FindProtobuf found only the
sysroot, never the protobuf pack, before the toolchain named the packs' prefix.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.need import unavailable

from refinery.builder import crosstools
from refinery.builder.crosstools import CrossToolchain
from refinery.builder.packs import PACK_PREFIX

PROBE = """\
cmake_minimum_required(VERSION 3.20)
project(probe NONE)
find_library(DEMO_LIB demo REQUIRED)
find_path(DEMO_INC demo.h REQUIRED)
file(WRITE ${CMAKE_BINARY_DIR}/found.txt "${DEMO_LIB}\\n${DEMO_INC}\\n")
"""
PACK_LINE = f"list(PREPEND CMAKE_PREFIX_PATH /{PACK_PREFIX})"


def found(tmp_path: Path, toolchain: str) -> list[str]:
    """Configure the probe with ``toolchain``; what it found (library, header folder)."""
    (tmp_path / "proj").mkdir(parents=True)
    (tmp_path / "proj/CMakeLists.txt").write_text(PROBE)
    (tmp_path / "toolchain.cmake").write_text(toolchain)
    build = tmp_path / "build"
    subprocess.run(
        ["cmake", "-S", str(tmp_path / "proj"), "-B", str(build),
         f"-DCMAKE_TOOLCHAIN_FILE={tmp_path / 'toolchain.cmake'}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return (build / "found.txt").read_text().splitlines()


@pytest.fixture
def tc(tmp_path: Path) -> CrossToolchain:
    if shutil.which("cmake") is None:
        unavailable("no cmake (apt-get install cmake)")
    tc = CrossToolchain(dir=tmp_path / "tc", arch="s390x", python="3.11")
    for prefix in (tc.sysroot / PACK_PREFIX, tc.sysroot / "usr"):  # the pack, the distro's
        (prefix / "lib").mkdir(parents=True)
        (prefix / "include").mkdir(parents=True)
        (prefix / "lib/libdemo.a").write_bytes(b"!<arch>\n")
        (prefix / "include/demo.h").write_text("int demo(void);\n")
    return tc


def test_cmake_finds_the_pack_before_the_sysroot(tc: CrossToolchain, tmp_path: Path) -> None:
    text = crosstools.cmake_toolchain(tc)
    assert PACK_LINE in text.splitlines()
    pack = tc.sysroot / PACK_PREFIX
    assert found(tmp_path / "with", text) == [str(pack / "lib/libdemo.a"), str(pack / "include")]
    # without the line, the same probe takes the sysroot's copy (what the line changes)
    without = text.replace(PACK_LINE + "\n", "")
    assert found(tmp_path / "without", without)[0] == str(tc.sysroot / "usr/lib/libdemo.a")
