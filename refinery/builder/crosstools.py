"""The cached cross toolchain of the ``cross`` backend: crossenv, wrappers, cross files.

One toolchain per (root, target Python) lives in the cross folder of the one cache root
(``CacheRoot.cross/<key>``), keyed by the root's key and digest, the Python versions, the
crossenv and cross-gcc versions. It holds:

* ``sysroot/``: an empty mount point. Every build mounts its own throwaway copy of the
  s390x root there, in a private mount namespace, so the baked-in paths below (crossenv's
  sysconfig, the wrappers, the cross files) are the same for every build;
* ``buildpy/``: a venv of the host Python with crossenv; ``venv/``: the crossenv made
  from it (``venv/cross/bin/python`` is the cross-python reporting ``linux-s390x``);
* ``bin/``: wrappers that pin the sysroot: the Debian cross compilers with
  ``--sysroot`` (crossenv keeps only the first word of ``--cc``), a ``pkg-config``
  that sees only the sysroot's ``.pc`` files, and ``xml2-config``/``xslt-config``
  answering from it (the host's amd64 ``*-config`` scripts must never answer);
* ``meson-cross.ini`` (meson-python) and ``toolchain.cmake`` (CMake ≥ 3.21 reads
  ``CMAKE_TOOLCHAIN_FILE`` from the environment).

crossenv bakes absolute paths into its scripts, so a toolchain cannot be made in a
staging folder and renamed: it is made in place under a lock and counts only once its
``.complete`` marker is written (an unfinished folder is removed and made again).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.crossrust import RustToolchain, rust_target
from refinery.builder.errors import BuildRootUnavailable
from refinery.builder.packs.recipes import PACK_PREFIX
from refinery.builder.proc import OnLine, run
from refinery.builder.rootfs import unshare_argv
from refinery.builder.tools import made_once
from refinery.builder.zig import (
    GCC,
    GLIBC_LIBRARIES,
    ZIG_DEFAULT_MARCH,
    ZIGLANG,
    Archiver,
    Compat,
    Compiler,
    Language,
    LinkGuard,
    Zig,
    archiver_wrapper,
    compat_archive,
    compat_for,
    ensure_zig,
    fortran_wrapper,
    newer_glibc_symbols,
    zig_target,
)
from refinery.builder.zig import wrapper as zig_wrapper

CROSSENV = "crossenv==1.6.2"
TOOLCHAIN_VERSION = (
    19  # 5: packs first on the pkg-config path; 6-7: zig link guard; 8: shadows; 9: host dirs
    # mapped; 10: zig searches the library packs' include and lib folders; 11: zig stdin -x;
    # 12: the cross-python is meson's host python; 13: CMake finds the build requirements'
    # own CMake files, zig drops -flto; 14: Fortran in zig builds (gfortran compiles, zig links);
    # 15: zig without debug information unless asked (-g0 first); 16: links strip debug info;
    # 17: zig links take the glibc compat archive (gettid for glibc < 2.30) last; 18: CMake
    # searches the library packs' prefix first; 19: zig takes -Wl,-strip-all
)
#: The environment variable naming the build requirements' folders for CMake (``;``).
CMAKE_BUILD_PREFIXES = "REFINERY_CMAKE_BUILD_PREFIXES"
#: The build machine's own compilers, for what a cross build compiles to run on it
#: (autoconf's and meson's ``*_FOR_BUILD``, the ``cc`` crate's ``HOST_*``).
BUILD_MACHINE_CC = {
    "CC_FOR_BUILD": "gcc",
    "CXX_FOR_BUILD": "g++",
    "HOST_CC": "gcc",
    "HOST_CXX": "g++",
}
TRIPLETS = {"s390x": "s390x-linux-gnu"}
QEMU = {"s390x": "qemu-s390x-static"}
ENDIAN = {"s390x": "big", "x86_64": "little", "aarch64": "little", "ppc64le": "little"}
#: Compiler wrappers: wrapper name suffix -> the Debian cross tool it pins to the sysroot.
COMPILERS = ("gcc", "g++", "cpp", "c++", "gfortran")
#: ``*-config`` scripts answered from the sysroot's pkg-config: script -> modules.
CONFIG_SCRIPTS: dict[str, tuple[str, ...]] = {
    "xml2-config": ("libxml-2.0",),
    "xslt-config": ("libxslt", "libexslt"),
}
#: Host tools a cross build needs (besides the root's own prerequisites).
HOST_TOOLS = ("pkg-config", "unshare", "mount")

Which = Callable[[str], str | None]


def triplet(arch: str) -> str:
    try:
        return TRIPLETS[arch]
    except KeyError:
        raise BuildRootUnavailable(f"no cross toolchain is known for {arch}") from None


def missing_tools(arch: str, which: Which = shutil.which) -> tuple[str, ...]:
    """Host programs the cross backend needs for ``arch`` that are not on PATH."""
    wanted = [f"{TRIPLETS.get(arch, arch)}-gcc", f"{TRIPLETS.get(arch, arch)}-g++"]
    wanted += [QEMU.get(arch, f"qemu-{arch}-static"), *HOST_TOOLS]
    return tuple(tool for tool in wanted if which(tool) is None)


def compiler_wrapper(real: str, sysroot: Path) -> str:
    """A compiler that always compiles and links against ``sysroot``."""
    return (
        "#!/bin/sh\n"
        "# the Debian cross compiler, pinned to the build's sysroot\n"
        f'exec {shlex.quote(real)} --sysroot={shlex.quote(str(sysroot))} "$@"\n'
    )


def pkg_config_dirs(sysroot: Path, multiarch: str) -> str:
    """The sysroot's ``.pc`` folders; library packs (installed by a fix) come first."""
    subs = (f"{PACK_PREFIX}/lib/pkgconfig", f"usr/lib/{multiarch}/pkgconfig", "usr/lib/pkgconfig")
    return ":".join(str(sysroot / sub) for sub in (*subs, "usr/share/pkgconfig"))


