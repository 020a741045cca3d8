"""The cached Debian root filesystem image (`refinery buildroot create`).

``mmdebstrap --arch=s390x`` makes a Debian root from the mirror the host's apt already
uses; the result is kept as a zstd tarball in the roots folder of the one cache root
(``CacheRoot.roots``, passed in by the caller), keyed by what went into it (release,
arch, sorted package list, hook version), so later runs start in seconds. The host's CA
bundle and locally added CA files are copied into the root so pip inside works through
TLS-intercepting proxies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from refinery.builder import binfmt
from refinery.builder.errors import BuildRootUnavailable
from refinery.builder.proc import OnLine, run
from refinery.core.clock import now
from refinery.store import sha256_file

DEFAULT_RELEASE = "bookworm"
DEFAULT_ARCH = "s390x"
DEFAULT_PACKAGES: tuple[str, ...] = (
    "build-essential",
    "ca-certificates",
    "patchelf",
    "python3",
    "python3-dev",
    "python3-pip",
    "python3-venv",
)
# Bump when the customize hooks change what ends up in the root.
HOOK_VERSION = 1
FALLBACK_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True)
class RootfsSpec:
    """What a root filesystem image is made of; its ``key`` names the cache entry."""

    release: str = DEFAULT_RELEASE
    arch: str = DEFAULT_ARCH
    packages: tuple[str, ...] = DEFAULT_PACKAGES

    @property
    def key(self) -> str:
        blob = json.dumps(
            {
                "release": self.release,
                "arch": self.arch,
                "packages": sorted(set(self.packages)),
                "hook": HOOK_VERSION,
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return f"debian-{self.release}-{self.arch}-{digest}"


@dataclass(frozen=True)
class RootfsImage:
    """A cached root filesystem tarball and what is known about it."""

    spec: RootfsSpec
    tarball: Path
    sha256: str
    mirror: str
    created_seconds: float

    @property
    def digest(self) -> str:
        """Identifies the root in build records (``image`` field of an attempt)."""
        return f"{self.spec.key}@sha256:{self.sha256}"


def tarball_path(spec: RootfsSpec, cache: Path) -> Path:
    """The image tarball of ``spec`` in ``cache`` (the cache root's roots folder)."""
    return cache / f"{spec.key}.tar.zst"


def _manifest_path(tarball: Path) -> Path:
    return tarball.with_name(tarball.name.removesuffix(".tar.zst") + ".json")


_LEGACY_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)")


def _deb822_uris(text: str) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "deb").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        found.extend((uri, suites) for uri in fields.get("uris", "").split())
    return found


