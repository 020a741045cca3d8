"""The ``cross`` backend: compile on the host at native speed, import under emulation.

Build commands run on the host with Debian's cross compilers and the crossenv
cross-python of the cached toolchain (:mod:`refinery.builder.crosstools`); the sysroot is
a throwaway copy of the emulated rootfs backend's root (an overlay upper directory, or a
full copy where overlayfs is unavailable), mounted at the toolchain's fixed sysroot path
in a private mount namespace for each command. Hint fixes install system packages *into
that sysroot* with apt, run inside it under emulation (dependencies resolved as on a
real s390x machine). The repaired wheel is imported in a clean emulated root (the rootfs
backend's smoke session): emulation is the correctness gate, not the compiler.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from refinery.builder import crossnumpy, crossrust, crosstools
from refinery.builder.crossrust import RUST_BACKENDS, RustToolchain
from refinery.builder.crosstools import CrossToolchain, ToolchainInputs
from refinery.builder.errors import BuildRootUnavailable, MissingPython
from refinery.builder.packs import PACK_PREFIX, Pack, PackTarget
from refinery.builder.packs.make import extract, install_scripts
from refinery.builder.proc import OnLine, ProcResult
from refinery.builder.rootfs import (
    DROP_ADMIN,
    MULTIARCH,
    RootfsRoot,
    RootfsSession,
    guarded_mount,
    unshare_argv,
)
from refinery.builder.rootfs_image import host_mirror
from refinery.builder.roots import Command, Mounts, ShellSession
from refinery.builder.zig import GCC, Compiler, compiler_for, libc_glibc, warm_cache, zig_target
from refinery.core.errors import NetworkError
from refinery.core.glibc import Glibc
from refinery.upstream import debcrates

_OPAQUE_XATTR = "trusted.overlay.opaque"


# --- the sysroot ---------------------------------------------------------------------
def _whiteout(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(folder: Path) -> bool:
    try:
        return os.getxattr(folder, _OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _merged_entries(layers: Sequence[Path], sub: str) -> dict[str, Path]:
    """Name -> the topmost layer's entry in folder ``sub`` of an overlay of ``layers``
    (first = top); whiteouts hide lower entries and are left out."""
    found: dict[str, Path] = {}
    hidden: set[str] = set()
    for layer in layers:
        folder = layer / sub
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            name = entry.name
            if name in found or name in hidden:
                continue
            if _whiteout(entry.lstat()):
                hidden.add(name)
            else:
                found[name] = entry
        if _opaque(folder):
            break
    return found


def relativise_links(layers: Sequence[Path], dest: Path, subdirs: Sequence[str]) -> int:
    """Rewrite the absolute symlinks in ``subdirs`` of the merged ``layers`` as relative
    links written into ``dest`` (the top layer, or the root copy itself).

    A sysroot's ``libz.so -> /lib/s390x-linux-gnu/libz.so.1`` would resolve on the
    *host*; ``../../../lib/s390x-linux-gnu/libz.so.1`` resolves inside the sysroot
    wherever it is mounted. Returns how many links were rewritten."""
    count = 0
    for sub in subdirs:
        for name, entry in sorted(_merged_entries(layers, sub).items()):
            if not entry.is_symlink():
                continue
            target = os.readlink(entry)
            if not target.startswith("/"):
                continue
            relative = os.path.relpath(target, "/" + sub)
            link = dest / sub / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(relative)
            count += 1
    return count


def sysroot_script(
    *,
    mountpoint: Path,
    overlay: tuple[Path, Path, Path] | None,
    copy: Path | None,
    cwd: str,
    guard: SharedGuard | None = None,
) -> str:
    """The shell script run in a new mount namespace: mount the build's sysroot at the
    toolchain's fixed path (overlay of the root, or a bind mount of a full copy), guard
    the shared folders (``guard``), then run ``"$@"`` on the host in ``cwd``."""
    q = shlex.quote
    target = q(str(mountpoint))
    lines = ["set -eu", *(guard.before() if guard is not None else ())]
    if overlay is not None:
        lower, upper, work = overlay
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        lines.append(f"mount -t overlay overlay -o {q(opts)} {target}")
    elif copy is not None:
        lines.append(f"mount --bind {q(str(copy))} {target}")
    else:
        raise ValueError("a sysroot needs an overlay or a copy")
    if guard is not None:
        lines += guard.after()
    lines.append(f"cd {q(cwd)}")
    if guard is not None:
        lines.append(DROP_ADMIN)
    lines.append('exec "$@"')
    return "\n".join(lines)


#: In a cross build's namespace, every mount but the kernel's own turns read-only.
_READ_ONLY_PASS = (
    "awk '{print $5}' /proc/self/mountinfo | while read -r m; do case $m in "
    '/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null '
    "|| true ;; esac; done"
)


@dataclass(frozen=True)
class SharedGuard:
    """A cross build runs on the host, so the host is read-only to it: every mount but
    ``writable`` (the build's work and session folders, zig's compile cache), with the
    pip/uv ``cache`` seen copy-on-write, its layer in ``scratch`` (None: read-only). The
    unpacked root, toolchains, tools and earlier waves' wheels are all below it."""

    writable: tuple[Path, ...]
    cache: Path
    scratch: Path | None
    #: More shared caches seen copy-on-write: (folder, its layer's folder) — zig's.
    cow: tuple[tuple[Path, Path], ...] = ()

    def before(self) -> list[str]:
        """Lines run before the sysroot is mounted: the host read-only, then holes."""
        q = shlex.quote
        out = [_READ_ONLY_PASS]
        for path in self.writable:
            d = q(str(path))
            out.append(f"mount --bind {d} {d}")
            out.append(f"mount -o remount,bind,rw {d}")
        return out

    def after(self) -> list[str]:
        """Lines run after it: the copy-on-write caches."""
        out = guarded_mount(self.cache, shlex.quote(str(self.cache)), self.scratch)
        for folder, layer in self.cow:
            out += guarded_mount(folder, shlex.quote(str(folder)), layer)
        return out


