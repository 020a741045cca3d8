"""zig as the cross compiler for targets older than the sysroot's glibc.

Debian's cross gcc links against the sysroot's glibc (bookworm: 2.36), so whatever it
builds may need symbols no RHEL 8 or SLES 15 has. ``zig cc -target
s390x-linux-gnu.2.28`` compiles and links against zig's own headers and symbol stubs of
exactly that glibc: a wheel it builds can only need what the target has (measured: a
CPython extension needs nothing newer than ``GLIBC_2.16`` and imports under emulation).
C++ gets zig's bundled libc++, linked statically into the extension. zig has no Fortran:
Debian's cross gfortran compiles (an object names no glibc version) and zig links, against
the library packs' libgfortran (manylinux2014) for ``-lgfortran`` (:func:`fortran_wrapper`).

zig comes from its PyPI wheel (``ziglang``, a self-contained x86_64 binary), unpacked
once into the cross folder of the cache root; its compile cache (libc stubs, crt files,
libc++, about a minute to build) lives beside it. It is warmed once per target
(:func:`warm_cache`), outside any build; builds then see it copy-on-write (the cross
backend's guard): what a build adds or changes is gone with it, so no build can plant an
object the next one links.

This module knows zig; :mod:`refinery.builder.crosstools` decides when to use it
(:func:`compiler_for`) and writes the wrappers.
"""

from __future__ import annotations

import fcntl
import platform
import re
import shlex
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from refinery.builder.errors import BuildRootUnavailable
from refinery.builder.tools import download_wheels, made_once
from refinery.core.glibc import Glibc, glibc_text, symbol_glibc
from refinery.core.target import glibc_floor

ZIGLANG = "ziglang==0.17.1"
#: The oldest glibc zig (and manylinux for s390x) targets.
MIN_GLIBC: Glibc = (2, 17)
ZIG_TRIPLETS = {"s390x": "s390x-linux-gnu"}

CompilerKind = Literal["gcc", "zig"]


@dataclass(frozen=True, slots=True)
class Compiler:
    """Which compilers a cross toolchain runs: Debian's cross gcc against the sysroot
    (and so the sysroot's glibc), or zig against the glibc of an older ``target``."""

    kind: CompilerKind = "gcc"
    glibc: Glibc | None = None  # zig's target glibc

    def __post_init__(self) -> None:
        if (self.kind == "zig") != (self.glibc is not None):
            raise ValueError("a zig compiler needs a target glibc, and gcc takes none")

    @property
    def label(self) -> str:
        """``gcc`` or ``zig-glibc2.28``: part of toolchain keys and records."""
        return "gcc" if self.glibc is None else f"zig-glibc{glibc_text(self.glibc)}"


GCC = Compiler()


def compiler_for(target_platform: str, sysroot_glibc: Glibc | None) -> Compiler:
    """zig for a manylinux target older than the sysroot's glibc; gcc otherwise (no
    promise to keep, or the sysroot is old enough)."""
    floor = glibc_floor(target_platform)
    if floor is None or sysroot_glibc is None or floor >= sysroot_glibc:
        return GCC
    return Compiler("zig", max(floor, MIN_GLIBC))


_GLIBC_VERSION = re.compile(rb"GLIBC_2\.(\d+)")


def libc_glibc(libc: Path) -> Glibc | None:
    """The glibc version of a ``libc.so.6`` (its newest ``GLIBC_2.N`` version name)."""
    try:
        data = libc.read_bytes()
    except OSError:
        return None
    minors = [int(m.group(1)) for m in _GLIBC_VERSION.finditer(data)]
    return (2, max(minors)) if minors else None


@dataclass(frozen=True)
class Zig:
    """An unpacked zig: ``binary`` and its shared compile ``cache``."""

    home: Path

    @property
    def binary(self) -> Path:
        return self.home / "ziglang" / "zig"

    @property
    def cache(self) -> Path:
        return self.home / "cache"


def zig_at(cross_cache: Path) -> Zig:
    """Where zig lives below the cache root's cross folder (no download)."""
    version = ZIGLANG.partition("==")[2]
    return Zig(cross_cache / f"zig-{version}")


