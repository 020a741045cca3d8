"""The cross backend's pure parts: environment, wrappers, cross files, selection, links."""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import platform
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.buildroot import FakeRoot, FakeSession, ready_cache, run_step

from refinery.builder import crossrust, crosstools
from refinery.builder.cross import CrossRoot, relativise_links, sysroot_script
from refinery.builder.crossrust import RustToolchain
from refinery.builder.crosstools import CrossToolchain
from refinery.builder.options import RootOptions
from refinery.builder.phases import ProvidesBuildRequires
from refinery.builder.proc import ProcResult
from refinery.builder.rootfs import RootfsRoot, RootfsSession
from refinery.builder.rootfs_image import RootfsSpec
from refinery.builder.roots import HostFacts, Mounts, choose_backend, cross_available, select_root
from refinery.core.cache import CacheRoot

TC = CrossToolchain(dir=Path("/c/cross/s390x-py3.11-abc"), arch="s390x", python="3.11")
SYSROOT = "/c/cross/s390x-py3.11-abc/sysroot"


# --- environment ---------------------------------------------------------------------
def test_the_environment_is_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKG_CONFIG_PATH", "/usr/lib/x86_64-linux-gnu/pkgconfig")
    monkeypatch.setenv("CPATH", "/usr/include/libxml2")
    env = TC.env(home=Path("/s/home"), tmp=Path("/s/tmp"))
    assert "PKG_CONFIG_PATH" not in env and "CPATH" not in env
    assert env["PATH"].split(":") == [
        "/c/cross/s390x-py3.11-abc/venv/cross/bin",  # python, pip = the cross-python
        "/c/cross/s390x-py3.11-abc/bin",  # sysroot-pinning wrappers
        "/c/cross/s390x-py3.11-abc/venv/bin",
        "/c/cross/s390x-py3.11-abc/venv/build/bin",  # build-machine tools
        "/usr/bin",
        "/bin",
    ]
    assert env["PKG_CONFIG"] == "/c/cross/s390x-py3.11-abc/bin/pkg-config"
    assert env["PKG_CONFIG_SYSROOT_DIR"] == SYSROOT
    assert env["PKG_CONFIG_LIBDIR"].startswith(  # library packs first, then the distro's
        f"{SYSROOT}/opt/refinery-packs/lib/pkgconfig:{SYSROOT}/usr/lib/s390x-linux-gnu/pkgconfig:"
    )
    assert env["XML2_CONFIG"] == "/c/cross/s390x-py3.11-abc/bin/xml2-config"
    assert env["XSLT_CONFIG"] == "/c/cross/s390x-py3.11-abc/bin/xslt-config"
    assert env["QEMU_LD_PREFIX"] == SYSROOT
    assert env["CMAKE_TOOLCHAIN_FILE"] == "/c/cross/s390x-py3.11-abc/toolchain.cmake"
    # a vendored configure compiles for the target; what runs on the build machine does not
    assert env["CC"] == "/c/cross/s390x-py3.11-abc/bin/s390x-linux-gnu-gcc"
    assert env["CXX"] == "/c/cross/s390x-py3.11-abc/bin/s390x-linux-gnu-g++"
    assert (env["CC_FOR_BUILD"], env["HOST_CC"], env["HOST_CXX"]) == ("gcc", "gcc", "g++")
    assert env["host_alias"] == "s390x-linux-gnu"  # a configure without --host: the target
    assert (env["HOME"], env["TMPDIR"]) == ("/s/home", "/s/tmp")
    assert TC.cross_python == Path("/c/cross/s390x-py3.11-abc/venv/cross/bin/python3.11")


def test_config_settings_per_build_backend() -> None:
    assert TC.config_settings("mesonpy") == (
        "setup-args=--cross-file=/c/cross/s390x-py3.11-abc/meson-cross.ini",
    )
    for backend in ("setuptools.build_meta", "scikit_build_core", "maturin", ""):
        assert TC.config_settings(backend) == ()


# --- wrappers ------------------------------------------------------------------------
def test_compiler_wrapper_pins_the_sysroot() -> None:
    text = crosstools.compiler_wrapper("/usr/bin/s390x-linux-gnu-gcc", Path(SYSROOT))
    assert text.startswith("#!/bin/sh\n")
    assert text.splitlines()[-1] == (f'exec /usr/bin/s390x-linux-gnu-gcc --sysroot={SYSROOT} "$@"')