def pkg_config_wrapper(real: str, sysroot: Path, multiarch: str) -> str:
    """A pkg-config that sees only the sysroot's ``.pc`` files and prefixes its paths."""
    q = shlex.quote
    return (
        "#!/bin/sh\n"
        "# pkg-config answering for the build's sysroot only\n"
        f"PKG_CONFIG_LIBDIR={q(pkg_config_dirs(sysroot, multiarch))}\n"
        f"PKG_CONFIG_SYSROOT_DIR={q(str(sysroot))}\n"
        "export PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR\n"
        "unset PKG_CONFIG_PATH\n"
        f'exec {q(real)} "$@"\n'
    )


def config_script_wrapper(pkg_config: Path, modules: Sequence[str], sysroot: Path) -> str:
    """An ``xml2-config``-style script answering ``--cflags``/``--libs``/``--version``
    from the sysroot's pkg-config (fails like a missing ``-dev`` package when the
    ``.pc`` file is absent)."""
    q = shlex.quote
    return (
        "#!/bin/sh\n"
        "# a *-config script answering from the sysroot's pkg-config\n"
        f"PC={q(str(pkg_config))}\n"
        f"MODULES={q(' '.join(modules))}\n"
        'args=""\n'
        'for a in "$@"; do\n'
        '  case "$a" in\n'
        '    --cflags) args="$args --cflags" ;;\n'
        '    --libs) args="$args --libs" ;;\n'
        "    --dynamic|--shared) ;;\n"
        '    --version|--modversion) exec "$PC" --modversion "${MODULES%% *}" ;;\n'
        f"    --prefix) echo {q(str(sysroot / 'usr'))}; exit 0 ;;\n"
        '    *) echo "$0: unsupported option $a" >&2; exit 1 ;;\n'
        "  esac\n"
        "done\n"
        'exec "$PC" $args $MODULES\n'
    )