def ensure_zig(cross_cache: Path) -> Zig:
    """zig below ``cross_cache``, unpacked from its PyPI wheel the first time."""
    zig = zig_at(cross_cache)

    def make() -> None:
        wheels = zig.home / "wheel"
        download_wheels((ZIGLANG,), wheels)
        found = sorted(wheels.glob("ziglang-*.whl"))
        if not found:
            raise BuildRootUnavailable(f"pip downloaded no wheel for {ZIGLANG}")
        with zipfile.ZipFile(found[0]) as zf:
            zf.extractall(zig.home, [n for n in zf.namelist() if n.startswith("ziglang/")])
        zig.binary.chmod(0o755)
        for wheel in found:
            wheel.unlink()
        zig.cache.mkdir(parents=True, exist_ok=True)
        (zig.home / ".complete").write_text(ZIGLANG + "\n")

    made_once(zig.home, make)
    return zig


def zig_target(arch: str, glibc: Glibc) -> str:
    """zig's ``-target`` for ``arch`` and ``glibc`` (``s390x-linux-gnu.2.28``)."""
    try:
        return f"{ZIG_TRIPLETS[arch]}.{glibc_text(glibc)}"
    except KeyError:
        raise BuildRootUnavailable(f"zig knows no target for {arch}") from None


Language = Literal["cc", "c++", "cpp"]
#: What ``-`` (stdin) is, for each wrapper language.
STDIN_LANGUAGE: dict[Language, str] = {"cc": "c", "c++": "c++", "cpp": "c"}


Archiver = Literal["ar", "ranlib"]
#: What the wrappers answer to ``-Wl,--version``: zig links ELF with LLD and takes GNU
#: ld's options. zig's own answer (``zig ld 0.17.1``) sends meson 1.5 to a linker class
#: numpy's vendored meson does not have (``ZigCCDynamicLinker``).
LINKER_VERSION = f"LLD {ZIGLANG.partition('==')[2]} (zig ld; compatible with GNU linkers)"


def _cache_env(zig: Zig) -> str:
    q = shlex.quote
    return (
        f"ZIG_GLOBAL_CACHE_DIR={q(str(zig.cache))}\n"
        f"ZIG_LOCAL_CACHE_DIR={q(str(zig.cache))}\n"
        "export ZIG_GLOBAL_CACHE_DIR ZIG_LOCAL_CACHE_DIR\n"
    )


def archiver_wrapper(zig: Zig, tool: Archiver) -> str:
    """``zig ar``/``zig ranlib`` (llvm-ar): indexes the LLVM bitcode objects of an
    ``-flto`` build too, which binutils' ``ar`` cannot."""
    return (
        "#!/bin/sh\n"
        f"# zig {tool} (llvm-{tool}): archives of zig's objects, LTO bitcode included\n"
        f"{_cache_env(zig)}"
        f'exec {shlex.quote(str(zig.binary))} {tool} "$@"\n'
    )


@dataclass(frozen=True)
class LinkGuard:
    """What a zig wrapper checks after each link: ``symbols`` lists the sysroot glibc's
    symbols that only versions newer than ``glibc`` define (``name version library``
    lines, :func:`newer_glibc_symbols`), read from the output with ``readelf``."""

    symbols: Path
    readelf: str
    glibc: Glibc
    #: :func:`compat_archive`'s output, when the target glibc lacks a function of
    #: :data:`COMPAT_FUNCTIONS` (see :func:`_compat_arm`).
    compat: Compat | None = None


@dataclass(frozen=True)
class Compat:
    """A compat archive and the functions it defines."""

    archive: Path
    functions: tuple[str, ...]


#: Wrappers newer glibc added for a system call, each with the glibc that added it and
#: its definition for an older target (hidden: it never leaves the library it is in).
#: Rust's std (1.88+) calls ``gettid`` directly; glibc < 2.30 has only the system call.
COMPAT_FUNCTIONS: dict[str, tuple[Glibc, str]] = {
    "gettid": (
        (2, 30),
        "#include <sys/syscall.h>\n#include <unistd.h>\n"
        '__attribute__((visibility("hidden"))) pid_t gettid(void)'
        " { return (pid_t)syscall(SYS_gettid); }\n",
    ),
}


def compat_for(glibc: Glibc, folder: Path) -> Compat | None:
    """The compat archive a target of ``glibc`` links (:func:`compat_archive` makes it)."""
    sources = compat_sources(glibc)
    if not sources:
        return None
    return Compat(folder / "libglibc-compat.a", tuple(n.removesuffix(".c") for n in sources))