def test_pkg_config_wrapper_sees_only_the_sysroot() -> None:
    text = crosstools.pkg_config_wrapper("/usr/bin/pkg-config", Path(SYSROOT), "s390x-linux-gnu")
    assert f"PKG_CONFIG_SYSROOT_DIR={SYSROOT}\n" in text
    assert (
        f"PKG_CONFIG_LIBDIR={SYSROOT}/opt/refinery-packs/lib/pkgconfig:{SYSROOT}/usr/lib/" in text
    )
    assert "unset PKG_CONFIG_PATH" in text
    assert text.splitlines()[-1] == 'exec /usr/bin/pkg-config "$@"'


def test_config_script_answers_from_pkg_config() -> None:
    text = crosstools.config_script_wrapper(
        Path("/c/bin/pkg-config"), ("libxslt", "libexslt"), Path(SYSROOT)
    )
    assert "PC=/c/bin/pkg-config\n" in text
    assert "MODULES='libxslt libexslt'\n" in text
    assert '--version|--modversion) exec "$PC" --modversion "${MODULES%% *}"' in text
    assert f"--prefix) echo {SYSROOT}/usr; exit 0" in text
    assert "/usr/bin/xml2-config" not in text  # never the host's amd64 script


def test_write_wrappers_makes_executables(tmp_path: Path) -> None:
    tc = CrossToolchain(dir=tmp_path / "tc", arch="s390x", python="3.11")

    def which(name: str) -> str | None:
        return None if name.endswith("gfortran") else f"/usr/bin/{name}"

    host = tmp_path / "host-bin"
    host.mkdir()
    (host / "pg_config").touch()
    crosstools.write_wrappers(tc, which, host)
    names = sorted(p.name for p in tc.bin.iterdir())
    assert names == [
        "pg_config",
        "pkg-config",
        "s390x-linux-gnu-c++",
        "s390x-linux-gnu-cpp",
        "s390x-linux-gnu-g++",
        "s390x-linux-gnu-gcc",
        "s390x-linux-gnu-gfortran",  # no cross gfortran: a plain refusal (test_fortran_cross)
        "s390x-linux-gnu-pkg-config",
        "xml2-config",
        "xslt-config",
    ]
    assert all(p.stat().st_mode & stat.S_IXUSR for p in tc.bin.iterdir())
    assert tc.sysroot.is_dir() and not any(tc.sysroot.iterdir())  # only a mount point
    assert tc.meson_cross_file.is_file() and tc.cmake_toolchain_file.is_file()


def test_missing_tools() -> None:
    present = {"s390x-linux-gnu-gcc", "pkg-config", "unshare", "mount", "qemu-s390x-static"}

    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in present else None

    assert crosstools.missing_tools("s390x", which) == ("s390x-linux-gnu-g++",)


# --- cross files ---------------------------------------------------------------------
def test_meson_cross_file() -> None:
    parser = configparser.ConfigParser()
    parser.read_string(crosstools.meson_cross_file(TC))
    assert parser["properties"]["needs_exe_wrapper"] == "true"
    assert parser["properties"]["sys_root"] == f"'{SYSROOT}'"
    assert parser["binaries"]["exe_wrapper"] == f"['qemu-s390x-static', '-L', '{SYSROOT}']"
    assert parser["binaries"]["c"] == "'/c/cross/s390x-py3.11-abc/bin/s390x-linux-gnu-gcc'"
    assert parser["binaries"]["pkg-config"] == "'/c/cross/s390x-py3.11-abc/bin/pkg-config'"
    # always the toolchain's own (a refusal without a cross gfortran), never the host's
    assert (
        parser["binaries"]["fortran"] == "'/c/cross/s390x-py3.11-abc/bin/s390x-linux-gnu-gfortran'"
    )
    assert dict(parser["host_machine"]) == {
        "system": "'linux'",
        "cpu_family": "'s390x'",
        "cpu": "'s390x'",
        "endian": "'big'",
    }
    assert parser["build_machine"]["cpu_family"] == "'x86_64'"
    assert parser["build_machine"]["endian"] == "'little'"


