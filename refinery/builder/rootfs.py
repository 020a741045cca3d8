"""The ``rootfs`` backend: a cached Debian s390x root run under QEMU user emulation.

The cached tarball (see :mod:`refinery.builder.rootfs_image`) is unpacked once into a
read-only *lower* directory. Every session gets its own overlayfs upper directory (or,
where overlayfs is unavailable, its own unpacked copy), so recipe packages installed in
one build never reach the next. Each command runs in a private mount and PID namespace
(``unshare --mount --pid --fork``) that mounts the overlay, ``/proc``, ``/dev`` and the
session's bind mounts, then ``chroot`` s into it; when the command ends (or is killed on
timeout) the namespace and everything in it disappears.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refinery.builder import binfmt, isolation, pipconf, rootfs_image
from refinery.builder.errors import BuildRootUnavailable, MissingPython
from refinery.builder.proc import OnLine
from refinery.builder.roots import INSIDE_BASE, BoundSession, Command, Mounts, ShellSession, quoted

ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PYTHON_BIN = re.compile(r"^python(\d+\.\d+)$")
_UNPACKED_MARK = ".refinery-unpacked"
STALE_SESSION_SECONDS = 24 * 3600
PIP_CACHE_INSIDE = f"{INSIDE_BASE}/pip-cache"  # the shared pip/uv cache, as builds see it


def base_env() -> dict[str, str]:
    """The environment commands inside the root start from (nothing of the host's)."""
    return {
        "PATH": ROOT_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "PIP_ROOT_USER_ACTION": "ignore",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def overlay_supported() -> bool:
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


def ldpaths_for(bases: Sequence[Path], multiarch: str) -> tuple[Path, ...]:
    """Library directories of a Debian root, in the order the dynamic loader uses."""
    out: list[Path] = []
    for base in bases:
        out += [
            base / "usr/local/lib",
            base / "lib" / multiarch,
            base / "usr/lib" / multiarch,
            base / "lib",
            base / "usr/lib",
        ]
    return tuple(out)


MULTIARCH = {"s390x": "s390x-linux-gnu", "amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


#: Run the command without CAP_SYS_ADMIN (when util-linux's setpriv is there): a build
#: cannot remount the read-only and copy-on-write mounts that guard shared caches.
DROP_ADMIN = (
    'if command -v setpriv >/dev/null; then set -- setpriv --bounding-set -sys_admin -- "$@"; fi'
)


def guarded_mount(src: Path, target: str, scratch: Path | None) -> list[str]:
    """Lines mounting the shared cache ``src`` at ``target`` (quoted) so that a build
    cannot change it: copy-on-write, its layer in ``scratch`` (thrown away with the
    session), or read-only when ``scratch`` is None (no overlay here)."""
    q = shlex.quote
    if scratch is None:
        return [f"mount --bind {q(str(src))} {target}", f"mount -o remount,bind,ro {target}"]
    opts = f"lowerdir={src},upperdir={scratch}/upper,workdir={scratch}/work"
    return [
        f"mkdir -p {q(str(scratch))}/upper {q(str(scratch))}/work",
        f"mount -t overlay overlay -o {q(opts)} {target}",
    ]


def namespace_script(
    *,
    merged: Path,
    overlay: tuple[Path, Path, Path] | None,
    binds: Sequence[tuple[Path, str, bool]],
    cwd: str,
    guarded: Mapping[str, Path | None] | None = None,
) -> str:
    """The shell script run in the new mount namespace; ``"$@"`` is the command.
    ``guarded``: the inside paths of shared caches, each mounted copy-on-write with its
    layer in the given folder (None: read-only) — see :func:`guarded_mount`."""
    q = shlex.quote
    m = q(str(merged))
    lines = ["set -eu"]
    if overlay is not None:
        lower, upper, work = overlay
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        lines.append(f"mount -t overlay overlay -o {q(opts)} {m}")
    lines += [
        f"mount -t proc proc {m}/proc",
        f"mount --rbind /dev {m}/dev",
        f"mount --make-rslave {m}/dev",
    ]
    for src, dst, read_only in binds:
        target = q(f"{merged}{dst}")
        lines.append(f"mkdir -p {target}")
        if guarded is not None and dst in guarded:
            lines += guarded_mount(src, target, guarded[dst])
            continue
        lines.append(f"mount --bind {q(str(src))} {target}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
    for name in ("resolv.conf", "hosts"):
        host = Path("/etc") / name
        if host.exists():
            lines.append(f"rm -f {m}/etc/{name} && cp -L {q(str(host))} {m}/etc/{name}")
    if guarded is not None:
        lines += [f'set -- chroot {m} /usr/bin/env --chdir={q(cwd)} "$@"', DROP_ADMIN, 'exec "$@"']
        return "\n".join(lines)
    lines.append(f'exec chroot {m} /usr/bin/env --chdir={q(cwd)} "$@"')
    return "\n".join(lines)


def unshare_argv(script: str, argv: Sequence[str], *, offline: bool = False) -> list[str]:
    """``argv`` run by ``script`` in new mount and PID namespaces (``offline``: and a
    network namespace of its own, loopback only — :mod:`refinery.builder.isolation`)."""
    return [
        "unshare",
        "--mount",
        "--pid",
        *isolation.unshare_net(offline),
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        isolation.offline_script(script) if offline else script,
        "refinery-root",
        *argv,
    ]


@dataclass
class RootfsSession(BoundSession, ShellSession):
    """One throwaway root: an overlay upper dir (or a full copy) plus bind mounts."""

    root: RootfsRoot
    dir: Path
    overlay: bool
    purpose: str

    backend = "rootfs"
    package_manager = "apt"
    host_auditwheel = True
    ca_bundle: str | None = field(default=pipconf.ROOT_CA_BUNDLE, init=False)
    offline: bool = field(default=False, init=False)  # commands see no network (loopback)

    def isolate_network(self) -> str:
        self.offline = True
        return ""

    @property
    def scratch(self) -> Path:
        return self.dir

    @property
    def merged(self) -> Path:
        return self.dir / ("merged" if self.overlay else "root")

    @property
    def ldpaths(self) -> tuple[Path, ...]:
        multiarch = MULTIARCH.get(self.root.spec.arch, f"{self.root.spec.arch}-linux-gnu")
        bases = [self.dir / "upper", self.root.lower] if self.overlay else [self.merged]
        return ldpaths_for(bases, multiarch)

    def python(self, version: str) -> str:
        available = self.root.pythons()
        if version not in available:
            raise MissingPython(version, available, f"rootfs {self.root.spec.release}")
        return f"/usr/bin/python{version}"

    def command(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None, timeout: float | None
    ) -> Command:
        overlay = None
        if self.overlay:
            overlay = (self.root.lower, self.dir / "upper", self.dir / "ovl-work")
        script = namespace_script(
            merged=self.merged,
            overlay=overlay,
            binds=self._binds,
            cwd=cwd or f"{INSIDE_BASE}/work",
            guarded={PIP_CACHE_INSIDE: self.dir / "pip-cache" if self.overlay else None},
        )
        argv = unshare_argv(script, argv, offline=self.offline)
        return Command(argv, {**base_env(), **env}, timeout)

    def install_command(self, packages: Sequence[str]) -> tuple[str, str]:
        if not packages:
            raise ValueError("install_system needs at least one package")
        names = quoted(packages)
        return "apt", f"apt-get update -q && apt-get install -y -q --no-install-recommends {names}"


@dataclass
class RootfsRoot:
    """The rootfs backend for one :class:`RootfsSpec` (Debian release + arch + packages);
    ``cache`` is the roots folder of the cache root (tarballs, unpacked lower layers,
    session directories)."""

    spec: rootfs_image.RootfsSpec
    cache: Path
    use_overlay: bool | None = None  # None: detect
    _image: rootfs_image.RootfsImage | None = field(default=None, init=False)

    @property
    def backend(self) -> str:
        return "rootfs"

    @property
    def arch(self) -> str:
        return self.spec.arch

    @property
    def lower(self) -> Path:
        return self.cache / self.spec.key

    @property
    def image(self) -> str:
        if self._image is None:
            self._image = rootfs_image.cached(self.spec, self.cache)
        return self._image.digest if self._image else f"{self.spec.key}@unbuilt"

    def prepare(self, on_line: OnLine | None = None) -> None:
        self._image = rootfs_image.ensure(self.spec, cache=self.cache, on_line=on_line)
        binfmt.ensure(self.spec.arch)
        if shutil.which("unshare") is None or shutil.which("chroot") is None:
            raise BuildRootUnavailable("unshare and chroot (util-linux, coreutils) are needed")
        self._unpack(self._image)
        self._sweep_stale_sessions()
        if self.use_overlay is None:
            self.use_overlay = overlay_supported() and self._overlay_works()

    def _unpack(self, image: rootfs_image.RootfsImage) -> None:
        mark = self.lower / _UNPACKED_MARK
        if mark.is_file() and mark.read_text().strip() == image.sha256:
            return
        self.cache.mkdir(parents=True, exist_ok=True)
        with open(self.cache / f".{self.spec.key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if mark.is_file() and mark.read_text().strip() == image.sha256:
                return
            staging = Path(tempfile.mkdtemp(prefix=f".{self.spec.key}.", dir=self.cache))
            untar_into(image.tarball, staging)
            (staging / _UNPACKED_MARK).write_text(image.sha256 + "\n")
            if self.lower.exists():
                shutil.rmtree(self.lower)
            staging.rename(self.lower)

    def _overlay_works(self) -> bool:
        probe = Path(tempfile.mkdtemp(prefix="overlay-probe.", dir=self._sessions_dir()))
        try:
            for sub in ("upper", "ovl-work", "merged"):
                (probe / sub).mkdir()
            opts = f"lowerdir={self.lower},upperdir={probe}/upper,workdir={probe}/ovl-work"
            done = subprocess.run(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "mount",
                    "-t",
                    "overlay",
                    "overlay",
                    "-o",
                    opts,
                    str(probe / "merged"),
                ],
                capture_output=True,
                check=False,
            )
            return done.returncode == 0
        finally:
            shutil.rmtree(probe, ignore_errors=True)

    def _sessions_dir(self) -> Path:
        path = self.cache / "sessions"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _sweep_stale_sessions(self, max_age: float = STALE_SESSION_SECONDS) -> None:
        """Remove session directories a killed process left behind (older than a day)."""
        now = time.time()
        for entry in self._sessions_dir().iterdir():
            try:
                old = now - entry.stat().st_mtime > max_age
            except OSError:
                continue
            if old:
                shutil.rmtree(entry, ignore_errors=True)

    def pythons(self) -> tuple[str, ...]:
        found = []
        for entry in (self.lower / "usr/bin").glob("python3.*"):
            match = _PYTHON_BIN.match(entry.name)
            if match:
                found.append(match.group(1))
        return tuple(sorted(found, key=lambda v: tuple(int(p) for p in v.split("."))))

    @contextlib.contextmanager
    def _session(self, mounts: Mounts, purpose: str) -> Iterator[RootfsSession]:
        if self._image is None:
            self.prepare()
        overlay = bool(self.use_overlay)
        for src, _dst, read_only in mounts.pairs(INSIDE_BASE):
            if not read_only:
                src.mkdir(parents=True, exist_ok=True)
        path = self._sessions_dir() / f"{purpose}-{uuid.uuid4().hex[:12]}"
        path.mkdir()
        try:
            if overlay:
                for sub in ("upper", "ovl-work", "merged"):
                    (path / sub).mkdir()
            else:
                assert self._image is not None
                (path / "root").mkdir()
                untar_into(self._image.tarball, path / "root")
            yield RootfsSession(mounts, self, path, overlay, purpose)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def build_session(
        self, mounts: Mounts, target_platform: str | None = None
    ) -> contextlib.AbstractContextManager[RootfsSession]:
        return self._session(mounts, "build")

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[RootfsSession]:
        return self._session(mounts, "smoke")


def untar_into(tarball: Path, dest: Path) -> None:
    """Unpack a (zstd) root filesystem tarball keeping owners, modes and devices."""
    done = subprocess.run(
        ["tar", "--zstd", "-xpf", str(tarball), "--numeric-owner", "-C", str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BuildRootUnavailable(f"unpacking {tarball} failed: {done.stderr.strip()}")


def os_release(root: Path) -> dict[str, str]:
    """Parsed ``/etc/os-release`` of an unpacked root (empty when absent)."""
    out: dict[str, str] = {}
    for candidate in (root / "etc/os-release", root / "usr/lib/os-release"):
        if candidate.is_file() or candidate.is_symlink():
            try:
                text = candidate.read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    out[key] = value.strip().strip('"')
            break
    return out
