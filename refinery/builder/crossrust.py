"""The cross backend's Rust: Debian's ``rustc-web``/``cargo-web`` with the target's std.

The host's rustup (if any) has no s390x std and cannot download one here; Debian's
default ``rustc`` (1.63 in bookworm) is too old for today's PyO3 crates. Debian bookworm
main ships ``rustc-web``/``cargo-web`` (1.85) for amd64 and ``libstd-rust-web-dev`` of
the *same* version for s390x. The cross toolchain fetches those ``.deb`` files with a
private apt state (the host's dpkg database and architectures are never touched) and
unpacks them into one cached prefix (``CacheRoot.cross/rust-<key>``):
``usr/bin/{rustc,cargo}`` and ``usr/lib/rustlib/{x86_64,s390x}-unknown-linux-gnu``.
``bin/`` holds wrappers that give the compiler its private shared libraries (LLVM 19,
``librustc_driver``) without putting them on every command's ``LD_LIBRARY_PATH``.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.errors import BuildRootUnavailable
from refinery.builder.proc import OnLine, run
from refinery.builder.tools import made_once

RUST_VERSION = "1.85"
RUST_PREFIX_VERSION = 1
#: Build-machine packages (Debian amd64 names): the compiler, cargo and their libraries.
HOST_PACKAGES = (
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev",
    f"libstd-rust-web-{RUST_VERSION}",
    "libllvm19",
    "libpcre3",
    "libhttp-parser2.9",
)
#: Target packages: the Rust standard library for the target, same version as rustc.
TARGET_PACKAGES = ("libstd-rust-web-dev", f"libstd-rust-web-{RUST_VERSION}")
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
            "host": HOST_PACKAGES,
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
    """The cached Rust prefix for ``arch`` targets (fetched the first time, ~140 MB)."""
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


def _fetch(
    rust: RustToolchain, *, release: str, arch: str, mirror: str, on_line: OnLine | None
) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise BuildRootUnavailable(
            "fetching Debian's Rust for cross builds needs apt-get and dpkg-deb"
        )
    build_arch = DEBIAN_ARCH.get(rust.build_machine, rust.build_machine)
    target_arch = DEBIAN_ARCH.get(arch, arch)
    state = rust.dir / "apt"
    debs = rust.dir / "debs"
    for folder in (state / "lists/partial", state / "cache/archives/partial", debs):
        folder.mkdir(parents=True, exist_ok=True)
    (state / "status").write_text("")
    (state / "sources.list").write_text(
        sources_list(mirror, release, (build_arch, target_arch), KEYRING)
    )
    apt = ["apt-get", *apt_options(state, build_arch=build_arch, target_arch=target_arch)]
    _checked([*apt, "update"], f"apt-get update ({mirror} {release})", on_line)
    wanted = [f"{p}:{build_arch}" for p in HOST_PACKAGES]
    wanted += [f"{p}:{target_arch}" for p in TARGET_PACKAGES]
    _checked([*apt, "download", *wanted], "apt-get download (Rust)", on_line, cwd=debs)
    versions = {_deb_version(d) for d in debs.glob("libstd-rust-web-dev_*.deb")}
    if len(versions) != 1:
        raise BuildRootUnavailable(
            f"rustc and the target's std differ in version: {sorted(versions)}"
        )
    for deb in sorted(debs.glob("*.deb")):
        _checked(["dpkg-deb", "-x", str(deb), str(rust.prefix)], f"unpacking {deb.name}", on_line)
    rust.bin.mkdir()
    for tool in ("rustc", "cargo", "rustdoc"):
        wrapper = rust.bin / tool
        wrapper.write_text(tool_wrapper(rust.prefix / "usr/bin" / tool, rust.libdirs))
        wrapper.chmod(0o755)
    _checked([str(rust.bin / "rustc"), "--version"], "rustc --version", on_line)
    shutil.rmtree(debs)
    shutil.rmtree(state / "cache", ignore_errors=True)
    record = {"version": versions.pop(), "packages": [*HOST_PACKAGES, *TARGET_PACKAGES]}
    (rust.dir / ".complete").write_text(json.dumps(record) + "\n")


# --- crates fetched before an isolated build ----------------------------------------
_NOT_SOURCES = frozenset({"target", "vendor", ".git", "node_modules"})


def cargo_manifests(project: Path) -> tuple[Path, ...]:
    """The Cargo projects of an unpacked sdist whose crates a build will want: every
    ``Cargo.toml`` beside a ``Cargo.lock`` (a workspace's lock is at its root), else the
    shallowest ``Cargo.toml`` files (no vendored or built trees)."""
    found = [
        p
        for p in sorted(project.rglob("Cargo.toml"))
        if not _NOT_SOURCES.intersection(p.relative_to(project).parts[:-1])
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
    network, before the build runs without it (``CARGO_NET_OFFLINE``)."""
    return [str(rust.bin / "cargo"), "fetch", "--manifest-path", str(manifest)]