def host_mirrors(apt_dir: Path = Path("/etc/apt")) -> list[str]:
    """Debian mirrors named by the host's apt sources (main archive first, no security)."""
    entries: list[tuple[str, list[str]]] = []
    legacy = apt_dir / "sources.list"
    files = [legacy] if legacy.is_file() else []
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(parts.glob("*.list")) + sorted(parts.glob("*.sources"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            entries += _deb822_uris(text)
        else:
            for line in text.splitlines():
                match = _LEGACY_LINE.match(line)
                if match:
                    entries.append((match.group(1), [match.group(2)]))
    mirrors: list[str] = []
    for uri, suites in entries:
        if any(s.endswith("-security") or "/updates" in s for s in suites):
            continue
        if "debian-security" in uri or uri in mirrors:
            continue
        mirrors.append(uri.rstrip("/"))
    return mirrors


def host_distro(os_release: Path = Path("/etc/os-release")) -> str:
    """``ID`` from os-release (``debian``, ``ubuntu``…), empty when unknown."""
    try:
        text = os_release.read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ID":
            return value.strip().strip('"').lower()
    return ""


def host_mirror(
    apt_dir: Path = Path("/etc/apt"), os_release: Path = Path("/etc/os-release")
) -> str:
    """The Debian mirror the host's apt uses; deb.debian.org on non-Debian hosts.

    An Ubuntu host (e.g. a GitHub runner) names Ubuntu mirrors, which carry no Debian
    releases; there the public Debian redirector is the only sensible default (mmdebstrap
    then also needs the ``debian-archive-keyring`` package).
    """
    if host_distro(os_release) not in ("debian", ""):
        return FALLBACK_MIRROR
    mirrors = host_mirrors(apt_dir)
    return mirrors[0] if mirrors else FALLBACK_MIRROR


def host_ca_files(
    bundle: Path = HOST_CA_BUNDLE, local_dir: Path = HOST_LOCAL_CA_DIR
) -> tuple[Path | None, tuple[Path, ...]]:
    """The host's CA bundle (if any) and its locally added CA certificates."""
    local: tuple[Path, ...] = ()
    if local_dir.is_dir():
        local = tuple(sorted(p for p in local_dir.rglob("*.crt") if p.is_file()))
    return (bundle if bundle.is_file() else None), local


def customize_hooks(bundle: Path | None, local_cas: tuple[Path, ...]) -> list[str]:
    """Shell hooks (run by mmdebstrap with the root as ``$1``) that install the host CAs."""
    hooks: list[str] = []
    if local_cas:
        files = " ".join(shlex.quote(str(p)) for p in local_cas)
        hooks.append(
            'mkdir -p "$1/usr/local/share/ca-certificates" && '
            f'cp {files} "$1/usr/local/share/ca-certificates/"'
        )
    if bundle is not None:
        # The host bundle already holds Debian's CAs plus the local ones; copying it
        # avoids running update-ca-certificates under emulation.
        hooks.append(f'cp {shlex.quote(str(bundle))} "$1/etc/ssl/certs/ca-certificates.crt"')
    return hooks


def mmdebstrap_command(spec: RootfsSpec, mirror: str, out: Path, hooks: list[str]) -> list[str]:
    argv = [
        "mmdebstrap",
        f"--arch={spec.arch}",
        "--variant=apt",
        "--mode=root",
        "--format=tar",
        f"--include={','.join(sorted(set(spec.packages)))}",
    ]
    argv += [f"--customize-hook={hook}" for hook in hooks]
    argv += [spec.release, str(out), mirror]
    return argv


def _check_tools() -> None:
    missing = [tool for tool in ("mmdebstrap", "zstd", "tar") if shutil.which(tool) is None]
    if missing:
        raise BuildRootUnavailable(
            f"missing {', '.join(missing)}; install with "
            "`apt-get install mmdebstrap zstd qemu-user-static binfmt-support arch-test`"
        )
    if not DEBIAN_KEYRING.is_file():
        raise BuildRootUnavailable(
            f"{DEBIAN_KEYRING} is missing; install it with `apt-get install "
            "debian-archive-keyring` (mmdebstrap verifies the Debian archive with it)"
        )
    if os.geteuid() != 0:
        raise BuildRootUnavailable(
            "creating and entering the rootfs build root needs root (mmdebstrap --mode=root, "
            "chroot, unshare --mount); run as root or use --backend container"
        )


def cached(spec: RootfsSpec, cache: Path) -> RootfsImage | None:
    tarball = tarball_path(spec, cache)
    manifest = _manifest_path(tarball)
    if not (tarball.is_file() and manifest.is_file()):
        return None
    data = json.loads(manifest.read_text())
    return RootfsImage(
        spec=spec,
        tarball=tarball,
        sha256=str(data["sha256"]),
        mirror=str(data.get("mirror", "")),
        created_seconds=float(data.get("created_seconds", 0.0)),
    )


def create(
    spec: RootfsSpec,
    *,
    cache: Path,
    mirror: str | None = None,
    on_line: OnLine | None = None,
    log: Path | None = None,
    timeout: float | None = 3600,
) -> RootfsImage:
    """Build the root filesystem with mmdebstrap and store it in the cache (atomically)."""
    _check_tools()
    binfmt.ensure(spec.arch)
    mirror = mirror or host_mirror()
    tarball = tarball_path(spec, cache)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(f".{tarball.name}.{os.getpid()}.partial.tar.zst")
    bundle, local_cas = host_ca_files()
    argv = mmdebstrap_command(spec, mirror, partial, customize_hooks(bundle, local_cas))
    started = time.monotonic()
    try:
        result = run(argv, on_line=on_line, log=log, timeout=timeout)
        if not result.ok:
            tail = "\n".join(result.tail[-20:])
            if "did not find any indices for architecture" in tail:
                raise BuildRootUnavailable(
                    f"{mirror} has no {spec.arch} packages for {spec.release} (Debian LTS "
                    f"releases drop {spec.arch}); use bookworm or newer, or the container "
                    "backend (manylinux_2_28, glibc 2.28) for wheels that install on older glibc"
                )
            raise BuildRootUnavailable(
                f"mmdebstrap failed (exit {result.exit_code}) making {spec.key}:\n{tail}"
            )
        seconds = time.monotonic() - started
        digest = sha256_file(partial)
        partial.replace(tarball)
    finally:
        partial.unlink(missing_ok=True)
    image = RootfsImage(spec, tarball, digest, mirror, seconds)
    manifest = {
        "spec": asdict(spec),
        "key": spec.key,
        "sha256": digest,
        "mirror": mirror,
        "created_seconds": round(seconds, 1),
        "created_at": now(),
        "mmdebstrap": _tool_version(["mmdebstrap", "--version"]),
    }
    _manifest_path(tarball).write_text(json.dumps(manifest, indent=2) + "\n")
    return image


def ensure(
    spec: RootfsSpec,
    *,
    cache: Path,
    on_line: OnLine | None = None,
    log: Path | None = None,
) -> RootfsImage:
    """The cached image for ``spec``, creating it first when the cache lacks it."""
    return cached(spec, cache) or create(spec, cache=cache, on_line=on_line, log=log)


def _tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()