def test_cmake_toolchain() -> None:
    text = crosstools.cmake_toolchain(TC)
    lines = text.splitlines()
    assert "set(CMAKE_SYSTEM_NAME Linux)" in lines
    assert "set(CMAKE_SYSTEM_PROCESSOR s390x)" in lines
    assert f"set(CMAKE_SYSROOT {SYSROOT})" in lines
    assert "set(CMAKE_C_COMPILER /usr/bin/s390x-linux-gnu-gcc)" in lines
    assert "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)" in lines
    assert "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)" in lines
    # the build requirements' folders are roots too: pybind11's CMake files are found there
    assert "list(APPEND CMAKE_FIND_ROOT_PATH $ENV{REFINERY_CMAKE_BUILD_PREFIXES})" in lines
    # the library packs' prefix first (below the sysroot, a find root), as for pkg-config
    assert "list(PREPEND CMAKE_PREFIX_PATH /opt/refinery-packs)" in lines
    assert f"set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-s390x-static;-L;{SYSROOT})" in lines
    assert f'set(ENV{{PKG_CONFIG_SYSROOT_DIR}} "{SYSROOT}")' in lines


def test_toolchain_key_follows_its_inputs() -> None:
    inputs = crosstools.ToolchainInputs(
        arch="s390x", python="3.11", host_python="/p", root_key="k@sha256:1", lower=Path("/l")
    )
    key = inputs.key({"gcc": "12.2.0"})
    assert key.startswith("s390x-py3.11-") and key == inputs.key({"gcc": "12.2.0"})
    assert key != inputs.key({"gcc": "13.1.0"})
    other_root = crosstools.ToolchainInputs(
        arch="s390x", python="3.11", host_python="/p", root_key="k@sha256:2", lower=Path("/l")
    )
    assert other_root.key({"gcc": "12.2.0"}) != key


def test_crossenv_reads_the_root_at_the_mount_point() -> None:
    argv = crosstools.crossenv_argv(TC, Path("/c/buildpy"))
    assert argv[:3] == ["/c/buildpy/bin/python", "-m", "crossenv"]
    assert argv[argv.index("--sysroot") + 1] == SYSROOT
    sysconfig = f"{SYSROOT}/usr/lib/python3.11/_sysconfigdata__s390x-linux-gnu.py"
    assert argv[argv.index("--sysconfigdata-file") + 1] == sysconfig
    assert argv[argv.index("--cc") + 1] == "/c/cross/s390x-py3.11-abc/bin/s390x-linux-gnu-gcc"
    assert argv[-2:] == [f"{SYSROOT}/usr/bin/python3.11", "/c/cross/s390x-py3.11-abc/venv"]


# --- the sysroot ---------------------------------------------------------------------
def test_sysroot_script_mounts_then_runs_on_the_host() -> None:
    overlay = (Path("/roots/lower"), Path("/s/upper"), Path("/s/ovl-work"))
    script = sysroot_script(mountpoint=Path(SYSROOT), overlay=overlay, copy=None, cwd="/w")
    assert script.splitlines() == [
        "set -eu",
        "mount -t overlay overlay -o "
        f"lowerdir=/roots/lower,upperdir=/s/upper,workdir=/s/ovl-work {SYSROOT}",
        "cd /w",
        'exec "$@"',
    ]
    copy = sysroot_script(mountpoint=Path(SYSROOT), overlay=None, copy=Path("/s/root"), cwd="/w")
    assert f"mount --bind /s/root {SYSROOT}" in copy and "chroot" not in copy
    with pytest.raises(ValueError, match="overlay or a copy"):
        sysroot_script(mountpoint=Path(SYSROOT), overlay=None, copy=None, cwd="/w")


MA = "usr/lib/s390x-linux-gnu"


