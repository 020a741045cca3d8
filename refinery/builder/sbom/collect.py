"""Gathering an SBOM's facts from a finished build: the repaired wheel, the build
session's root (its files, or commands inside it) and the attempt's log.

Which package provides a grafted library is asked of the *build root*, never the host:

* rootfs and cross sessions: the library is looked up in the session's library folders
  in the order auditwheel searched them (a library pack's folder first), then its
  root path is looked up in the root's own dpkg database files (:mod:`.dpkg`);
* other sessions (container images, native): a short script inside asks ``ldconfig
  -p`` where the library is, and ``rpm -qf`` (or ``dpkg -S``) who owns it.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refinery.builder.proc import run
from refinery.builder.roots import Session
from refinery.builder.sbom.document import FixFacts, Grafted, RootFacts
from refinery.builder.sbom.dpkg import DebPackage, PackageDb
from refinery.core.models import GraftedLib, PackUse

_HASHED = re.compile(r"^(?P<base>.+)-[0-9a-f]{8}(?P<ext>\.so(\.[^/]*)?)$")
_BUILD_DEPS_HEAD = "Installed build dependency versions:"
_PIN = re.compile(r"^\s*-\s*([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*$")
_PIP_DONE = "Successfully installed "
_GCC = re.compile(r"^gcc-\d+$")


@dataclass(frozen=True, slots=True)
class RootView:
    """A build root the host can read: its layers (top first), the library folders in
    auditwheel's search order, and the installed library packs' folders."""

    layers: tuple[Path, ...]
    lib_dirs: tuple[Path, ...]
    packs: tuple[tuple[Path, PackUse], ...] = ()


def original_soname(file: str) -> str:
    """``libsnappy-1a2b3c4d.so.1.1.9`` → ``libsnappy.so.1.1.9`` (auditwheel's rename)."""
    name = file.rsplit("/", 1)[-1]
    found = _HASHED.match(name)
    return found.group("base") + found.group("ext") if found else name


def grafted_members(wheel: Path) -> dict[str, bytes]:
    """The libraries auditwheel grafted: ``<top>.libs/*.so*`` members of the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        return {
            n: zf.read(n)
            for n in zf.namelist()
            if n.count("/") == 1 and n.split("/")[0].endswith(".libs") and ".so" in n
        }


def view_of(session: Session) -> RootView | None:
    """The host-readable root of a rootfs or cross session (None for the others)."""
    from refinery.builder.cross import CrossSession
    from refinery.builder.rootfs import RootfsSession

    sysroot = session.sysroot if isinstance(session, CrossSession) else session
    if not isinstance(sysroot, RootfsSession):
        return None
    layers = (sysroot.dir / "upper", sysroot.root.lower) if sysroot.overlay else (sysroot.merged,)
    packs: tuple[tuple[Path, PackUse], ...] = ()
    if isinstance(session, CrossSession):
        packs = tuple((p.lib, PackUse(p.name, p.version, p.identity)) for p in session.packs)
    return RootView(layers, tuple(session.ldpaths), packs)


def _root_path(view: RootView, found: Path) -> str:
    for layer in view.layers:
        if found == layer or layer in found.parents:
            return "/" + found.relative_to(layer).as_posix()
    return str(found)


def locate(view: RootView, soname: str) -> tuple[str, PackUse | None]:
    """Where the loader search found ``soname``: (root path, or the pack that has it)."""
    for folder in view.lib_dirs:
        candidate = folder / soname
        if candidate.is_file() or candidate.is_symlink():
            for lib, pack in view.packs:
                if folder == lib:
                    return f"pack:{pack.name}/lib/{soname}", pack
            return _root_path(view, candidate), None
    return "", None


def grafted_from_root(
    view: RootView, db: PackageDb | None, members: Mapping[str, bytes]
) -> tuple[Grafted, ...]:
    """Each grafted member with what provides it in ``view`` (its dpkg ``db``)."""
    located = {m: locate(view, original_soname(m)) for m in members}
    owners = db.owners(p for p, pack in located.values() if p and pack is None) if db else {}
    out: list[Grafted] = []
    for member, (path, pack) in sorted(located.items()):
        soname = original_soname(member)
        digest = hashlib.sha256(members[member]).hexdigest()
        if pack is not None:
            lib = GraftedLib(member, soname, pack.name, pack.version, "pack")
            out.append(Grafted(lib, digest, path, identity=pack.sha256))
            continue
        deb = owners.get(path)
        if deb is not None:
            lib = GraftedLib(member, soname, deb.name, deb.version, "deb")
            out.append(Grafted(lib, digest, path, deb.arch))
        else:
            out.append(Grafted(GraftedLib(member, soname), digest, path))
    return tuple(out)


# --- asking inside the session ---------------------------------------------------------
INSIDE_SCRIPT = r"""
for s in "$@"; do
  p=$(ldconfig -p 2>/dev/null | awk -v s="$s" '$1 == s {print $NF; exit}')
  if [ -z "$p" ]; then printf 'lib\t%s\t\t\t\t\n' "$s"; continue; fi
  if command -v rpm >/dev/null 2>&1; then
    q=$(rpm -qf --qf '%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}' "$p" 2>/dev/null) && k=rpm || q=
  else
    n=$(dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1)
    q=$(dpkg-query -W -f '${Package}\t${Version}\t${Architecture}' "$n" 2>/dev/null) && k=deb || q=
  fi
  if [ -z "$q" ]; then k=; q="		"; fi
  printf 'lib\t%s\t%s\t%s\t%s\n' "$s" "$p" "$k" "$q"
done
. /etc/os-release 2>/dev/null && printf 'os\t%s\t%s\t%s\n' "$ID" "$VERSION_ID" "$PRETTY_NAME"
printf 'glibc\t%s\n' "$(ldd --version 2>/dev/null | head -n1 | awk '{print $NF}')"
printf 'gcc\t%s\n' "$(gcc -dumpfullversion 2>/dev/null)"
"""


def parse_inside(lines: Sequence[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """The script's answers: soname → (path, kind, package, version, arch); and facts."""
    libs: dict[str, tuple[str, ...]] = {}
    facts: dict[str, str] = {}
    for line in lines:
        parts = line.split("\t")
        if parts[0] == "lib" and len(parts) >= 7:
            libs[parts[1]] = tuple(parts[2:7])
        elif parts[0] == "os" and len(parts) >= 4:
            facts |= {"id": parts[1], "version": parts[2], "name": parts[3]}
        elif parts[0] in ("glibc", "gcc") and len(parts) >= 2:
            facts[parts[0]] = parts[1]
    return libs, facts


def ask_inside(
    session: Session, sonames: Sequence[str]
) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    result = session.run(["sh", "-c", INSIDE_SCRIPT, "refinery-sbom", *sonames], timeout=300)
    return parse_inside([line.rstrip("\n") for line in result.tail])


def grafted_from_answers(
    answers: Mapping[str, tuple[str, ...]], members: Mapping[str, bytes]
) -> tuple[Grafted, ...]:
    out: list[Grafted] = []
    for member in sorted(members):
        soname = original_soname(member)
        path, kind, package, version, arch = answers.get(soname, ("", "", "", "", ""))
        digest = hashlib.sha256(members[member]).hexdigest()
        lib = GraftedLib(member, soname, package, version, kind if package else "")
        out.append(Grafted(lib, digest, path, arch))
    return tuple(out)


# --- the rest of the facts ---------------------------------------------------------------
def build_deps(lines: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """What the build installed, from the log: pypa/build's ``Installed build dependency
    versions`` block (isolated builds) and pip's ``Successfully installed`` lines (the
    cross backend's own build-requirements step)."""
    found: dict[str, str] = {}
    in_block = False
    for line in lines:
        if _BUILD_DEPS_HEAD in line:
            in_block = True
            continue
        pin = _PIN.match(line) if in_block else None
        if pin:
            found[pin.group(1)] = pin.group(2)
            continue
        in_block = False
        if line.startswith(_PIP_DONE):
            for item in line[len(_PIP_DONE) :].split():
                name, _, version = item.rpartition("-")
                if name and version:
                    found[name] = version
    return tuple(sorted(found.items(), key=lambda kv: kv[0].lower()))


def os_facts(layers: Sequence[Path]) -> dict[str, str]:
    from refinery.builder.rootfs import os_release

    for layer in layers:
        release = os_release(layer)
        if release:
            return {"id": release.get("ID", ""), "version": release.get("VERSION_ID", "")} | {
                "name": release.get("PRETTY_NAME", "")
            }
    return {}


def root_compilers(session: Session, db: PackageDb | None) -> tuple[tuple[str, str], ...]:
    """The compilers of the build: zig (and its target glibc), the host's cross gcc, or
    the root's own gcc package."""
    from refinery.builder.cross import CrossSession
    from refinery.builder.zig import ZIGLANG

    if isinstance(session, CrossSession):
        if session.compiler.kind == "zig":
            return (("zig", ZIGLANG.partition("==")[2]),)
        gcc = f"{session.toolchain.triplet}-gcc"
        done = run([gcc, "-dumpfullversion"], timeout=60)
        return ((gcc, done.tail[-1].strip() if done.ok and done.tail else ""),)
    if db is None:
        return ()
    return tuple((p.name, p.version) for n, p in sorted(db.packages.items()) if _GCC.match(n))


def target_glibc(session: Session) -> str:
    from refinery.builder.cross import CrossSession
    from refinery.core.glibc import glibc_text

    if isinstance(session, CrossSession) and session.compiler.glibc is not None:
        return glibc_text(session.compiler.glibc)
    return ""


def fix_facts(spec: Any, db: PackageDb | None, packs: Sequence[PackUse]) -> FixFacts:
    """The attempt's fix (an :class:`~refinery.builder.options.AttemptSpec`) with the
    versions its system packages have in the root."""
    if spec is None:
        return FixFacts(packs=tuple(f"{p.name} {p.version} ({p.sha256[:12]})" for p in packs))
    installed: list[tuple[str, str, str]] = []
    for name in spec.system_packages:
        deb: DebPackage | None = db.version(name) if db else None
        installed.append((name, deb.version if deb else "", deb.arch if deb else ""))
    return FixFacts(
        system_packages=tuple(installed),
        env=tuple(sorted(spec.env.items())),
        constraints=tuple(spec.constraints),
        build_requires=tuple(spec.build_requires),
        config_settings=tuple(spec.config_settings),
        packs=tuple(f"{p.name} {p.version} ({p.sha256[:12]})" for p in packs),
        patches=tuple(spec.patches),
        vendor=tuple(spec.vendor.items()),
    )


def root_facts(
    session: Session, backend: str, image: str, arch: str, db: PackageDb | None, os: dict[str, str]
) -> RootFacts:
    libc = db.version("libc6") if db else None
    return RootFacts(
        backend=backend,
        image=image,
        arch=arch,
        distro_id=os.get("id", ""),
        distro_version=os.get("version", ""),
        distro_name=os.get("name", ""),
        glibc=libc.version if libc else os.get("glibc", ""),
        compilers=root_compilers(session, db) or ((("gcc", os["gcc"]),) if os.get("gcc") else ()),
        target_glibc=target_glibc(session),
    )