# --- the session ---------------------------------------------------------------------
@dataclass
class CrossSession(ShellSession):
    """A cross build: host commands against this build's own sysroot."""

    root: CrossRoot
    sysroot: RootfsSession  # the throwaway copy of the root (and apt in it, emulated)
    mounts: Mounts
    toolchain: CrossToolchain
    compiler: Compiler = GCC  # chosen by the target platform (zig below the sysroot's glibc)

    backend = "cross"
    package_manager = "apt"
    host_auditwheel = True
    ca_bundle: str | None = field(default=None, init=False)  # host pip settings apply
    #: Folders of build-machine requirements (one per step: ``pip --target`` replaces
    #: a folder's ``bin/`` when it installs into it again).
    requires_dirs: list[Path] = field(default_factory=list, init=False)
    rust: RustToolchain | None = field(default=None, init=False)
    packs: tuple[Pack, ...] = field(default=(), init=False)  # installed library packs
    offline: bool = field(default=False, init=False)  # commands see no network (loopback)
    #: numpy as a build requirement (:mod:`~refinery.builder.crossnumpy`): the target's
    #: wheel, and meson's second cross file naming the retargeted numpy's numpy-config.
    target_numpy: Path | None = field(default=None, init=False)
    numpy_cross_file: Path | None = field(default=None, init=False)
    #: What the attempt's record should say about how this session provided things.
    notes: list[str] = field(default_factory=list, init=False)

    def isolate_network(self) -> str:
        """The next commands (the PEP 517 build) run without a network; cargo offline."""
        self.offline = True
        return ""

    @property
    def scratch(self) -> Path:
        return self.sysroot.dir

    @property
    def ldpaths(self) -> tuple[Path, ...]:
        """The sysroot's library folders, after those of the installed packs (auditwheel
        grafts the pack's build of a library, not the distro's)."""
        return (*(p.lib for p in self.packs), *self.sysroot.ldpaths)

    @property
    def pack_target(self) -> PackTarget | None:
        """Library packs are made for zig's target glibc (none for gcc builds)."""
        zig, glibc = self.toolchain.zig, self.compiler.glibc
        if zig is None or glibc is None:
            return None
        return PackTarget(zig, self.root.arch, glibc)

    def install_packs(self, packs: Sequence[Pack]) -> None:
        """Unpack ``packs`` into the sysroot below ``/opt/refinery-packs``: its pkg-config
        sees their ``.pc`` files, its ``bin`` (``pg_config``, run under binfmt; it answers
        with paths below the sysroot) is on PATH."""
        top = self.sysroot.dir / "upper" if self.sysroot.overlay else self.sysroot.merged
        for pack in packs:
            extract(pack.tarball, top)
            install_scripts(pack, top, self.toolchain.sysroot)  # *-config: the sysroot's paths
        self.packs = (*self.packs, *packs)

    @property
    def home(self) -> Path:
        return self.sysroot.dir / "cross-home"

    @property
    def tmp(self) -> Path:
        return self.sysroot.dir / "cross-tmp"

    def inside(self, host: Path) -> str:
        return str(host.resolve())

    def python(self, version: str) -> str:
        self.toolchain = self.root.toolchain(version, self.compiler)
        return str(self.toolchain.cross_python)

    def config_settings(self, build_backend: str) -> tuple[str, ...]:
        settings = self.toolchain.config_settings(build_backend)
        if build_backend == "mesonpy" and self.numpy_cross_file is not None:
            settings += (f"setup-args=--cross-file={self.numpy_cross_file}",)
        return settings

    def environment(self) -> dict[str, str]:
        env = self.toolchain.env(home=self.home, tmp=self.tmp)
        first: list[str] = []
        if self.requires_dirs:
            env["PYTHONPATH"] = ":".join(str(d) for d in self.requires_dirs)
            env[crosstools.CMAKE_BUILD_PREFIXES] = ";".join(str(d) for d in self.requires_dirs)
            first += [str(d / "bin") for d in self.requires_dirs]
        if self.packs:
            first.append(str(self.toolchain.sysroot / PACK_PREFIX / "bin"))
        if self.rust is not None:
            env.update(self.toolchain.cargo_env(self.rust))
            env["CARGO_HOME"] = str(self.home / ".cargo")
            if self.offline:  # its crates were fetched in the requires phase
                env["CARGO_NET_OFFLINE"] = "true"
            first.append(str(self.rust.bin))
        if first:  # after the cross-python's folder: `python`/`pip` stay the cross ones
            cross_bin, _, rest = env["PATH"].partition(":")
            env["PATH"] = ":".join([cross_bin, *first, rest])
        return env

    def provide_build_requires(
        self,
        project: Path,
        *,
        frontend: str,
        build_backend: str,
        env: Mapping[str, str],
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
    ) -> ProcResult:
        """Install the build requirements for the *build* machine; the frontend then
        builds without isolation.

        Under crossenv, pypa/build's isolated environment would resolve them for the
        target: s390x wheels of maturin, cmake, ninja or Cython, run under QEMU or not at
        all. Here every requirement (static, then the backend's dynamic ones) is installed
        by the build-python's pip into this build's own folder, which the cross-python
        and PATH see. A Rust build backend also gets Debian's Rust toolchain."""
        if build_backend in RUST_BACKENDS:
            self.rust = self.root.rust(on_line)
        settings = self.config_settings(build_backend)
        run = functools.partial(self.run, env=env, timeout=timeout, on_line=on_line, log=log)
        result: ProcResult | None = None
        for kind in ("static", "wheel"):
            argv = crosstools.requires_argv(self.toolchain, frontend, str(project), kind, settings)
            result = self.run(argv, env=env, timeout=timeout, on_line=on_line, log=log)
            wanted = crosstools.parse_requires(result.tail) if result.ok else None
            if wanted is None:
                return result
            numpy = crossnumpy.numpy_requirements(wanted, self.toolchain.python)
            if numpy:  # the target's numpy wheel decides the version
                failed = self.fetch_target_numpy(numpy, run)
                if failed is not None:
                    return failed
                wanted = crossnumpy.pinned(wanted, self.target_numpy_version)
            if wanted:
                target = self.sysroot.dir / f"build-requires-{kind}"
                self.requires_dirs.append(target)
                install = crosstools.install_argv(self.toolchain, target, wanted)
                result = self.run(install, env=env, timeout=timeout, on_line=on_line, log=log)
                if not result.ok:
                    return result
        assert result is not None
        failed = self.retarget_numpy(run)
        if failed is not None:
            return failed
        if self.rust is not None:  # crates too, before the build runs without a network
            return self.fetch_crates(project, run) or result
        return result

    def fetch_crates(
        self, project: Path, run: Callable[[Sequence[str]], ProcResult]
    ) -> ProcResult | None:
        """``cargo fetch`` for each Cargo project; where crates.io cannot be reached, the
        crates from the Debian archive instead (:mod:`refinery.upstream.debcrates`). The
        failed command, or None."""
        assert self.rust is not None
        manifests = crossrust.cargo_manifests(project)
        for manifest in manifests:
            result = run(crossrust.fetch_argv(self.rust, manifest))
            if result.ok:
                continue
            if not crossrust.crates_io_unreachable(result.tail):
                return result
            return self.crates_from_debian(manifests, run)
        return None

    def crates_from_debian(
        self, manifests: Sequence[Path], run: Callable[[Sequence[str]], ProcResult]
    ) -> ProcResult | None:
        """Vendor the crates of ``manifests`` from Debian's ``librust-*-dev`` packages,
        make them cargo's only source and resolve each lock file again against them (the
        original kept beside it as ``Cargo.lock.crates-io``)."""
        assert self.rust is not None
        archive = self.root.crate_archive()
        wanted: dict[str, str] = {}
        for manifest in manifests:
            wanted.update(debcrates.lock_crates(manifest.parent))
        cargo_home = self.home / ".cargo"
        try:
            vendored = archive.vendor(wanted, cargo_home / "debian-crates")
        except (NetworkError, OSError, subprocess.CalledProcessError) as exc:
            return ProcResult(("debian-crates",), 1, 0.0, False, (f"crates from Debian: {exc}",))
        (cargo_home / "config.toml").write_text(debcrates.cargo_config(vendored.folder))
        note = (
            f"crates.io is unreachable: {len(vendored.crates)} crates from the Debian archive "
            f"({', '.join(archive.suites)}; librust-*-dev), lock files resolved again to "
            "Debian's versions"
        )
        if vendored.missing:
            note += f"; not in Debian: {', '.join(sorted(vendored.missing))}"
        self.notes.append(note)
        for manifest in manifests:
            lock = manifest.parent / "Cargo.lock"
            if lock.is_file():
                lock.rename(lock.with_name("Cargo.lock.crates-io"))
            result = run(crossrust.generate_lockfile_argv(self.rust, manifest))
            if not result.ok:
                return result
        return None

    @property
    def target_numpy_version(self) -> str:
        assert self.target_numpy is not None
        return crossnumpy.wheel_version(self.target_numpy)

    def fetch_target_numpy(
        self, requirements: Sequence[str], run: Callable[[Sequence[str]], ProcResult]
    ) -> ProcResult | None:
        """Download the target's numpy wheel for ``requirements`` (the plan's wheels on
        the find-links first, then the index) unless one that fits is here; the failed
        download, or None."""
        have = self.target_numpy
        if have is not None and all(
            crossnumpy.wheel_version(have) in Requirement(r).specifier for r in requirements
        ):
            return None
        dest = self.sysroot.dir / "target-numpy"
        shutil.rmtree(dest, ignore_errors=True)
        glibc = self.compiler.glibc or self.root.sysroot_glibc
        if glibc is None:
            raise BuildRootUnavailable("the sysroot's glibc is unknown: no target for numpy")
        argv = crossnumpy.download_argv(
            self.toolchain.build_python,
            dest,
            requirements,
            platforms=crossnumpy.target_platforms(self.root.arch, glibc, self.toolchain.python),
            python=self.toolchain.python,
        )
        result = run(argv)
        self.target_numpy = crossnumpy.wheel_in(dest) if result.ok else None
        return None if self.target_numpy is not None else result

    def retarget_numpy(self, run: Callable[[Sequence[str]], ProcResult]) -> ProcResult | None:
        """Give the build machine's numpy in the requirement folders the target wheel's
        headers, libraries and numpy.pc (numpy pulled in by another requirement: its
        target wheel of the same version is fetched now); the failed download, or None."""
        for folder in self.requires_dirs:
            version = crossnumpy.installed_version(folder)
            if version is None:
                continue
            failed = self.fetch_target_numpy([f"numpy=={version}"], run)
            if failed is not None:
                return failed
            assert self.target_numpy is not None
            crossnumpy.retarget(folder, self.target_numpy)
            config = folder / "bin" / "numpy-config"
            if config.is_file():
                self.numpy_cross_file = self.sysroot.dir / "meson-numpy.ini"
                self.numpy_cross_file.write_text(crossnumpy.meson_cross_file(config))
        return None

    def command(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None, timeout: float | None
    ) -> Command:
        copy = None if self.sysroot.overlay else self.sysroot.merged
        overlay = None
        if self.sysroot.overlay:
            work = self.sysroot.dir
            overlay = (self.root.rootfs.lower, work / "upper", work / "ovl-work")
        script = sysroot_script(
            mountpoint=self.toolchain.sysroot,
            overlay=overlay,
            copy=copy,
            cwd=cwd or str(self.mounts.work.resolve()),
            guard=self.guard(),
        )
        wrapped = unshare_argv(script, argv, offline=self.offline)
        return Command(wrapped, {**self.environment(), **env}, timeout)

    def guard(self) -> SharedGuard:
        """What this build may write: its work and session folders; the pip/uv cache and
        zig's (warmed once, :func:`~refinery.builder.zig.warm_cache`) copy-on-write, each
        build's changes thrown away with it (without overlayfs zig's stays writable)."""
        writable = [self.mounts.work, self.sysroot.dir]
        cow: list[tuple[Path, Path]] = []
        zig = self.toolchain.zig
        if zig is not None and self.sysroot.overlay:
            cow.append((zig.cache.resolve(), self.sysroot.dir / "zig-cache"))
        elif zig is not None:
            writable.append(zig.cache)
        return SharedGuard(
            writable=tuple(p.resolve() for p in writable),
            cache=self.mounts.pip_cache.resolve(),
            scratch=self.sysroot.dir / "pip-cache" if self.sysroot.overlay else None,
            cow=tuple(cow),
        )

    def relativise(self) -> int:
        """Make the sysroot's library links relative (after it was made or changed)."""
        multiarch = MULTIARCH.get(self.root.arch, f"{self.root.arch}-linux-gnu")
        subdirs = (f"usr/lib/{multiarch}", "usr/lib")
        if self.sysroot.overlay:
            upper = self.sysroot.dir / "upper"
            return relativise_links([upper, self.root.rootfs.lower], upper, subdirs)
        return relativise_links([self.sysroot.merged], self.sysroot.merged, subdirs)

    def hide_glibc_link_files(self) -> None:
        """Remove the sysroot glibc's link-time files (``libc.so``, ``crt1.o`` …) from
        this build's sysroot: a zig build links zig's files for the target glibc, and a
        package's ``-L<sysroot>/usr/lib/...`` must not bring the sysroot's newer libc
        back (measured: Pillow's ``_imagingtk`` got ``dlopen@GLIBC_2.34``). The runtime
        libraries (``libc.so.6``) stay: QEMU runs sanity-check programs against them."""
        multiarch = MULTIARCH.get(self.root.arch, f"{self.root.arch}-linux-gnu")
        result = self.sysroot.run(["sh", "-c", crosstools.hide_glibc_script(multiarch)])
        if not result.ok:
            raise BuildRootUnavailable(
                "could not hide glibc's link files:\n" + "\n".join(result.tail[-5:])
            )

    def install_system(
        self,
        packages: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
    ) -> ProcResult:
        """apt inside the sysroot, under emulation (maintainer scripts and dependencies as
        on s390x); then the new library links are made relative."""
        result = self.sysroot.install_system(packages, timeout=timeout, on_line=on_line, log=log)
        self.relativise()
        return result