def test_absolute_library_links_become_relative(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / MA).mkdir(parents=True)
    (lower / MA / "libz.so.1.2.13").write_bytes(b"\x7fELF")
    (lower / MA / "libz.so").symlink_to("/lib/s390x-linux-gnu/libz.so.1.2.13")
    (lower / MA / "libm.so.6").symlink_to("libm-2.36.so")  # relative: left alone
    (lower / MA / "libgone.so").symlink_to("/lib/s390x-linux-gnu/libgone.so.1")
    (upper / MA).mkdir(parents=True)
    os.mknod(upper / MA / "libgone.so", stat.S_IFCHR | 0o600, 0)  # removed in the upper
    (upper / MA / "libnew.so").symlink_to(f"/{MA}/libnew.so.2")
    (lower / "lib").symlink_to("usr/lib")

    assert relativise_links([upper, lower], upper, (MA,)) == 2
    assert os.readlink(upper / MA / "libz.so") == "../../../lib/s390x-linux-gnu/libz.so.1.2.13"
    assert os.readlink(upper / MA / "libnew.so") == "libnew.so.2"
    assert not (upper / MA / "libm.so.6").exists()  # relative links stay in the lower only
    assert stat.S_ISCHR((upper / MA / "libgone.so").lstat().st_mode)  # still removed
    assert os.readlink(lower / MA / "libz.so").startswith("/")  # the lower is never written
    # in the merged view (lower's lib -> usr/lib) the link resolves inside the tree
    resolved = os.path.realpath(lower / MA / os.readlink(upper / MA / "libz.so"))
    assert resolved == str((lower / MA / "libz.so.1.2.13").resolve())
    assert relativise_links([upper, lower], upper, (MA,)) == 0  # idempotent


def test_opaque_directories_hide_the_lower(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / MA).mkdir(parents=True)
    (lower / MA / "libold.so").symlink_to("/x/libold.so.1")
    (upper / MA).mkdir(parents=True)
    try:
        os.setxattr(upper / MA, "trusted.overlay.opaque", b"y")
    except OSError:
        pytest.skip("this file system keeps no trusted.* attributes (needs root)")
    assert relativise_links([upper, lower], upper, (MA,)) == 0
    assert not (upper / MA / "libold.so").is_symlink()


# --- selection -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "facts", "chosen"),
    [
        ("auto", HostFacts("x86_64", None, cross=True), "cross"),
        ("auto", HostFacts("x86_64", "podman", cross=True), "cross"),
        ("auto", HostFacts("x86_64", "podman", cross=False), "container"),
        ("auto", HostFacts("x86_64", None, cross=False), "rootfs"),
        ("auto", HostFacts("s390x", None, cross=True), "native"),
        ("cross", HostFacts("x86_64", None), "cross"),
    ],
)
def test_choose_backend_prefers_cross_off_s390x(
    requested: str, facts: HostFacts, chosen: str
) -> None:
    assert choose_backend(requested, facts) == chosen


def test_cross_available_needs_the_toolchain_and_root() -> None:
    def everything(name: str) -> str | None:
        return f"/usr/bin/{name}"

    def no_cross_gcc(name: str) -> str | None:
        return None if name.startswith("s390x-linux-gnu-") else f"/usr/bin/{name}"

    assert cross_available(everything, euid=0)
    assert not cross_available(everything, euid=1000)
    assert not cross_available(no_cross_gcc, euid=0)


def test_select_root_makes_a_cross_root() -> None:
    cache = CacheRoot(Path("/cache"))
    options = RootOptions(cache=cache, backend="cross", release="trixie")
    root = select_root(options, HostFacts("x86_64", None, cross=True))
    assert isinstance(root, CrossRoot)
    assert root.backend == "cross" and root.arch == "s390x"
    assert root.cache == cache.cross == Path("/cache/cross")
    assert root.rootfs.spec.release == "trixie" and root.rootfs.cache == cache.roots
    auto = select_root(RootOptions(cache=cache), HostFacts("x86_64", "podman", cross=True))
    assert isinstance(auto, CrossRoot)