def _ini_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def meson_cross_file(tc: CrossToolchain) -> str:
    """meson's cross file: the wrappers, qemu as exe wrapper, host and build machine.

    crossenv makes ``platform.machine()`` say s390x, so meson would take the build
    machine for s390x and run target programs directly: ``needs_exe_wrapper`` and an
    explicit ``[build_machine]`` prevent that."""
    arch, s = tc.arch, tc.sysroot
    build = tc.build_machine
    binaries = {
        "c": str(tc.compiler("gcc")),
        "cpp": str(tc.compiler("g++")),
        "ar": tc.archiver("ar"),
        "strip": f"/usr/bin/{tc.triplet}-strip",
        "pkg-config": str(tc.bin / "pkg-config"),
        "pkgconfig": str(tc.bin / "pkg-config"),
        # the host machine's python: without it meson 1.12 found the build-python and
        # named modules `_x.cpython-311-x86_64-linux-gnu.so` in an s390x wheel
        "python": str(tc.cross_python),
    }
    # always ours (a plain refusal without a cross gfortran): never the host's gfortran
    binaries["fortran"] = str(tc.compiler("gfortran"))
    lines = ["[binaries]", *(f"{key} = '{value}'" for key, value in binaries.items())]
    lines.append(f"exe_wrapper = {_ini_list([QEMU[arch], '-L', str(s)])}")
    lines += [
        "",
        "[properties]",
        "needs_exe_wrapper = true",
        f"sys_root = '{s}'",
        f"pkg_config_libdir = '{pkg_config_dirs(s, tc.triplet)}'",
        "",
        "[host_machine]",
        "system = 'linux'",
        f"cpu_family = '{arch}'",
        f"cpu = '{arch}'",
        f"endian = '{ENDIAN[arch]}'",
        "",
        "[build_machine]",
        "system = 'linux'",
        f"cpu_family = '{build}'",
        f"cpu = '{build}'",
        f"endian = '{ENDIAN.get(build, 'little')}'",
    ]
    return "\n".join(lines) + "\n"