def compat_sources(glibc: Glibc) -> dict[str, str]:
    """The :data:`COMPAT_FUNCTIONS` a target of ``glibc`` lacks: file name -> C source."""
    return {f"{name}.c": src for name, (since, src) in COMPAT_FUNCTIONS.items() if glibc < since}


def compat_archive(zig: Zig, target: str, compat: Compat) -> None:
    """Compile ``compat``'s functions for ``target`` into its archive (one member per
    function, sources beside it)."""
    folder = compat.archive.parent
    folder.mkdir(parents=True, exist_ok=True)
    objects = []
    for name in compat.functions:
        source, obj = folder / f"{name}.c", folder / f"{name}.o"
        source.write_text(COMPAT_FUNCTIONS[name][1])
        argv = [str(zig.binary), "cc", "-target", target, "-O2", "-fPIC", "-g0"]
        _zig_checked([*argv, "-c", str(source), "-o", str(obj)], zig)
        objects.append(str(obj))
    _zig_checked([str(zig.binary), "ar", "rcs", str(compat.archive), *objects], zig)


#: glibc's libraries whose symbols zig's stubs stand in for.
GLIBC_LIBRARIES = (
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "ld64.so.1",
)
_DYNSYM = re.compile(r"^\s*\d+:\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)\s+([^@\s]+)@@?(\S+)")


def newer_glibc_symbols(readelf_output: Mapping[str, str], glibc: Glibc) -> list[str]:
    """``name GLIBC_2.N library`` for every symbol the libraries define (``readelf
    --dyn-syms -W`` output per library) only in versions newer than ``glibc``: zig's
    stubs for ``glibc`` lack them, so a reference to one links unversioned (the loader
    binds it to any glibc that has it, and an older one fails at import)."""
    oldest: dict[str, tuple[Glibc, str, str]] = {}
    for library, text in readelf_output.items():
        for line in text.splitlines():
            found = _DYNSYM.match(line)
            if found is None or found.group(1) == "UND":
                continue
            name, version = found.group(2), found.group(3)
            have = symbol_glibc(version)
            if have is not None and (name not in oldest or have < oldest[name][0]):
                oldest[name] = (have, version, library)
    return sorted(
        f"{name} {version} {library}"
        for name, (have, version, library) in oldest.items()
        if have > glibc
    )


def _guard_lines(guard: LinkGuard | None) -> str:
    """Shell lines run after a successful link into ``$out``: fail it when it references a
    symbol of a newer glibc than the target's (unversioned, as zig's stubs lack it)."""
    if guard is None:
        return ""
    q = shlex.quote
    target = glibc_text(guard.glibc)
    awk = (
        'BEGIN { while ((getline l < list) > 0) { split(l, f, " "); newer[f[1]] = l } } '
        '$7 == "UND" && index($8, "@") == 0 && ($8 in newer) { print newer[$8]; exit }'
    )
    return (
        'if [ "$link" = 1 ] && [ -f "$out" ]; then\n'
        f'  bad=$({q(guard.readelf)} --dyn-syms -W "$out" 2>/dev/null'
        f" | awk -v list={q(str(guard.symbols))} {q(awk)})\n"
        '  if [ -n "$bad" ]; then\n'
        "    set -- $bad\n"
        '    v=${2#GLIBC_}; rm -f "$out"\n'
        f'    echo "zig: fatal error: needs glibc $v: $2 from $3 \\`$1\\`,'
        f' newer than the target glibc {target} (zig has no such symbol for {target})" >&2\n'
        "    exit 1\n"
        "  fi\n"
        "fi\n"
    )


def _host_dir_cases(sysroot: Path | None, packs: str) -> str:
    """``case`` arms mapping the host's system folders (and the library packs' prefix
    ``packs`` a compiled ``*-config`` program prints) into ``sysroot`` (see
    :func:`wrapper`); none without a sysroot."""
    if sysroot is None:
        return ""
    s = shlex.quote(str(sysroot))
    host_lib = f"/usr/lib/{platform.machine()}-linux-gnu"
    return (
        f"    -I/usr/include|-I/usr/local/include|-I{s}/usr/include|-I{s}/usr/include/) ;;\n"
        f'    -I/usr/include/*) set -- "$@" "-I{s}${{a#-I}}" ;;\n'
        f"    -L{host_lib}|-L{host_lib}/*|-L/usr/local/lib|-L/usr/local/lib/*) ;;\n"
        f'    -L/usr/lib|-L/usr/lib/*|-L/lib|-L/lib/*) set -- "$@" "-L{s}${{a#-L}}" ;;\n'
        + (
            f'    -[IL]/{packs}|-[IL]/{packs}/*) set -- "$@" "${{a%%/*}}{s}/${{a#*/}}" ;;\n'
            if packs
            else ""
        )
    )


