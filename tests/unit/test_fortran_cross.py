"""Fortran in zig cross builds: the cross gfortran compiles, zig's C wrapper links
against the library packs' libgfortran (glibc 2.17), never the cross compiler's (2.36).

The generated scripts run with bash against a fake gfortran and a fake linker that print
their arguments (no build root, only ``tmp_path``); the C wrapper against a fake zig.
"""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

from refinery.builder import crosstools
from refinery.builder.crosstools import CrossToolchain
from refinery.builder.packs import PACK_PREFIX
from refinery.builder.zig import Compiler, Zig, fortran_wrapper, wrapper

PRINT_ARGS = '#!/bin/sh\necho "{name}"\nfor a in "$@"; do echo "arg:$a"; done\n'


def fake(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PRINT_ARGS.format(name=name))
    path.chmod(0o755)
    return path


def calls(out: str) -> list[list[str]]:
    """The fakes' calls: each starts with the fake's name, then its arguments."""
    found: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith("arg:"):
            found[-1].append(line.removeprefix("arg:"))
        else:
            found.append([line])
    return found


@pytest.fixture
def tools(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A fake gfortran, a fake linker (the C wrapper's place) and a sysroot."""
    gfortran = fake(tmp_path / "bin/gfortran", "gfortran")
    linker = fake(tmp_path / "bin/cc wrapper", "linker")  # a space: the script must quote
    return gfortran, linker, tmp_path / "sysroot"


def run_fortran(tools: tuple[Path, Path, Path], tmp_path: Path, *args: str) -> list[list[str]]:
    gfortran, linker, sysroot = tools
    script = tmp_path / "s390x-linux-gnu-gfortran"
    script.write_text(fortran_wrapper(str(gfortran), linker, sysroot, PACK_PREFIX, "arch11"))
    done = subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    return calls(done.stdout)


def test_compiling_is_gfortrans_with_the_sysroot_and_zigs_march(
    tools: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    args = ("-O2", "-flto=auto", "-fPIC", "-march=arch12", "-c", "a.f90", "-o", "a.o")
    ((name, *argv),) = run_fortran(tools, tmp_path, *args)
    assert name == "gfortran"
    # ours first: the build's own -march comes later and wins; no LTO for zig's linker
    ours = [f"--sysroot={tools[2]}", "-march=arch11"]
    assert argv == [*ours, "-O2", "-fPIC", "-march=arch12", "-c", "a.f90", "-o", "a.o"]


@pytest.mark.parametrize("question", ["--version", "-dumpversion", "-dumpfullversion", "-v"])
def test_questions_go_to_gfortran(
    tools: tuple[Path, Path, Path], tmp_path: Path, question: str
) -> None:
    ((name, *argv),) = run_fortran(tools, tmp_path, question)
    assert name == "gfortran" and argv[-1] == question


def test_search_dirs_are_only_the_packs(tools: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """meson hands gfortran's library folders to the C linker: the cross compiler's hold
    a libgfortran for glibc 2.36, so only the packs' folder is answered."""
    gfortran, linker, sysroot = tools
    script = tmp_path / "f"
    script.write_text(fortran_wrapper(str(gfortran), linker, sysroot, PACK_PREFIX, "arch11"))
    done = subprocess.run(
        ["bash", str(script), "--print-search-dirs", "-c", "x.f90"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == f"libraries: ={sysroot}/{PACK_PREFIX}/lib"
    assert "gcc-cross" not in done.stdout and "arg:" not in done.stdout


def test_a_link_of_objects_is_zigs_with_libgfortran(
    tools: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    args = ("a.o", "libf.a", "-shared", "-fPIC", "-o", "m.so", "-Wl,--as-needed", "-ffixed-form")
    ((name, *argv),) = run_fortran(
        tools, tmp_path, *args, "-static-libgfortran", "-lscipy_openblas"
    )
    assert name == "linker"  # gfortran is not asked: nothing to compile
    assert argv == [*args[:-1], "-lscipy_openblas", "-lgfortran", "-lm"]


def test_a_compile_and_link_compiles_first(tools: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """meson's sanity check: ``gfortran sanitycheckf.f90 -o sanitycheckf.exe``."""
    args = ("-O2", "-J", "mods", "-ffree-form", "check.f90", "-o", "check.exe", "-Wl,-O1")
    (compiled, linked) = run_fortran(tools, tmp_path, *args)
    assert compiled[0] == "gfortran"
    assert compiled[1:3] == [f"--sysroot={tools[2]}", "-march=arch11"]
    assert compiled[3:9] == ["-O2", "-J", "mods", "-ffree-form", "-c", "check.f90"]
    obj = compiled[-1]
    assert compiled[-2] == "-o" and obj.endswith("/1.o")
    assert linked == ["linker", obj, "-O2", "-o", "check.exe", "-Wl,-O1", "-lgfortran", "-lm"]
    assert not Path(obj).parent.exists()  # the temporary objects are gone


# --- the C wrapper's side: which libgfortran a zig link takes ---------------------------
FAKE_ZIG = '#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\n'


def run_cc(tmp_path: Path, *args: str, pack: bool = True) -> subprocess.CompletedProcess[str]:
    zig = Zig(tmp_path / "zig")
    fake(zig.binary, "zig").write_text(FAKE_ZIG)
    sysroot = tmp_path / "sysroot"
    lib = sysroot / PACK_PREFIX / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    if pack:
        (lib / "libgfortran-d8daa919.so.5.0.0").write_bytes(b"\x7fELF")
    script = tmp_path / "cc"
    script.write_text(wrapper(zig, "cc", "s390x-linux-gnu.2.28", (), None, sysroot, PACK_PREFIX))
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, check=False)


def argv_of(done: subprocess.CompletedProcess[str]) -> list[str]:
    argv = [line.removeprefix("arg:") for line in done.stdout.splitlines()]
    assert argv[:4] == ["cc", "-target", "s390x-linux-gnu.2.28", "-g0"]
    return argv[4:]


def test_lgfortran_is_the_packs_and_gccs_folders_are_dropped(tmp_path: Path) -> None:
    packs_lib = tmp_path / "sysroot" / PACK_PREFIX / "lib"
    args = (
        "-shared",
        "m.o",
        "-L/usr/lib/gcc-cross/s390x-linux-gnu/12",  # gfortran's own search folders
        "-L/usr/s390x-linux-gnu/lib",
        f"-L{packs_lib}",
        "-lgfortran",
        "-lquadmath",
        "-lm",
        "-o",
        "m.so",
    )
    done = run_cc(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert argv_of(done) == [
        "-Wl,--strip-debug",
        "-shared",
        "m.o",
        f"-L{packs_lib}",
        str(packs_lib / "libgfortran-d8daa919.so.5.0.0"),
        "-lm",
        "-o",
        "m.so",
        f"-L{packs_lib}",  # the packs' folder, searched last
    ]


def test_a_program_with_libgfortran_finds_it_under_qemu(tmp_path: Path) -> None:
    argv = argv_of(run_cc(tmp_path, "m.o", "-lgfortran", "-o", "check.exe"))
    assert argv[-1] == f"-Wl,-rpath,/{PACK_PREFIX}/lib"  # qemu's -L sysroot holds the packs
    assert not any("rpath" in a for a in argv_of(run_cc(tmp_path, "m.o", "-o", "plain.exe")))


def test_lgfortran_without_a_pack_fails_plainly(tmp_path: Path) -> None:
    done = run_cc(tmp_path, "-shared", "m.o", "-lgfortran", "-o", "m.so", pack=False)
    assert done.returncode == 1 and done.stdout == ""
    assert "no libgfortran for the target glibc" in done.stderr
    assert "openblas library pack" in done.stderr


# --- the toolchain: wrappers, meson and CMake files --------------------------------------
def zig_toolchain(tmp_path: Path) -> CrossToolchain:
    return CrossToolchain(
        dir=tmp_path / "tc",
        arch="s390x",
        python="3.11",
        has_fortran=True,
        compilers=Compiler("zig", (2, 28)),
        zig=Zig(tmp_path / "zig"),
    )


def test_zig_toolchain_gfortran_compiles_and_its_c_wrapper_links(tmp_path: Path) -> None:
    tc = zig_toolchain(tmp_path)
    scripts = crosstools.compiler_scripts(tc, lambda name: f"/usr/bin/{name}")
    text = scripts[tc.compiler("gfortran")]
    assert f"GF=(/usr/bin/s390x-linux-gnu-gfortran --sysroot={tc.sysroot} -march=arch11)" in text
    assert f'{tc.compiler("gcc")} "${{objs[@]}}" "${{largs[@]}}" -lgfortran -lm' in text
    parser = configparser.ConfigParser()
    parser.read_string(crosstools.meson_cross_file(tc))
    assert parser["binaries"]["fortran"] == f"'{tc.compiler('gfortran')}'"
    cmake = crosstools.cmake_toolchain(tc)
    assert f"set(CMAKE_Fortran_COMPILER {tc.compiler('gfortran')})" in cmake
    gcc = CrossToolchain(dir=tmp_path / "g", arch="s390x", python="3.11", has_fortran=True)
    assert "set(CMAKE_Fortran_COMPILER /usr/bin/s390x-linux-gnu-gfortran)" in (
        crosstools.cmake_toolchain(gcc)
    )


@pytest.mark.parametrize("zig", [True, False])
def test_without_a_cross_gfortran_the_fortran_compiler_says_so(tmp_path: Path, zig: bool) -> None:
    tc = zig_toolchain(tmp_path)
    if not zig:
        tc = CrossToolchain(dir=tmp_path / "g", arch="s390x", python="3.11")

    def which(name: str) -> str | None:
        return None if name.endswith("gfortran") else f"/usr/bin/{name}"

    script = tmp_path / "gfortran"
    script.write_text(crosstools.compiler_scripts(tc, which)[tc.compiler("gfortran")])
    done = subprocess.run(
        ["sh", str(script), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 127
    assert "s390x-linux-gnu-gfortran: not installed on the build machine" in done.stderr
    assert "apt-get install gfortran-s390x-linux-gnu" in done.stderr
    if not zig:  # CMake is not told of a Fortran compiler there is not
        assert "CMAKE_Fortran_COMPILER" not in crosstools.cmake_toolchain(tc)