def cmake_toolchain(tc: CrossToolchain) -> str:
    """A CMake toolchain file for the sysroot (with gcc, CMake adds ``--sysroot``
    itself; zig's wrappers must not get one: they bring the target's libc)."""
    s, t = tc.sysroot, tc.triplet
    lines = [
        f"# the refinery's cross toolchain: {tc.compilers.label} + the build's sysroot",
        "set(CMAKE_SYSTEM_NAME Linux)",
        f"set(CMAKE_SYSTEM_PROCESSOR {tc.arch})",
    ]
    if tc.zig is None:
        lines += [
            f"set(CMAKE_SYSROOT {s})",
            f"set(CMAKE_C_COMPILER /usr/bin/{t}-gcc)",
            f"set(CMAKE_CXX_COMPILER /usr/bin/{t}-g++)",
        ]
    else:
        lines += [
            f"set(CMAKE_C_COMPILER {tc.compiler('gcc')})",
            f"set(CMAKE_CXX_COMPILER {tc.compiler('g++')})",
        ]
    if tc.has_fortran:
        fortran = f"/usr/bin/{t}-gfortran" if tc.zig is None else str(tc.compiler("gfortran"))
        lines.append(f"set(CMAKE_Fortran_COMPILER {fortran})")
    lines += [
        f'set(CMAKE_AR {tc.archiver("ar")} CACHE FILEPATH "")',
        f'set(CMAKE_RANLIB {tc.archiver("ranlib")} CACHE FILEPATH "")',
        f"set(CMAKE_FIND_ROOT_PATH {s})",
        # the build requirements' folders (pybind11's CMake files): a path below a root is
        # searched as it is, the rest only inside the sysroot
        f"list(APPEND CMAKE_FIND_ROOT_PATH $ENV{{{CMAKE_BUILD_PREFIXES}}})",
        # library packs (installed by a fix) before the sysroot's own, as for the compilers
        # and pkg-config: find_library/find_path/find_package look below {sysroot}/{pack}
        f"list(PREPEND CMAKE_PREFIX_PATH /{PACK_PREFIX})",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)",
        f"set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/{QEMU[tc.arch]};-L;{s})",
        f'set(ENV{{PKG_CONFIG_LIBDIR}} "{pkg_config_dirs(s, t)}")',
        f'set(ENV{{PKG_CONFIG_SYSROOT_DIR}} "{s}")',
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CrossToolchain:
    """Where one cached toolchain lives and what it is for (see the module docstring)."""

    dir: Path
    arch: str
    python: str  # target Python, "3.11"
    has_fortran: bool = False
    build_machine: str = "x86_64"  # the host's ``uname -m``
    compilers: Compiler = GCC
    zig: Zig | None = None  # the zig the wrappers run (zig compilers only)

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def sysroot(self) -> Path:
        """The fixed mount point of every build's own sysroot (empty outside builds)."""
        return self.dir / "sysroot"

    @property
    def triplet(self) -> str:
        return triplet(self.arch)

    @property
    def bin(self) -> Path:
        return self.dir / "bin"

    def compiler(self, tool: str) -> Path:
        return self.bin / f"{self.triplet}-{tool}"

    def archiver(self, tool: str, *, lto: bool = True) -> str:
        """``ar``/``ranlib`` for the compilers' objects: zig's (llvm-ar, reads LTO
        bitcode) or binutils' (``lto``: the ``gcc-`` variant with gcc's LTO plugin)."""
        if self.zig is not None:
            return str(self.bin / f"{self.triplet}-{tool}")
        return f"/usr/bin/{self.triplet}-gcc-{tool}" if lto else f"{self.triplet}-{tool}"

    @property
    def venv(self) -> Path:
        return self.dir / "venv"

    @property
    def cross_python(self) -> Path:
        """crossenv's cross-python: runs on the host, builds for the target."""
        return self.venv / "cross" / "bin" / f"python{self.python}"

    @property
    def build_python(self) -> Path:
        """crossenv's build-python: the host interpreter of the venv (build machine)."""
        return self.venv / "build" / "bin" / f"python{self.python}"

    @property
    def complete(self) -> bool:
        return (self.dir / ".complete").is_file()

    @property
    def glibc_symbols(self) -> Path:
        """zig mode: the sysroot glibc's symbols newer than the target glibc."""
        return self.dir / "glibc-newer.txt"

    @property
    def glibc_compat(self) -> Compat | None:
        """zig mode: what the target glibc lacks of the functions builds call
        (:func:`~refinery.builder.zig.compat_archive` makes it); None when nothing."""
        glibc = self.compilers.glibc
        return None if glibc is None else compat_for(glibc, self.dir / "glibc-compat")

    @property
    def meson_cross_file(self) -> Path:
        return self.dir / "meson-cross.ini"

    @property
    def cmake_toolchain_file(self) -> Path:
        return self.dir / "toolchain.cmake"

    def env(self, *, home: Path, tmp: Path) -> dict[str, str]:
        """The whole environment of a cross build command (an allow-list: nothing of the
        host's environment passes, so the host's amd64 ``-dev`` files cannot leak in)."""
        s = str(self.sysroot)
        path = [self.venv / "cross" / "bin", self.bin, self.venv / "bin", self.venv / "build/bin"]
        return {
            "PATH": ":".join([*(str(p) for p in path), "/usr/bin", "/bin"]),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
            "CROSS_SYSROOT": s,
            "PKG_CONFIG": str(self.bin / "pkg-config"),
            "PKG_CONFIG_LIBDIR": pkg_config_dirs(self.sysroot, self.triplet),
            "PKG_CONFIG_SYSROOT_DIR": s,
            "XML2_CONFIG": str(self.bin / "xml2-config"),
            "XSLT_CONFIG": str(self.bin / "xslt-config"),
            "QEMU_LD_PREFIX": s,
            "CMAKE_TOOLCHAIN_FILE": str(self.cmake_toolchain_file),
            # a vendored library's own configure or Makefile (uvloop's libuv, blis) compiles
            # with $CC: the target's compiler, as autoconf and conda-forge's cross builds
            "CC": str(self.compiler("gcc")),
            "CXX": str(self.compiler("g++")),
            "AR": self.archiver("ar"),
            "RANLIB": self.archiver("ranlib"),
            # ... and a configure run without --host (uvloop's libuv, PyNaCl's libsodium)
            # would take the build machine for the host: binfmt runs its test programs, so
            # it never notices (libsodium then declared s390x little-endian). autoconf
            # takes host_alias from the environment (a precious variable) like --host.
            "host_alias": self.triplet,
            **BUILD_MACHINE_CC,
        }

    def config_settings(self, build_backend: str) -> tuple[str, ...]:
        """PEP 517 config settings this build backend needs to cross-compile."""
        if build_backend == "mesonpy":
            return (f"setup-args=--cross-file={self.meson_cross_file}",)
        return ()

    def cargo_env(self, rust: RustToolchain) -> dict[str, str]:
        """What cargo, the ``cc`` crate and PyO3 need to build for the target (added to
        :meth:`env` when the build backend compiles Rust)."""
        target = rust_target(self.arch)
        upper, lower = target.upper().replace("-", "_"), target.replace("-", "_")
        return {
            "RUSTC": str(rust.bin / "rustc"),
            "CARGO": str(rust.bin / "cargo"),
            "CARGO_BUILD_TARGET": target,
            f"CARGO_TARGET_{upper}_LINKER": str(self.compiler("gcc")),
            f"CC_{lower}": str(self.compiler("gcc")),
            f"CXX_{lower}": str(self.compiler("g++")),
            f"AR_{lower}": self.archiver("ar", lto=False),
            "PYO3_CROSS_LIB_DIR": str(self.sysroot / f"usr/lib/python{self.python}"),
            "PYO3_CROSS_PYTHON_VERSION": self.python,
        }