#: The Fortran sources the Fortran wrapper compiles itself in a compile-and-link command.
FORTRAN_SOURCES = (
    "*.f|*.F|*.for|*.FOR|*.ftn|*.f77|*.F77|*.f90|*.F90|*.f95|*.F95|*.f03|*.F03|*.f08|*.F08"
)
#: ``-march`` zig's clang uses for each architecture when a build names none (measured,
#: zig 0.17.1 ``-target s390x-linux-gnu``: ``__ARCH__`` 11, ``__VX__``, i.e. z13):
#: the Fortran objects are compiled for the same machine as the C ones.
ZIG_DEFAULT_MARCH = {"s390x": "arch11"}


def _fortran_runtime(sysroot: Path | None, packs: str, triplet: str) -> tuple[str, str]:
    """Shell lines (before the argument loop) and ``case`` arms of a zig link that
    takes gfortran's objects: ``-lgfortran`` is the library packs' libgfortran (the
    openblas pack's, manylinux2014: glibc 2.17), never the cross compiler's (Debian's,
    built against glibc 2.36); the cross compiler's library folders (meson passes
    gfortran's search folders to a C linker) are dropped; s390x has no libquadmath.
    A program (no ``-shared``) linking it finds it below ``/packs`` (meson runs its
    sanity check under qemu, whose ``-L`` sysroot holds the packs)."""
    if sysroot is None or not packs:
        return "", ""
    lib = f"{sysroot}/{packs}/lib"
    head = (
        "gf=; shared=0; gflink=0\n"
        f'for f in {shlex.quote(lib)}/libgfortran*.so*; do [ -f "$f" ] && gf=$f && break; done\n'
    )
    arms = (
        f"    -L/usr/{triplet}|-L/usr/{triplet}/*|-L/usr/lib/gcc-cross|-L/usr/lib/gcc-cross/*) ;;\n"
        "    -lquadmath) ;;\n"
        '    -lgfortran) if [ -z "$gf" ]; then\n'
        '        echo "zig: fatal error: no libgfortran for the target glibc below'
        f" /{packs}/lib: a Fortran link needs the openblas library pack (its manylinux"
        " libgfortran); the cross compiler's needs glibc 2.36\" >&2; exit 1\n"
        '      fi; gflink=1; set -- "$@" "$gf" ;;\n'
        '    -shared) shared=1; set -- "$@" "$a" ;;\n'
    )
    return head, arms


def _fortran_rpath(sysroot: Path | None, packs: str) -> str:
    """A program linking the packs' libgfortran runs under qemu: ``-rpath /packs/lib``."""
    if sysroot is None or not packs:
        return ""
    return (
        '[ "$link" = 1 ] && [ "$gflink" = 1 ] && [ "$shared" = 0 ]'
        f' && set -- "$@" -Wl,-rpath,/{packs}/lib\n'
    )


def _pack_libdir(sysroot: Path | None, packs: str) -> str:
    """A link also searches the library packs' folder last (a package naming only
    ``-lgmp`` finds the pack's); their include folder is in ``include_after``."""
    if sysroot is None or not packs:
        return ""
    lib = shlex.quote(str(sysroot / packs / "lib"))
    return f'[ "$link" = 1 ] && [ -d {lib} ] && set -- "$@" -L{lib}\n'