def test_cross_session_maps_host_paths_to_themselves(tmp_path: Path) -> None:
    rootfs = RootfsRoot(RootfsSpec(), tmp_path / "roots", use_overlay=True)
    root = CrossRoot(rootfs, tmp_path / "cross")
    mounts = Mounts(work=tmp_path / "w", pip_cache=tmp_path / "pc", tools=tmp_path / "t")
    from refinery.builder.cross import CrossSession

    sysroot = RootfsSession(mounts, rootfs, tmp_path / "s", True, "build")
    tc = CrossToolchain(dir=tmp_path / "tc", arch="s390x", python="3.11")
    session = CrossSession(root, sysroot, mounts, tc)
    assert session.inside(tmp_path / "w" / "src") == str(tmp_path / "w" / "src")
    assert session.ldpaths[:2] == (
        tmp_path / "s/upper/usr/local/lib",
        tmp_path / "s/upper/lib/s390x-linux-gnu",
    )
    assert rootfs.lower / "usr/lib/s390x-linux-gnu" in session.ldpaths
    command = session.command(["cc", "-v"], env={"X": "1"}, cwd=None, timeout=5)
    assert command.argv[:2] == ["unshare", "--mount"] and list(command.argv[-2:]) == ["cc", "-v"]
    assert command.env is not None and command.env["X"] == "1"
    assert command.env["QEMU_LD_PREFIX"] == str(tc.sysroot)
    assert f"cd {tmp_path / 'w'}" in command.argv[command.argv.index("-c") + 1]


# --- the build step ------------------------------------------------------------------
class MesonSession(FakeSession):
    def config_settings(self, build_backend: str) -> tuple[str, ...]:
        return (f"setup-args=--cross-file=/x/{build_backend}.ini",)


class CrossishRoot(FakeRoot):
    backend = "cross"

    @contextlib.contextmanager
    def _session(self, mounts: Mounts, purpose: str) -> Iterator[FakeSession]:
        yield MesonSession(self, mounts, purpose)


def test_the_build_gets_the_session_config_settings_and_no_target_uv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_uv(tools: object, arch: str) -> None:
        raise AssertionError("a cross build must not fetch uv for the target")

    monkeypatch.setattr("refinery.builder.phases.ensure_uv", no_uv)
    cache, _tools = ready_cache(tmp_path / "cache")
    root = CrossishRoot()
    sdist = {
        "pyproject.toml": '[build-system]\nrequires = ["meson-python"]\n'
        'build-backend = "mesonpy"\n',
        "demo/__init__.py": "x = 1\n",
    }
    run_step(tmp_path, root, cache, sdist, options={"installer": "uv"})
    (build,) = [argv for purpose, argv, _env in root.calls if "--wheel" in argv]
    assert "-Csetup-args=--cross-file=/x/mesonpy.ini" in build
    assert "--installer" not in build


# --- build requirements on the build machine -----------------------------------------
class RequiresSession(MesonSession):
    """A session that installs the build requirements itself (like the cross one)."""

    @property
    def notes(self) -> list[str]:
        return ["requirements from the fake's own shelf"]

    def provide_build_requires(self, project: Path, **kwargs: object) -> ProcResult:
        self.root.calls.append(
            (self.purpose, ("provide", str(project), str(kwargs["build_backend"])), {})
        )
        return ProcResult(("provide",), 0, 0.0, False, ())


class RequiresRoot(FakeRoot):
    backend = "cross"

    @contextlib.contextmanager
    def _session(self, mounts: Mounts, purpose: str) -> Iterator[FakeSession]:
        yield RequiresSession(self, mounts, purpose)


def test_a_session_providing_build_requires_builds_without_isolation(tmp_path: Path) -> None:
    cache, _tools = ready_cache(tmp_path / "cache")
    root = RequiresRoot()
    sdist = {
        "pyproject.toml": '[build-system]\nrequires = ["maturin>=1"]\nbuild-backend = "maturin"\n',
        "src/lib.rs": "",
        "demo/__init__.py": "x = 1\n",
    }
    outcome = run_step(tmp_path, root, cache, sdist)
    assert "requirements from the fake's own shelf" in outcome.log.read_text()
    argvs = [argv for _purpose, argv, _env in root.calls]
    provide = next(i for i, argv in enumerate(argvs) if argv[0] == "provide")
    build = next(i for i, argv in enumerate(argvs) if "--wheel" in argv)
    assert provide < build and argvs[provide][2] == "maturin"
    assert "--no-isolation" in argvs[build]
    assert not isinstance(object(), ProvidesBuildRequires)


def test_plain_sessions_keep_isolation(tmp_path: Path) -> None:
    cache, _tools = ready_cache(tmp_path / "cache")
    root = CrossishRoot()
    run_step(tmp_path, root, cache, {"setup.py": "", "demo/__init__.py": ""})
    (build,) = [argv for _purpose, argv, _env in root.calls if "--wheel" in argv]
    assert "--no-isolation" not in build