# --- build requirements on the build machine ----------------------------------------
#: Run by the cross-python: prints the build requirements pypa/build would install,
#: ``static`` ([build-system].requires, or the legacy default) or ``wheel`` (the
#: backend's get_requires_for_build_wheel). argv: frontend path, project, kind, settings.
REQUIRES_MARK = "refinery-build-requires: "
REQUIRES_SCRIPT = (
    "import json, sys; sys.path[:0] = sys.argv[1].split(':'); import build; "
    "b = build.ProjectBuilder(sys.argv[2]); kind = sys.argv[3]; "
    "reqs = b.build_system_requires if kind == 'static' else "
    "b.get_requires_for_build('wheel', json.loads(sys.argv[4])); "
    f"print({REQUIRES_MARK!r} + json.dumps(sorted(reqs)))"
)


def requires_argv(
    tc: CrossToolchain, frontend: str, project: str, kind: str, settings: Sequence[str]
) -> list[str]:
    """The cross-python asking pypa/build for the ``kind`` build requirements."""
    pairs = dict(s.partition("=")[::2] for s in settings)
    return [str(tc.cross_python), "-c", REQUIRES_SCRIPT, frontend, project, kind, json.dumps(pairs)]


def parse_requires(lines: Sequence[str]) -> tuple[str, ...] | None:
    """The requirements :data:`REQUIRES_SCRIPT` printed (None: it printed none)."""
    for line in reversed(lines):
        if line.startswith(REQUIRES_MARK):
            return tuple(json.loads(line.removeprefix(REQUIRES_MARK)))
    return None


def install_argv(tc: CrossToolchain, target: Path, requirements: Sequence[str]) -> list[str]:
    """build-pip installing ``requirements`` for the build machine into ``target``."""
    return [
        str(tc.build_python),
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        *requirements,
    ]


