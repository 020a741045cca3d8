"""numpy as a build requirement of a cross build (refinery.builder.crossnumpy), and the
small cross fixes the numpy-dependent corpus packages needed (pandas' meson 1.2 define
probe, meson's host python, numcodecs' ``setuptools-scm[toml]`` requirement)."""

from __future__ import annotations

import configparser
import tomllib
import zipfile
from pathlib import Path

import pytest

from refinery.builder import crossnumpy, crosstools
from refinery.builder.artifacts import add_build_requires
from refinery.builder.zig import Zig, wrapper

NUMCODECS = """[build-system]
requires = [
    "setuptools>=77",
    "setuptools-scm[toml]>=6.2",  # a comment with a ] bracket
    "Cython",
    "py-cpuinfo",
    "numpy>2",
]
build-backend = "setuptools.build_meta"

[project]
name = "numcodecs"
"""


def test_numpy_requirements_and_the_pin() -> None:
    wanted = ("Cython>=3", "numpy>=2.0; python_version>='3.9'", "NumPy<3", "numpy-financial")
    assert crossnumpy.numpy_requirements(wanted, "3.11") == ("numpy>=2.0", "numpy<3")
    assert crossnumpy.pinned(wanted, "2.1.3") == ("Cython>=3", "numpy-financial", "numpy==2.1.3")
    # pywavelets 1.9.0 as pypa/build lists them: only the first applies to 3.11
    pywt = (
        "Cython>=3.0.4",
        "numpy>=2.0.0; python_version<'3.13'",
        "numpy>=2.1.0; python_version>='3.13'",
        "numpy>=2.3.2; python_version>='3.14'",
    )
    assert crossnumpy.numpy_requirements(pywt, "3.11") == ("numpy>=2.0.0",)
    assert crossnumpy.numpy_requirements(pywt, "3.14") == ("numpy>=2.1.0", "numpy>=2.3.2")
    assert crossnumpy.pinned(pywt, "2.1.3") == ("Cython>=3.0.4", "numpy==2.1.3")
    assert crossnumpy.pinned(("meson",), "2.1.3") == ("meson",)


def test_the_download_asks_for_every_tag_that_installs_on_the_target() -> None:
    platforms = crossnumpy.target_platforms("s390x", (2, 28), "3.11")
    assert platforms[0] == "manylinux_2_28_s390x"
    assert "manylinux_2_17_s390x" in platforms and "manylinux2014_s390x" in platforms
    assert "manylinux_2_29_s390x" not in platforms
    argv = crossnumpy.download_argv(
        Path("/b/python3.11"), Path("/d"), ["numpy>2"], platforms=platforms, python="3.11"
    )
    assert argv[:4] == ["/b/python3.11", "-m", "pip", "download"]
    assert argv.count("--platform") == len(platforms)
    assert {"--no-deps", "--only-binary=:all:"} <= set(argv)
    assert argv[argv.index("--abi") + 1] == "cp311" and argv[-1] == "numpy>2"


def host_numpy(folder: Path, version: str) -> Path:
    """What ``pip --target`` leaves: the package (x86_64 build files) and its dist-info."""
    inc = folder / "numpy/_core/include/numpy"
    inc.mkdir(parents=True)
    (inc / "_numpyconfig.h").write_text("/* x86_64 */\n")
    (inc / "stale.h").write_text("only the build machine's\n")
    (folder / "numpy/_core/lib").mkdir()
    (folder / "numpy/_core/lib/libnpymath.a").write_bytes(b"x86_64")
    (folder / "numpy/__init__.py").write_text("")
    (folder / f"numpy-{version}.dist-info").mkdir()
    return folder