def test_requires_are_asked_of_the_cross_python_and_installed_by_build_pip() -> None:
    argv = crosstools.requires_argv(TC, "/tools/site", "/w/src", "wheel", ("a=b", "c=d=e"))
    assert argv[0] == "/c/cross/s390x-py3.11-abc/venv/cross/bin/python3.11"
    assert argv[3:6] == ["/tools/site", "/w/src", "wheel"]
    assert json.loads(argv[6]) == {"a": "b", "c": "d=e"}
    lines = ("noise", 'refinery-build-requires: ["cython>=3", "ninja"]', "more noise")
    assert crosstools.parse_requires(lines) == ("cython>=3", "ninja")
    assert crosstools.parse_requires(("Traceback", "ModuleNotFoundError")) is None
    install = crosstools.install_argv(TC, Path("/s/req"), ("maturin>=1",))
    assert install[0] == "/c/cross/s390x-py3.11-abc/venv/build/bin/python3.11"  # build machine
    assert install[-3:] == ["--target", "/s/req", "maturin>=1"]


def test_cargo_environment_targets_the_sysroot() -> None:
    rust = RustToolchain(Path("/c/cross/rust-x"))
    env = TC.cargo_env(rust)
    assert env["CARGO_BUILD_TARGET"] == "s390x-unknown-linux-gnu"
    gcc = "/c/cross/s390x-py3.11-abc/bin/s390x-linux-gnu-gcc"
    assert env["CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER"] == gcc
    assert env["CC_s390x_unknown_linux_gnu"] == gcc
    assert env["PYO3_CROSS_LIB_DIR"] == f"{SYSROOT}/usr/lib/python3.11"
    assert "CARGO_NET_OFFLINE" not in env  # crates.io where it is reachable
    assert env["RUSTC"] == "/c/cross/rust-x/bin/rustc"


def test_cross_session_environment_adds_requirements_and_rust(tmp_path: Path) -> None:
    rootfs = RootfsRoot(RootfsSpec(), tmp_path / "roots", use_overlay=True)
    root = CrossRoot(rootfs, tmp_path / "cross")
    mounts = Mounts(work=tmp_path / "w", pip_cache=tmp_path / "pc", tools=tmp_path / "t")
    from refinery.builder.cross import CrossSession

    sysroot = RootfsSession(mounts, rootfs, tmp_path / "s", True, "build")
    session = CrossSession(root, sysroot, mounts, TC)
    assert "PYTHONPATH" not in session.environment() and "RUSTC" not in session.environment()
    session.requires_dirs += [tmp_path / "static", tmp_path / "wheel"]
    session.rust = RustToolchain(tmp_path / "rust")
    env = session.environment()
    assert env["PYTHONPATH"] == f"{tmp_path / 'static'}:{tmp_path / 'wheel'}"
    assert env["REFINERY_CMAKE_BUILD_PREFIXES"] == f"{tmp_path / 'static'};{tmp_path / 'wheel'}"
    path = env["PATH"].split(":")
    assert path[:4] == [
        str(TC.venv / "cross/bin"),
        str(tmp_path / "static/bin"),  # both steps' tools stay on PATH
        str(tmp_path / "wheel/bin"),
        str(tmp_path / "rust/bin"),
    ]
    assert env["CARGO_HOME"] == str(session.home / ".cargo")
    assert "CARGO_NET_OFFLINE" not in env  # the requires phase fetches crates with the network
    session.isolate_network()  # … then the build has none
    assert session.environment()["CARGO_NET_OFFLINE"] == "true"