# --- making one ----------------------------------------------------------------------
@dataclass(frozen=True)
class ToolchainInputs:
    """What a toolchain is made from; :meth:`key` names its cache folder."""

    arch: str
    python: str  # target Python "3.11"
    host_python: str  # path of a host interpreter of the same minor version
    root_key: str  # the root's key and digest
    lower: Path  # the unpacked root (read-only), source of crossenv's sysconfig
    compiler: Compiler = GCC

    def key(self, versions: Mapping[str, str]) -> str:
        blob = json.dumps(
            {
                "arch": self.arch,
                "python": self.python,
                "root": self.root_key,
                "crossenv": CROSSENV,
                "v": TOOLCHAIN_VERSION,
                "compiler": self.compiler.label,
                **versions,
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return f"{self.arch}-py{self.python}-{self.compiler.label}-{digest}"


def _output(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def tool_versions(inputs: ToolchainInputs) -> dict[str, str]:
    """The versions that make a toolchain (cross gcc, zig, host Python)."""
    t = triplet(inputs.arch)
    versions = {
        "gcc": _output([f"{t}-gcc", "-dumpfullversion"]),
        "host_python": _output([inputs.host_python, "-c", "import sys; print(sys.version)"]),
    }
    if inputs.compiler.kind == "zig":
        versions["zig"] = ZIGLANG
    if shutil.which(f"{t}-gfortran") is not None:
        versions["gfortran"] = _output([f"{t}-gfortran", "-dumpfullversion"])
    return versions


def host_python(version: str, which: Which = shutil.which) -> str | None:
    """A host interpreter of ``version`` (crossenv needs the same minor version)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    return which(f"python{version}")


def ensure_toolchain(
    inputs: ToolchainInputs, cache: Path, on_line: OnLine | None = None
) -> CrossToolchain:
    """The toolchain for ``inputs`` below ``cache``, made the first time (about 10 s;
    zig is unpacked the first time too)."""
    zig = ensure_zig(cache) if inputs.compiler.kind == "zig" else None
    gfortran = shutil.which(f"{triplet(inputs.arch)}-gfortran") is not None
    tc = CrossToolchain(
        dir=cache / inputs.key(tool_versions(inputs)),
        arch=inputs.arch,
        python=inputs.python,
        has_fortran=gfortran,  # with zig: gfortran compiles, zig links (fortran_wrapper)
        build_machine=platform.machine(),
        compilers=inputs.compiler,
        zig=zig,
    )
    made_once(tc.dir, lambda: _make(tc, inputs, on_line))
    return tc


#: zig's driver for each compiler wrapper (zig has no Fortran: see :func:`fortran_wrapper`).
ZIG_LANGUAGES: dict[str, Language] = {"gcc": "cc", "g++": "c++", "c++": "c++", "cpp": "cpp"}
ZIG_ARCHIVERS: tuple[Archiver, ...] = ("ar", "ranlib")


def compiler_scripts(tc: CrossToolchain, which: Which = shutil.which) -> dict[Path, str]:
    """The compiler wrappers: Debian's cross compilers pinned to the sysroot, or zig for
    the target glibc with the sysroot's headers searched after zig's."""
    scripts: dict[Path, str] = {}
    if tc.zig is not None and tc.compilers.glibc is not None:
        target = zig_target(tc.arch, tc.compilers.glibc)
        after = (
            tc.sysroot / PACK_PREFIX / "include",  # library packs before the distro's headers
            tc.sysroot / "usr/include" / tc.triplet,
            tc.sysroot / "usr/include",
        )
        readelf = which(f"{tc.triplet}-readelf") or which("readelf") or "readelf"
        guard = LinkGuard(tc.glibc_symbols, readelf, tc.compilers.glibc, tc.glibc_compat)
        for tool, language in ZIG_LANGUAGES.items():
            scripts[tc.compiler(tool)] = zig_wrapper(
                tc.zig, language, target, after, guard, tc.sysroot, PACK_PREFIX
            )
        for archiver in ZIG_ARCHIVERS:
            scripts[tc.bin / f"{tc.triplet}-{archiver}"] = archiver_wrapper(tc.zig, archiver)
        scripts[tc.compiler("gfortran")] = zig_fortran_script(tc, which)
        return scripts
    for tool in COMPILERS:
        real = which(f"{tc.triplet}-{tool}")
        if real is not None:
            scripts[tc.compiler(tool)] = compiler_wrapper(real, tc.sysroot)
        elif tool == "gfortran":
            scripts[tc.compiler(tool)] = missing_fortran_script(f"{tc.triplet}-{tool}")
    return scripts


def missing_fortran_script(real: str) -> str:
    """The Fortran compiler's place when the host has no cross gfortran: says so plainly
    (meson shows it under "Unknown compiler(s)"; CMake in its compiler check)."""
    return (
        "#!/bin/sh\n"
        f'echo "{real}: not installed on the build machine: the cross backend has no Fortran'
        f' compiler (apt-get install gfortran-{real.rpartition("-")[0]})" >&2\n'
        "exit 127\n"
    )


def zig_fortran_script(tc: CrossToolchain, which: Which = shutil.which) -> str:
    """zig mode's Fortran compiler: the cross gfortran compiles, zig's C wrapper links
    (:func:`refinery.builder.zig.fortran_wrapper`); or a plain refusal without one."""
    name = f"{tc.triplet}-gfortran"
    real = which(name)
    if real is None:
        return missing_fortran_script(name)
    march = ZIG_DEFAULT_MARCH.get(tc.arch, "")
    return fortran_wrapper(real, tc.compiler("gcc"), tc.sysroot, PACK_PREFIX, march)


#: glibc's link-time files (not its runtime libraries): a zig build must link zig's own.
GLIBC_LINK_FILES = (
    *(f"lib{n}.so" for n in ("c", "m", "anl", "resolv", "BrokenLocale", "c_malloc_debug")),
    *(f"lib{n}.a" for n in ("c", "m", "dl", "pthread", "rt", "util", "anl", "resolv")),
    "libBrokenLocale.a",
    "libc_nonshared.a",
    "libpthread_nonshared.a",
    "libmemusage.so",
    "libpcprofile.so",
    "libthread_db.so",
    *(f"{p}crt1.o" for p in ("", "M", "S", "g", "gr", "r")),
    "crti.o",
    "crtn.o",
)


def hide_glibc_script(multiarch: str) -> str:
    """Shell script removing :data:`GLIBC_LINK_FILES` from a root's library folder."""
    names = " ".join(GLIBC_LINK_FILES)
    return f"cd /usr/lib/{shlex.quote(multiarch)} && rm -f {names}"


#: Host programs that are not ``*-config`` scripts of a library.
NOT_LIBRARY_CONFIG = frozenset({"apt-config", "pkg-config"})


def host_config_programs(host_bin: Path = Path("/usr/bin")) -> tuple[str, ...]:
    """The host's ``*-config``/``*_config`` programs (``pg_config``, ``libpng-config``,
    ``python3-config`` …): each answers for the host's amd64 libraries, so a cross build
    must never run one (the toolchain shadows them, see :func:`shadow_wrapper`)."""
    machine_prefix = f"{platform.machine()}-linux-gnu-"
    found = {
        p.name
        for pattern in ("*-config", "*_config")
        for p in host_bin.glob(pattern)
        if not p.name.startswith(machine_prefix)
    }
    return tuple(sorted(found - NOT_LIBRARY_CONFIG - set(CONFIG_SCRIPTS)))


def shadow_wrapper(name: str, sysroot: Path) -> str:
    """Stands in front of the host's ``name``: runs the sysroot's own (an s390x program
    runs under binfmt with ``QEMU_LD_PREFIX``) or says it is not there, so a hint or a
    derived fix installs the target's ``-dev`` package instead of amd64 answers leaking in."""
    q = shlex.quote
    own = q(str(sysroot / "usr/bin" / name))
    return (
        "#!/bin/sh\n"
        f"# the host's {name} answers for amd64: the sysroot's, or none\n"
        f'if [ -x {own} ]; then exec {own} "$@"; fi\n'
        f'echo "{name}: command not found" >&2\n'
        "exit 127\n"
    )


def write_wrappers(
    tc: CrossToolchain, which: Which = shutil.which, host_bin: Path = Path("/usr/bin")
) -> None:
    """The sysroot-pinning wrappers (and shadows of ``host_bin``'s ``*-config``
    programs), the meson cross file and the CMake toolchain file."""
    tc.bin.mkdir(parents=True, exist_ok=True)
    tc.sysroot.mkdir(parents=True, exist_ok=True)
    scripts = compiler_scripts(tc, which)
    pkg_config = which("pkg-config") or "/usr/bin/pkg-config"
    wrapper = pkg_config_wrapper(pkg_config, tc.sysroot, tc.triplet)
    scripts[tc.bin / "pkg-config"] = wrapper
    scripts[tc.bin / f"{tc.triplet}-pkg-config"] = wrapper
    for name, modules in CONFIG_SCRIPTS.items():
        scripts[tc.bin / name] = config_script_wrapper(tc.bin / "pkg-config", modules, tc.sysroot)
    for name in host_config_programs(host_bin):
        scripts[tc.bin / name] = shadow_wrapper(name, tc.sysroot)
    for path, text in scripts.items():
        path.write_text(text)
        path.chmod(0o755)
    tc.meson_cross_file.write_text(meson_cross_file(tc))
    tc.cmake_toolchain_file.write_text(cmake_toolchain(tc))


def write_glibc_symbols(tc: CrossToolchain, lower: Path, which: Which = shutil.which) -> None:
    """The list the zig wrappers' link guard reads: the root's glibc symbols that only
    versions newer than the target's define."""
    assert tc.compilers.glibc is not None
    readelf = which(f"{tc.triplet}-readelf") or which("readelf")
    if readelf is None:
        raise BuildRootUnavailable("zig's link guard needs readelf (binutils)")
    libdir = lower / "usr/lib" / tc.triplet
    outputs = {
        library: _output([readelf, "--dyn-syms", "-W", str(libdir / library)])
        for library in GLIBC_LIBRARIES
        if (libdir / library).exists()
    }
    if not outputs.get("libc.so.6"):
        raise BuildRootUnavailable(f"no readable libc.so.6 in {libdir}")
    lines = newer_glibc_symbols(outputs, tc.compilers.glibc)
    tc.glibc_symbols.write_text("".join(f"{line}\n" for line in lines))


def _checked(argv: Sequence[str], what: str, on_line: OnLine | None) -> None:
    result = run(argv, on_line=on_line, timeout=900)
    if not result.ok:
        tail = "\n".join(result.tail[-15:])
        raise BuildRootUnavailable(f"{what} failed (exit {result.exit_code}):\n{tail}")


def crossenv_argv(tc: CrossToolchain, buildpy: Path) -> list[str]:
    """``python -m crossenv`` for the sysroot mounted at ``tc.sysroot``."""
    s = tc.sysroot
    sysconfigdata = s / f"usr/lib/python{tc.python}/_sysconfigdata__{tc.triplet}.py"
    return [
        str(buildpy / "bin" / "python"),
        "-m",
        "crossenv",
        "--sysroot",
        str(s),
        "--sysconfigdata-file",
        str(sysconfigdata),
        "--cc",
        str(tc.compiler("gcc")),
        "--cxx",
        str(tc.compiler("g++")),
        "--ar",
        tc.archiver("ar", lto=False),
        str(s / f"usr/bin/python{tc.python}"),
        str(tc.venv),
    ]


def _make(tc: CrossToolchain, inputs: ToolchainInputs, on_line: OnLine | None) -> None:
    sysconfigdata = inputs.lower / f"usr/lib/python{tc.python}/_sysconfigdata__{tc.triplet}.py"
    if not sysconfigdata.is_file():
        raise BuildRootUnavailable(f"the root has no {sysconfigdata.name} for Python {tc.python}")
    write_wrappers(tc)
    if tc.compilers.glibc is not None:
        write_glibc_symbols(tc, inputs.lower)
        compat = tc.glibc_compat
        if tc.zig is not None and compat is not None:
            compat_archive(tc.zig, zig_target(tc.arch, tc.compilers.glibc), compat)
    buildpy = tc.dir / "buildpy"
    _checked([inputs.host_python, "-m", "venv", str(buildpy)], "making the build venv", on_line)
    pip = [str(buildpy / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _checked([*pip, "--disable-pip-version-check", CROSSENV], f"pip install {CROSSENV}", on_line)
    # crossenv reads the root's sysconfig at the path every build will mount it at.
    q = shlex.quote
    target = q(str(tc.sysroot))
    script = (
        f"set -eu; mount --bind {q(str(inputs.lower))} {target}; "
        f'mount -o remount,bind,ro {target}; exec "$@"'
    )
    _checked(unshare_argv(script, crossenv_argv(tc, buildpy)), "crossenv", on_line)
    if not tc.cross_python.exists():
        raise BuildRootUnavailable(f"crossenv made no {tc.cross_python}")
    (tc.dir / ".complete").write_text(json.dumps({"crossenv": CROSSENV, "key": tc.key}) + "\n")