def wrapper(
    zig: Zig,
    language: Language,
    target: str,
    include_after: tuple[Path, ...],
    guard: LinkGuard | None = None,
    sysroot: Path | None = None,
    packs: str = "",
) -> str:
    """A compiler script running ``zig cc``/``zig c++`` (``cpp``: the preprocessor) for
    ``target``.

    zig's own libc headers come first; the sysroot's include folders are searched only
    after them (``-idirafter``) for what zig does not ship (Python's headers, library
    headers). crossenv's ``CPATH`` would put the sysroot's glibc headers first, its
    ``LIBRARY_PATH`` the sysroot's libraries: unset. Arguments zig does not take are
    dropped or mapped: ``--target=`` (the ``cc`` crate adds one), ``-cpp`` (meson's
    define probe), ``-Wl,-Bsymbolic-functions`` (Debian's LDFLAGS; zig's linker has only
    ``-Bsymbolic``), ``-lstdc++`` (zig's C++ library is libc++: the sysroot's libstdc++
    would bring the sysroot's glibc back), ``-lgcc_s`` (rustc's unwinder: zig links its
    own libunwind), ``-Wl,-strip-all`` (GNU ld's one-dash spelling: ``--strip-all``);
    ``-Wl,--version`` is answered as LLD (:data:`LINKER_VERSION`).
    Debug information only when a build asks (``-g0`` first), and none in what a link
    writes (``-Wl,--strip-debug``: wheels ship without it). With a ``guard``, a link
    that references a glibc symbol newer than the target fails with the symbol (zig's
    headers declare it, its stubs lack it), and its compat archive goes in (Rust's std
    calls ``gettid``: :func:`_compat_arm`). With a ``sysroot``,
    the host's system folders a package names itself (Pillow adds ``-I/usr/include``
    and ``-L/usr/lib/<multiarch>``) are mapped into the sysroot, and the bare include
    folders dropped (they are searched after zig's headers already): the host's or the
    sysroot's glibc headers before zig's break the build (``L_tmpnam`` undeclared).
    ``packs`` (the library packs' prefix below the sysroot) is mapped the same way, and
    a link searches its ``lib`` last."""
    q = shlex.quote
    gf_head, gf_arms = _fortran_runtime(sysroot, packs, target.partition(".")[0])
    mode = {"cc": "cc", "c++": "c++", "cpp": "cc -E"}[language]
    after = " ".join(f"-idirafter {q(str(p))}" for p in include_after)
    guard = None if language == "cpp" else guard  # the preprocessor links nothing
    # -g0 first: zig's clang emits DWARF even without -g (scipy's wheel: 117 MB, 454 MB
    # installed, 123 MB without it); a build's own -g comes later and wins
    # and a link keeps no debug information at all: Python's own CFLAGS say -g, and what
    # zig links from its cache (libc++, libunwind, compiler-rt) carries DWARF
    strip = "" if language == "cpp" else 'strip=; [ "$link" = 1 ] && strip=-Wl,--strip-debug\n'
    compat = None if guard is None else guard.compat
    flags = "-g0" if language == "cpp" else "-g0 $strip"
    run = f'{q(str(zig.binary))} {mode} -target {q(target)} {after} {flags} "$@"'
    tail = f"exec {run}\n" if guard is None else f"{run} || exit $?\n{_guard_lines(guard)}"
    return (
        "#!/bin/sh\n"
        f"# zig {mode} for {target}: the target's glibc, not the sysroot's\n"
        "unset CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH LIBRARY_PATH\n"
        f"{_cache_env(zig)}{gf_head}{_compat_head(compat)}"
        "n=$#; out=a.out; link=1; prev=\n"
        'while [ "$n" -gt 0 ]; do\n'
        "  a=$1; shift; n=$((n - 1))\n"
        '  [ "$prev" = -o ] && out=$a\n'
        "  prev=$a\n"
        '  case "$a" in\n'
        "    --target=*|-Wl,-Bsymbolic-functions|-cpp) ;;\n"
        # LTO with zig's libc++ on s390x links non-PIC GOT references (lld: R_390_PC32DBL
        # against _GLOBAL_OFFSET_TABLE_; Levenshtein, awkward-cpp): built without it
        "    -flto|-flto=*|-ffat-lto-objects|-fno-fat-lto-objects) ;;\n"
        # stdin without -x (meson 1.2's define probe `-E -dM -`): zig takes the target
        # for clang's and fails ("version '.2.28' in target triple ... is invalid")
        f'    -) set -- "$@" -x {STDIN_LANGUAGE[language]} - ;;\n'
        f"{gf_arms}"
        f"{_host_dir_cases(sysroot, packs)}"
        f"    -Wl,--version) echo {q(LINKER_VERSION)}; exit 0 ;;\n"
        f"{_compat_arm(compat)}"
        '    -lstdc++) set -- "$@" -lc++ ;;\n'
        '    -lgcc_s) set -- "$@" -lunwind ;;\n'
        # GNU ld's one-dash spellings of its long options (sentencepiece's setup.py)
        '    -Wl,-strip-all|-Wl,-strip-debug) set -- "$@" "-Wl,-${a#-Wl,}" ;;\n'
        '    -c|-E|-S|-M|-MM) link=0; set -- "$@" "$a" ;;\n'
        '    *) set -- "$@" "$a" ;;\n'
        "  esac\n"
        "done\n"
        f"{_pack_libdir(sysroot, packs)}{_fortran_rpath(sysroot, packs)}"
        f"{_compat_tail(compat)}{strip}{tail}"
    )


