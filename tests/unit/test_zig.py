"""zig as the cross compiler: when it is chosen, the glibc of a libc, zig's target, and
what the generated wrappers pass to zig (run with ``sh`` against a fake ``zig`` that
prints its arguments and environment: no build root, only ``tmp_path``)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

from refinery.builder.errors import BuildRootUnavailable
from refinery.builder.zig import (
    GCC,
    LINKER_VERSION,
    Compiler,
    LinkGuard,
    Zig,
    archiver_wrapper,
    compat_for,
    compat_sources,
    compiler_for,
    libc_glibc,
    newer_glibc_symbols,
    wrapper,
    zig_target,
)

BOOKWORM = (2, 36)
FAKE_ZIG = """#!/bin/sh
echo "CPATH=${CPATH-unset} LIBRARY_PATH=${LIBRARY_PATH-unset} CACHE=$ZIG_GLOBAL_CACHE_DIR"
for a in "$@"; do echo "arg:$a"; done
"""


@pytest.mark.parametrize(
    ("target", "sysroot", "expected"),
    [
        ("manylinux_2_28_s390x", BOOKWORM, Compiler("zig", (2, 28))),  # below: zig
        ("manylinux_2_36_s390x", BOOKWORM, GCC),  # at the sysroot's glibc: gcc
        ("manylinux_2_39_s390x", BOOKWORM, GCC),  # above: gcc (the check fails it later)
        ("manylinux2014_s390x", BOOKWORM, Compiler("zig", (2, 17))),
        ("manylinux_2_5_s390x", BOOKWORM, Compiler("zig", (2, 17))),  # zig's oldest
        ("linux_s390x", BOOKWORM, GCC),  # no promise to keep
        ("", BOOKWORM, GCC),
        ("manylinux_2_28_s390x", None, GCC),  # sysroot's glibc unknown
    ],
)
def test_compiler_for(target: str, sysroot: tuple[int, int] | None, expected: Compiler) -> None:
    assert compiler_for(target, sysroot) == expected


def test_compiler_label_and_consistency() -> None:
    assert GCC.label == "gcc"
    assert Compiler("zig", (2, 28)).label == "zig-glibc2.28"
    with pytest.raises(ValueError, match="target glibc"):
        Compiler("zig")
    with pytest.raises(ValueError, match="takes none"):
        Compiler("gcc", (2, 28))


def test_libc_glibc_is_the_newest_version_name(tmp_path: Path) -> None:
    libc = tmp_path / "libc.so.6"
    libc.write_bytes(b"\x7fELF\0GLIBC_2.2\0GLIBC_2.36\0GLIBC_2.4\0GLIBC_PRIVATE\0GLIBC_2.9\0")
    assert libc_glibc(libc) == (2, 36)
    (tmp_path / "empty.so").write_bytes(b"\x7fELF\0nothing here\0")
    assert libc_glibc(tmp_path / "empty.so") is None
    assert libc_glibc(tmp_path / "missing.so") is None


def test_zig_target() -> None:
    assert zig_target("s390x", (2, 28)) == "s390x-linux-gnu.2.28"
    assert zig_target("s390x", (2, 17)) == "s390x-linux-gnu.2.17"
    with pytest.raises(BuildRootUnavailable, match="ppc64le"):
        zig_target("ppc64le", (2, 28))


@pytest.fixture
def fake_zig(tmp_path: Path) -> Zig:
    zig = Zig(tmp_path / "zig home")  # a space: the wrapper must quote
    zig.binary.parent.mkdir(parents=True)
    zig.binary.write_text(FAKE_ZIG)
    zig.binary.chmod(0o755)
    return zig


def run_script(text: str, tmp_path: Path, *args: str) -> list[str]:
    script = tmp_path / "wrapper"
    script.write_text(text)
    env = {**os.environ, "CPATH": "/sysroot/usr/include", "LIBRARY_PATH": "/sysroot/usr/lib"}
    done = subprocess.run(
        ["sh", str(script), *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.splitlines()


def test_wrapper_maps_what_zig_rejects(fake_zig: Zig, tmp_path: Path) -> None:
    include = (tmp_path / "sysroot/usr/include/s390x-linux-gnu", tmp_path / "sysroot/usr/include")
    text = wrapper(fake_zig, "c++", "s390x-linux-gnu.2.28", include)
    args = [
        "-cpp",
        "--target=s390x-unknown-linux-gnu",
        "-O2",
        "-Wl,-Bsymbolic-functions",
        "-lstdc++",
        "-lgcc_s",
        "-flto=thin",
        "-o",
        "with space.so",
        "-Wl,-z,relro",
        "-Wl,-strip-all",
    ]
    out = run_script(text, tmp_path, *args)
    env, argv = out[0], [line.removeprefix("arg:") for line in out[1:]]
    assert env == f"CPATH=unset LIBRARY_PATH=unset CACHE={fake_zig.cache}"
    assert argv == [
        "c++",
        "-target",
        "s390x-linux-gnu.2.28",
        "-idirafter",
        str(include[0]),
        "-idirafter",
        str(include[1]),
        "-g0",  # no DWARF unless the build asks (zig's clang emits it by default)
        "-Wl,--strip-debug",  # a link writes none (Python's CFLAGS say -g; zig's libc++)
        "-O2",
        "-lc++",
        "-lunwind",
        "-o",
        "with space.so",
        "-Wl,-z,relro",
        "-Wl,--strip-all",  # GNU ld reads -strip-all as --strip-all; zig refuses the former
    ]


def test_only_a_link_strips_debug_information(fake_zig: Zig, tmp_path: Path) -> None:
    text = wrapper(fake_zig, "cc", "s390x-linux-gnu.2.28", ())
    compiled = run_script(text, tmp_path, "-g", "-c", "m.c", "-o", "m.o")
    assert "arg:-Wl,--strip-debug" not in compiled  # clang would warn: unused argument
    linked = run_script(text, tmp_path, "-g", "-shared", "m.o", "-o", "m.so")
    assert "arg:-Wl,--strip-debug" in linked


def test_preprocessor_wrapper_and_linker_version(fake_zig: Zig, tmp_path: Path) -> None:
    text = wrapper(fake_zig, "cpp", "s390x-linux-gnu.2.17", ())
    argv = [line.removeprefix("arg:") for line in run_script(text, tmp_path, "-dM", "-")[1:]]
    # stdin gets its language: zig fails on "-" without -x (meson 1.2's define probe)
    assert argv == ["cc", "-E", "-target", "s390x-linux-gnu.2.17", "-g0", "-dM", "-x", "c", "-"]
    # meson detects the linker with -Wl,--version: answered without running zig
    assert run_script(text, tmp_path, "-Wl,--version") == [LINKER_VERSION]
    assert LINKER_VERSION.startswith("LLD ")


def test_archiver_wrapper_runs_zig_ar(fake_zig: Zig, tmp_path: Path) -> None:
    out = run_script(archiver_wrapper(fake_zig, "ar"), tmp_path, "rcs", "lib x.a", "a.o")
    assert [line.removeprefix("arg:") for line in out[1:]] == ["ar", "rcs", "lib x.a", "a.o"]
    assert out[0].endswith(f"CACHE={fake_zig.cache}")


READELF_LIBC = """\
Symbol table '.dynsym' contains 5 entries:
   Num:    Value          Size Type    Bind   Vis      Ndx Name
     1: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND __tls_get_addr@GLIBC_2.3 (2)
     2: 00000000000a1b20   120 FUNC    GLOBAL DEFAULT   15 memcpy@@GLIBC_2.14
     3: 00000000000a1a00   120 FUNC    GLOBAL DEFAULT   15 memcpy@GLIBC_2.2
     4: 0000000000150e40   312 FUNC    GLOBAL DEFAULT   15 _dl_find_object@@GLIBC_2.35
     5: 0000000000050e40    12 FUNC    GLOBAL DEFAULT   15 statx@@GLIBC_2.28
     6: 0000000000050e40    12 FUNC    GLOBAL DEFAULT   15 arc4random@@GLIBC_2.36
     7: 0000000000000000     0 OBJECT  GLOBAL DEFAULT  ABS GLIBC_PRIVATE