def test_rust_wrappers_and_private_apt() -> None:
    text = crossrust.tool_wrapper(Path("/r/prefix/usr/bin/rustc"), (Path("/r/prefix/usr/lib/x"),))
    assert 'LD_LIBRARY_PATH=/r/prefix/usr/lib/x"${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"' in text
    assert text.splitlines()[-1] == 'exec /r/prefix/usr/bin/rustc "$@"'
    options = crossrust.apt_options(Path("/r/apt"), build_arch="amd64", target_arch="s390x")
    assert "APT::Architectures::=s390x" in options and "Dir::State::status=/r/apt/status" in options
    line = crossrust.sources_list("http://m/debian", "bookworm", ("amd64", "s390x"), Path("/no"))
    assert line == "deb [arch=amd64,s390x] http://m/debian bookworm main\n"  # no security suite
    assert crossrust.rust_key("bookworm", "s390x", "x86_64").startswith("rust-bookworm-s390x-")
    assert {"maturin", "setuptools_rust"} == crossrust.RUST_BACKENDS


def test_cargo_fetch_runs_in_the_project_whose_config_may_vendor_its_crates() -> None:
    """orjson's sdist replaces crates.io with its own include/cargo in .cargo/config.toml,
    which cargo reads from where it runs: the fetch runs in the manifest's folder."""
    rust = RustToolchain(Path("/r"))
    argv = crossrust.fetch_argv(rust, Path("/w/src/orjson-3.13.0/Cargo.toml"))
    assert argv[:2] == ["env", "--chdir=/w/src/orjson-3.13.0"]
    assert argv[2:] == [
        "/r/bin/cargo",
        "fetch",
        "--manifest-path",
        "/w/src/orjson-3.13.0/Cargo.toml",
    ]


def test_the_compilers_libraries_are_the_build_machines_packages_of_the_closure() -> None:
    """``apt-cache depends --recurse libstd-rust-web-1.96:amd64`` (trixie, abridged)."""
    depends = [
        "libstd-rust-web-1.96",
        "  Depends: libc6",
        "  Depends: libllvm22",
        "  Depends: <libz3-dev>",
        "libc6",
        "  Depends: libgcc-s1",
        "libllvm22",
        "  Depends: libedit2",
        "libgcc-s1",
        "libgcc-s1:s390x",
        "libedit2",
        "<libz3-dev>",
        "libxml2:amd64",
    ]
    assert crossrust.compiler_closure(depends, "amd64") == [
        "libc6",
        "libedit2",
        "libgcc-s1",
        "libllvm22",
        "libstd-rust-web-1.96",
        "libxml2",
    ]


def test_made_once_makes_a_folder_once_and_never_keeps_a_half_made_one(tmp_path: Path) -> None:
    from refinery.builder.tools import made_once

    folder = tmp_path / "cache" / "tc-1"
    calls: list[str] = []

    def make() -> None:
        calls.append("make")
        folder.mkdir()
        (folder / ".complete").write_text("ok\n")

    folder.mkdir(parents=True)
    (folder / "left-by-a-killed-run").write_text("x")
    made_once(folder, make)
    made_once(folder, make)
    assert calls == ["make"]
    assert not (folder / "left-by-a-killed-run").exists()

    broken = tmp_path / "cache" / "tc-2"

    def fail() -> None:
        broken.mkdir()
        raise RuntimeError("download failed")

    with pytest.raises(RuntimeError, match="download failed"):
        made_once(broken, fail)
    assert not broken.exists()


def test_the_hosts_config_programs_are_shadowed(tmp_path: Path) -> None:
    host = tmp_path / "usr-bin"
    host.mkdir()
    for name in ("pg_config", "libpng-config", "xml2-config", "apt-config", "pkg-config"):
        (host / name).write_text("#!/bin/sh\necho amd64\n")
    (host / f"{platform.machine()}-linux-gnu-python3-config").write_text("")
    assert crosstools.host_config_programs(host) == ("libpng-config", "pg_config")

    sysroot = tmp_path / "sysroot"
    script = tmp_path / "pg_config"
    script.write_text(crosstools.shadow_wrapper("pg_config", sysroot))
    script.chmod(0o755)
    missing = subprocess.run([str(script), "--libdir"], capture_output=True, text=True, check=False)
    assert missing.returncode == 127 and "pg_config: command not found" in missing.stderr
    own = sysroot / "usr/bin/pg_config"
    own.parent.mkdir(parents=True)
    own.write_text('#!/bin/sh\necho s390x "$@"\n')
    own.chmod(0o755)
    answered = subprocess.run(
        [str(script), "--libdir"], capture_output=True, text=True, check=False
    )
    assert answered.returncode == 0 and answered.stdout == "s390x --libdir\n"