def _compat_head(compat: Compat | None) -> str:
    return "" if compat is None else f"compat={shlex.quote(str(compat.archive))}\n"


def _compat_arm(compat: Compat | None) -> str:
    """A link naming ``-lc`` (rustc's do) gets the compat archive right before it, with
    its functions asked for (``-Wl,-u,NAME``): zig's libc stub for the target would
    otherwise answer them, unversioned, and a library loaded late (Rust's std) binds
    to that; an object of the link's own that defines one still wins."""
    if compat is None:
        return ""
    wanted = " ".join(f"-Wl,-u,{f}" for f in compat.functions)
    return (
        f'    -lc) [ -f "$compat" ] && set -- "$@" {wanted} "$compat"; compat=;'
        ' set -- "$@" "$a" ;;\n'
    )


def _compat_tail(compat: Compat | None) -> str:
    """A link without ``-lc`` (zig adds libc after everything) takes it last, members
    only for what is left undefined."""
    if compat is None:
        return ""
    return '[ "$link" = 1 ] && [ -n "$compat" ] && [ -f "$compat" ] && set -- "$@" "$compat"\n'


#: What :func:`warm_cache` compiles: a C library, a C program (crt files) and a C++
#: library (libc++, libc++abi, libunwind), with the flags extension builds use.
_WARM = (
    ("cc", "warm.c", "int refinery_warm(int x) { return x + 1; }\n", ("-shared", "-fPIC", "-O2")),
    ("cc", "main.c", "int main(void) { return 0; }\n", ("-O2",)),
    (
        "c++",
        "warm.cpp",
        "#include <string>\n#include <vector>\n"
        "std::string refinery_warm(int n) { return std::to_string(std::vector<int>(n).size()); }\n",
        ("-shared", "-fPIC", "-O2"),
    ),
    (
        "c++",
        "warm3.cpp",
        '#include <string>\nstd::string w3() { return "3"; }\n',
        ("-shared", "-fPIC", "-O3"),
    ),
)


def warm_cache(zig: Zig, target: str) -> None:
    """Fill zig's shared cache for ``target`` once (libc stubs, crt files, libc++), with
    the cache writable and no build running: builds see it copy-on-write after this, and
    what they would otherwise build into it on first use is there already."""
    mark = zig.cache / f".warm-{target}"
    if mark.is_file():
        return
    zig.cache.mkdir(parents=True, exist_ok=True)
    with open(zig.home / ".warm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if mark.is_file():
            return
        with tempfile.TemporaryDirectory(prefix="zig-warm.") as tmp:
            for mode, name, text, flags in _WARM:
                source = Path(tmp) / name
                source.write_text(text)
                argv = [str(zig.binary), mode, "-target", target, *flags, str(source)]
                _zig_checked([*argv, "-o", str(source.with_suffix(".out"))], zig, zig.cache)
        mark.write_text(ZIGLANG + "\n")


def _zig_checked(argv: Sequence[str], zig: Zig, cache: Path | None = None) -> None:
    """Run a zig command outside any build, with ``cache`` (default: a throwaway one)."""
    with tempfile.TemporaryDirectory(prefix="zig-cache.") as tmp:
        where = str(cache or tmp)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(zig.home)}
        env.update(ZIG_GLOBAL_CACHE_DIR=where, ZIG_LOCAL_CACHE_DIR=where)
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise BuildRootUnavailable(
            f"zig failed ({' '.join(argv[1:4])} …): {done.stderr.strip()[-500:]}"
        )


#: Arguments after which gfortran takes the next argument as their value.
_FORTRAN_VALUE_FLAGS = "-I|-J|-D|-U|-include|-isystem|-idirafter|-MF|-MT|-MQ|-x"