def target_wheel(folder: Path, version: str, *, config: bool = True) -> Path:
    wheel = folder / f"numpy-{version}-cp311-cp311-manylinux_2_27_s390x.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        if config:
            zf.writestr("numpy/_core/include/numpy/_numpyconfig.h", "/* s390x */\n")
        zf.writestr("numpy/_core/lib/libnpymath.a", b"s390x")
        zf.writestr("numpy/_core/lib/pkgconfig/numpy.pc", "Name: numpy\n")
        zf.writestr("numpy/_core/_multiarray_umath.cpython-311-s390x-linux-gnu.so", b"ELF")
        zf.writestr(f"numpy-{version}.dist-info/METADATA", "Name: numpy\n")
    return wheel


def test_retarget_replaces_the_build_files_only(tmp_path: Path) -> None:
    folder = host_numpy(tmp_path / "req", "2.1.3")
    wheel = target_wheel(tmp_path, "2.1.3")
    assert crossnumpy.installed_version(folder) == "2.1.3"
    assert crossnumpy.wheel_version(wheel) == "2.1.3"
    written = crossnumpy.retarget(folder, wheel)
    assert set(written) == {
        "numpy/_core/include/numpy/_numpyconfig.h",
        "numpy/_core/lib/libnpymath.a",
        "numpy/_core/lib/pkgconfig/numpy.pc",
    }
    inc = folder / "numpy/_core/include/numpy"
    assert (inc / "_numpyconfig.h").read_text() == "/* s390x */\n"
    assert not (inc / "stale.h").exists()  # nothing of the build machine's is left
    assert (folder / "numpy/_core/lib/libnpymath.a").read_bytes() == b"s390x"
    assert not list(folder.rglob("*s390x-linux-gnu.so"))  # the Python side stays x86_64


def test_retarget_refuses_another_version_or_a_wheel_without_its_config(tmp_path: Path) -> None:
    folder = host_numpy(tmp_path / "req", "2.3.0")
    with pytest.raises(ValueError, match=r"numpy 2\.3\.0 for the build machine, 2\.1\.3"):
        crossnumpy.retarget(folder, target_wheel(tmp_path, "2.1.3"))
    other = tmp_path / "w"
    other.mkdir()
    with pytest.raises(ValueError, match=r"no numpy/_core/include/numpy/_numpyconfig\.h"):
        crossnumpy.retarget(folder, target_wheel(other, "2.3.0", config=False))
    assert crossnumpy.installed_version(tmp_path / "w") is None


def test_meson_finds_numpy_config_through_a_second_cross_file() -> None:
    parser = configparser.ConfigParser()
    parser.read_string(
        crossnumpy.meson_cross_file(Path("/s/build-requires-static/bin/numpy-config"))
    )
    assert parser["binaries"]["numpy-config"] == "'/s/build-requires-static/bin/numpy-config'"


def test_meson_cross_file_names_the_cross_python_as_the_host_python(tmp_path: Path) -> None:
    tc = crosstools.CrossToolchain(dir=tmp_path / "tc", arch="s390x", python="3.11")
    parser = configparser.ConfigParser()
    parser.read_string(crosstools.meson_cross_file(tc))
    assert parser["binaries"]["python"] == f"'{tc.cross_python}'"


def test_zig_wrappers_name_the_language_of_stdin(tmp_path: Path) -> None:
    """meson 1.2 (pandas' pin) probes ``cc -E -dM -``: zig fails on stdin without -x."""
    zig = Zig(tmp_path)
    assert '-) set -- "$@" -x c - ;;' in wrapper(zig, "cc", "s390x-linux-gnu.2.28", ())
    assert '-) set -- "$@" -x c++ - ;;' in wrapper(zig, "c++", "s390x-linux-gnu.2.28", ())


def test_a_derived_requirement_keeps_an_array_with_extras(tmp_path: Path) -> None:
    """numcodecs: the array ends at its own bracket, not at ``[toml]``'s."""
    (tmp_path / "pyproject.toml").write_text(NUMCODECS)
    got = add_build_requires(tmp_path, ["numpy"])
    assert got[-2:] == ("numpy>2", "numpy")
    doc = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert doc["build-system"]["requires"][1] == "setuptools-scm[toml]>=6.2"
    assert doc["project"]["name"] == "numcodecs"