"""


def test_newer_glibc_symbols_are_those_without_an_old_enough_version() -> None:
    libm = "  9: 00000000000221a0   40 FUNC    GLOBAL DEFAULT   13 exp@@GLIBC_2.29\n"
    libm += " 10: 00000000000220a0   40 FUNC    GLOBAL DEFAULT   13 exp@GLIBC_2.2\n"
    got = newer_glibc_symbols({"libc.so.6": READELF_LIBC, "libm.so.6": libm}, (2, 28))
    # memcpy and exp have an old version too (zig's stubs bind to it); statx is 2.28
    assert got == ["_dl_find_object GLIBC_2.35 libc.so.6", "arc4random GLIBC_2.36 libc.so.6"]
    assert newer_glibc_symbols({"libc.so.6": READELF_LIBC}, (2, 36)) == []


def test_link_guard_fails_a_link_that_needs_a_newer_glibc(tmp_path: Path) -> None:
    """The guarded wrapper runs the (fake) zig, then reads the output's dynamic symbols
    with a (fake) readelf: an unversioned reference to a newer symbol fails the link."""
    home = tmp_path / "zig"
    zig = Zig(home)
    zig.binary.parent.mkdir(parents=True)
    zig.binary.write_text('#!/bin/sh\nfor a; do [ "$p" = -o ] && : > "$a"; p=$a; done\n')
    zig.binary.chmod(0o755)
    readelf = tmp_path / "readelf"
    readelf.write_text(
        "#!/bin/sh\ncat <<'END'\n"
        "   Num:    Value          Size Type    Bind   Vis      Ndx Name\n"
        "     1: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND abort@GLIBC_2.2 (3)\n"
        "     2: 0000000000000000     0 NOTYPE  GLOBAL DEFAULT  UND PyModule_Create2\n"
        "     3: 0000000000000000     0 NOTYPE  GLOBAL DEFAULT  UND _dl_find_object\n"
        "END\n"
    )
    readelf.chmod(0o755)
    symbols = tmp_path / "newer.txt"
    symbols.write_text("_dl_find_object GLIBC_2.35 libc.so.6\n")
    guard = LinkGuard(symbols, str(readelf), (2, 28))
    script = tmp_path / "cc"
    script.write_text(wrapper(zig, "cc", "s390x-linux-gnu.2.28", (), guard))
    out = tmp_path / "m.so"
    done = subprocess.run(
        ["sh", str(script), "-shared", "-o", str(out), "m.o"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert not out.exists()
    assert done.stderr.strip() == (
        "zig: fatal error: needs glibc 2.35: GLIBC_2.35 from libc.so.6 `_dl_find_object`, "
        "newer than the target glibc 2.28 (zig has no such symbol for 2.28)"
    )
    # compiling only (-c) is not a link: nothing is checked
    compiled = subprocess.run(["sh", str(script), "-c", "-o", str(out), "m.c"], check=False)
    assert compiled.returncode == 0 and out.exists()
    symbols.write_text("arc4random GLIBC_2.36 libc.so.6\n")  # not referenced: links
    linked = subprocess.run(["sh", str(script), "-shared", "-o", str(out), "m.o"], check=False)
    assert linked.returncode == 0 and out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # rustc names -lc: the archive right before it, gettid asked for
        (
            ["-shared", "std.rlib", "-lc", "-o", "m.so"],
            ["-shared", "std.rlib", "-Wl,-u,gettid", "A", "-lc", "-o", "m.so"],
        ),
        # a C link leaves libc to zig: the archive last, members only as needed
        (["-shared", "m.o", "-o", "m.so"], ["-shared", "m.o", "-o", "m.so", "A"]),
        (["-c", "m.c", "-o", "m.o"], ["-c", "m.c", "-o", "m.o"]),  # no link, no archive
    ],
)
def test_the_glibc_compat_archive_goes_before_libc(
    fake_zig: Zig, tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    """Rust's std (1.88+) calls gettid, which glibc 2.28 lacks: zig's libc stub would
    answer it unversioned, so the compat archive's hidden gettid must come first."""
    assert compat_for((2, 30), tmp_path) is None
    compat = compat_for((2, 28), tmp_path)
    assert compat is not None and compat.functions == ("gettid",)
    assert "syscall(SYS_gettid)" in compat_sources((2, 28))["gettid.c"]
    compat.archive.write_text("")  # the wrapper takes it only when it exists
    guard = LinkGuard(tmp_path / "none.txt", "true", (2, 28), compat)
    out = run_script(wrapper(fake_zig, "cc", "s390x-linux-gnu.2.28", (), guard), tmp_path, *args)
    argv = [line.removeprefix("arg:").replace(str(compat.archive), "A") for line in out[1:]]
    assert [a for a in argv if a not in ("-g0", "-Wl,--strip-debug")][3:] == expected


def test_wrapper_maps_the_hosts_system_folders_into_the_sysroot(
    fake_zig: Zig, tmp_path: Path
) -> None:
    sysroot = tmp_path / "sysroot"
    text = wrapper(fake_zig, "cc", "s390x-linux-gnu.2.28", (), sysroot=sysroot)
    host_lib = f"/usr/lib/{platform.machine()}-linux-gnu"
    args = [
        "-I/usr/include",  # Pillow's own: the host's glibc headers before zig's
        "-I/usr/local/include",
        f"-I{sysroot}/usr/include",
        "-I/usr/include/freetype2",
        f"-L{host_lib}",
        "-L/usr/lib/s390x-linux-gnu",
        "-I./src",
        "-c",
    ]
    argv = [line.removeprefix("arg:") for line in run_script(text, tmp_path, *args)[1:]]
    assert argv[4:] == [
        f"-I{sysroot}/usr/include/freetype2",
        f"-L{sysroot}/usr/lib/s390x-linux-gnu",
        "-I./src",
        "-c",
    ]