def fortran_wrapper(gfortran: str, linker: Path, sysroot: Path, packs: str, march: str) -> str:
    """A Fortran compiler for zig builds: Debian's cross gfortran compiles (an object
    names no glibc symbol version: only a link pins one), zig's C driver ``linker`` (the
    C wrapper, with its link guard and the packs' libgfortran for ``-lgfortran``) links.

    Compiling (``-c``, ``-E``, …) and questions (``--version``, ``-dumpversion``) go to
    gfortran with ``--sysroot`` and ``-march`` first (the build's own ``-march`` comes
    later and wins); ``-flto`` is dropped (zig cannot link GCC's bytecode objects).
    ``-print-search-dirs`` answers only the packs' library folder: meson hands
    gfortran's library folders to whichever driver links, and the cross compiler's hold
    a libgfortran for glibc 2.36. A link compiles its Fortran sources first (meson's
    sanity check compiles and links at once), then runs ``linker`` with the objects and
    the link arguments only, adding ``-lgfortran -lm`` as gfortran's own link would."""
    q = shlex.quote
    libs = f"{sysroot}/{packs}/lib"
    return (
        "#!/bin/bash\n"
        "# gfortran compiles for the target; zig links (the target's glibc, not the sysroot's)\n"
        "unset CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH LIBRARY_PATH\n"
        f"GF=({q(gfortran)} --sysroot={q(str(sysroot))}{f' -march={q(march)}' if march else ''})\n"
        "link=1\n"
        'for a in "$@"; do\n'
        '  case "$a" in\n'
        "    -print-search-dirs|--print-search-dirs)\n"
        f"      printf '%s\\n' 'install: /' 'programs: =' {q('libraries: =' + libs)}; exit 0 ;;\n"
        "    -c|-E|-S|-M|-MM|-fsyntax-only|--version|--help|--help=*|-dump*|-print-*|--print-*)"
        " link=0 ;;\n"
        "  esac\n"
        "done\n"
        '[ "$#" = 1 ] && [ "$1" = -v ] && link=0\n'
        'if [ "$link" = 0 ]; then\n'
        "  args=()\n"
        '  for a in "$@"; do\n'
        '    case "$a" in -flto|-flto=*|-ffat-lto-objects|-fno-fat-lto-objects) ;;'
        ' *) args+=("$a") ;; esac\n'
        "  done\n"
        '  exec "${GF[@]}" "${args[@]}"\n'
        "fi\n"
        f"{_fortran_link_lines(linker)}"
    )


def _fortran_link_lines(linker: Path) -> str:
    """The link half of :func:`fortran_wrapper` (bash): sort the arguments into
    compile flags, Fortran sources and link arguments; compile; link with ``linker``."""
    return (
        "cflags=(); largs=(); srcs=()\n"
        'while [ "$#" -gt 0 ]; do\n'
        "  a=$1; shift\n"
        '  case "$a" in\n'
        '    -o|-Xlinker) largs+=("$a" "$1"); shift ;;\n'
        f'    {_FORTRAN_VALUE_FLAGS}) cflags+=("$a" "$1"); shift ;;\n'
        f'    {FORTRAN_SOURCES}) srcs+=("$a") ;;\n'
        "    -static-libgfortran|-static-libgcc|-static-libquadmath|-flto|-flto=*) ;;\n"
        "    -l*|-L*|-Wl,*|-shared|-static|-pie|-no-pie|-rdynamic|-nostdlib|-nostartfiles"
        '|-nodefaultlibs|-s) largs+=("$a") ;;\n'
        '    -fPIC|-fpic|-fPIE|-fpie|-O*|-g*|-pthread) cflags+=("$a"); largs+=("$a") ;;\n'
        '    -*) cflags+=("$a") ;;\n'
        '    *) largs+=("$a") ;;\n'
        "  esac\n"
        "done\n"
        "objs=()\n"
        'if [ "${#srcs[@]}" -gt 0 ]; then\n'
        '  tmp=$(mktemp -d "${TMPDIR:-/tmp}/gfortran-link.XXXXXX") || exit 1\n'
        "  trap 'rm -rf \"$tmp\"' EXIT\n"
        "  i=0\n"
        '  for s in "${srcs[@]}"; do\n'
        "    i=$((i + 1))\n"
        '    "${GF[@]}" "${cflags[@]}" -c "$s" -o "$tmp/$i.o" || exit $?\n'
        '    objs+=("$tmp/$i.o")\n'
        "  done\n"
        "fi\n"
        f'{shlex.quote(str(linker))} "${{objs[@]}}" "${{largs[@]}}" -lgfortran -lm\n'
    )