# --- the root ------------------------------------------------------------------------
@dataclass
class CrossRoot:
    """The cross backend for the rootfs root ``rootfs``; ``cache`` is the cross folder of
    the cache root (toolchains)."""

    rootfs: RootfsRoot
    cache: Path
    mirror: str | None = None  # Debian mirror for the Rust toolchain (default: the host's)
    _toolchains: dict[tuple[str, Compiler], CrossToolchain] = field(
        default_factory=dict, init=False
    )

    @property
    def backend(self) -> str:
        return "cross"

    @property
    def arch(self) -> str:
        return self.rootfs.arch

    @property
    def image(self) -> str:
        keys = ",".join(sorted(tc.key for tc in self._toolchains.values()))
        return f"{self.rootfs.image}+cross:{keys or 'unprepared'}"

    def prepare(self, on_line: OnLine | None = None) -> None:
        missing = crosstools.missing_tools(self.arch)
        if missing:
            raise BuildRootUnavailable(
                f"the cross backend needs {', '.join(missing)} on PATH; install with "
                f"`apt-get install crossbuild-essential-{self.arch} pkg-config "
                "qemu-user-static` or use --backend rootfs"
            )
        self.rootfs.prepare(on_line)
        for version in self.pythons():
            self.toolchain(version, GCC, on_line)

    def pythons(self) -> tuple[str, ...]:
        """The root's Pythons that have a host Python of the same minor version."""
        return tuple(v for v in self.rootfs.pythons() if crosstools.host_python(v) is not None)

    @property
    def sysroot_glibc(self) -> Glibc | None:
        """The glibc of the root the sysroot is made from (bookworm: 2.36)."""
        multiarch = MULTIARCH.get(self.arch, f"{self.arch}-linux-gnu")
        return libc_glibc(self.rootfs.lower / "usr/lib" / multiarch / "libc.so.6")

    def compiler(self, target_platform: str | None) -> Compiler:
        """gcc against the sysroot, or zig when the target's glibc is older."""
        return compiler_for(target_platform or "", self.sysroot_glibc)

    def toolchain(
        self, version: str, compiler: Compiler = GCC, on_line: OnLine | None = None
    ) -> CrossToolchain:
        """The cached toolchain for target Python ``version`` and ``compiler`` (made the
        first time)."""
        if (version, compiler) in self._toolchains:
            return self._toolchains[version, compiler]
        host = crosstools.host_python(version)
        if version not in self.rootfs.pythons() or host is None:
            where = f"cross {self.rootfs.spec.release} (root and host Python must match)"
            raise MissingPython(version, self.pythons(), where)
        inputs = ToolchainInputs(
            arch=self.arch,
            python=version,
            host_python=host,
            root_key=self.rootfs.image,
            lower=self.rootfs.lower,
            compiler=compiler,
        )
        made = crosstools.ensure_toolchain(inputs, self.cache, on_line)
        self._toolchains[version, compiler] = made
        return made

    def crate_archive(self) -> debcrates.CrateArchive:
        """Rust crates from the Debian archive (when crates.io cannot be reached)."""
        return debcrates.CrateArchive(self.mirror or host_mirror(), self.cache / "crates")

    def rust(self, on_line: OnLine | None = None) -> RustToolchain:
        """Debian's Rust for this root's release and target (fetched on first use)."""
        return crossrust.ensure_rust(
            self.cache,
            release=self.rootfs.spec.release,
            arch=self.arch,
            mirror=self.mirror or host_mirror(),
            on_line=on_line,
        )

    @contextlib.contextmanager
    def _build(self, mounts: Mounts, target_platform: str | None) -> Iterator[CrossSession]:
        if not self._toolchains:
            self.prepare()
        if not self._toolchains:
            raise BuildRootUnavailable(
                f"no Python of the root ({', '.join(self.rootfs.pythons())}) has a host "
                "Python of the same minor version for crossenv"
            )
        compiler = self.compiler(target_platform)
        default = self.toolchain(min(self.pythons()), compiler)
        if default.zig is not None and compiler.glibc is not None:
            warm_cache(default.zig, zig_target(self.arch, compiler.glibc))
        with self.rootfs.build_session(mounts) as sysroot:
            session = CrossSession(self, sysroot, mounts, default, compiler)
            session.home.mkdir()
            session.tmp.mkdir()
            session.relativise()
            if compiler.kind == "zig":
                session.hide_glibc_link_files()
            yield session

    def build_session(
        self, mounts: Mounts, target_platform: str | None = None
    ) -> contextlib.AbstractContextManager[CrossSession]:
        """A build against a throwaway sysroot, compiled by gcc or (for a target older
        than the sysroot's glibc) zig."""
        return self._build(mounts, target_platform)

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[RootfsSession]:
        """A clean emulated root (the rootfs backend's): the import is the gate."""
        return self.rootfs.smoke_session(mounts)
