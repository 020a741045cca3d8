"""Making library packs: built from pinned sources with zig for the target glibc, or
unpacked from a PyPI wheel for the target; content-addressed, cached, stored.

A pack's identity is the sha256 of its recipe text, its pinned input's digest, the zig
version, the target glibc and the identities of the packs it requires: the same inputs
always name the same pack. Its output is a tarball of the installed prefix
(``opt/refinery-packs/...``), kept in the cache root's packs folder (with the tarball
unpacked beside it, for auditwheel's library path) and put into the store under its
identity, so another machine fetches it instead of building it again. Concurrent runs
make a pack once (:func:`refinery.builder.tools.made_once`).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.artifacts import fetch_sdist
from refinery.builder.errors import BuildError, SdistError
from refinery.builder.packs.recipes import PACK_PREFIX, PackRecipe, WheelSource, closure
from refinery.builder.proc import OnLine, run
from refinery.builder.tools import download_wheels, made_once
from refinery.builder.zig import ZIGLANG, Zig, wrapper, zig_target
from refinery.core.glibc import Glibc, glibc_text
from refinery.store import layout
from refinery.store.blobs import BlobStore
from refinery.store.files import sha256_file

TARBALL = "pack.tar.gz"
#: The build tools' generation, part of every pack's identity: 2 added ``ld`` (zig's LLD),
#: before which libtool found no linker for the target and built static libraries only;
#: 3: zig compiles without debug information and links strip it (libproj: 44 MB -> 4 MB).
TOOLS = 3


class PackFailed(BuildError):
    """A pack could not be fetched or built (the attempt's fix failed)."""


@dataclass(frozen=True)
class PackTarget:
    """What packs are made for: zig for ``arch`` and ``glibc``."""

    zig: Zig
    arch: str
    glibc: Glibc

    @property
    def triplet(self) -> str:
        return zig_target(self.arch, self.glibc).rsplit(".", 2)[0]


@dataclass(frozen=True)
class PackMaker:
    """Where packs are cached (the cache root's packs folder) and stored, and how a
    build runs (``jobs``, output to ``on_line`` and ``log``)."""

    cache: Path
    target: PackTarget
    store: BlobStore | None = None
    jobs: int = 2
    on_line: OnLine | None = None
    log: Path | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class Pack:
    """A made pack: ``folder`` holds its tarball and the unpacked ``root``."""

    recipe: PackRecipe
    identity: str
    folder: Path

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def version(self) -> str:
        return self.recipe.version

    @property
    def tarball(self) -> Path:
        return self.folder / TARBALL

    @property
    def root(self) -> Path:
        """The unpacked tarball: ``root/opt/refinery-packs/{lib,include,bin}``."""
        return self.folder / "root"

    @property
    def prefix(self) -> Path:
        """The installed prefix: ``lib/``, ``include/``, ``share/``, ``bin/``."""
        return self.root / PACK_PREFIX

    @property
    def lib(self) -> Path:
        return self.prefix / "lib"


def vendor_into(project: Path, packs: Sequence[Pack], vendor: Mapping[str, str]) -> list[str]:
    """Copy each pack ``vendor`` names (pack -> folder) into the unpacked sdist at
    ``project/folder`` (links kept; the folder must not exist yet); a line per copy."""
    made = {p.name: p for p in packs}
    done: list[str] = []
    for name, folder in vendor.items():
        pack = made.get(name)
        if pack is None:
            raise PackFailed(f"vendor: pack {name} was not made for this build")
        dest = project / folder
        if dest.exists():
            raise PackFailed(f"vendor: {folder}/ exists in the sdist; pack {name} not copied")
        shutil.copytree(pack.prefix, dest, symlinks=True)
        files = sum(1 for p in dest.rglob("*") if not p.is_dir())
        done.append(f"pack {name} {pack.version} copied into {folder}/ ({files} files)")
    return done


def identity(recipe: PackRecipe, target: Glibc, deps: Sequence[str] = ()) -> str:
    """The content hash naming a pack: recipe text, input digest, zig, glibc, deps."""
    blob = json.dumps(
        {
            "recipe": recipe.text,
            "input": recipe.digest,
            "zig": ZIGLANG,
            "glibc": glibc_text(target),
            "deps": list(deps),
            "tools": TOOLS,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def ensure_packs(
    recipes: Mapping[str, PackRecipe], names: Sequence[str], maker: PackMaker
) -> tuple[Pack, ...]:
    """The packs ``names`` and what they require, dependencies first: from the cache,
    else the store, else made now."""
    made: dict[str, Pack] = {}
    for recipe in closure(recipes, names):
        deps = tuple(made[d] for d in recipe.requires)
        made[recipe.name] = ensure_pack(recipe, deps, maker)
    return tuple(made.values())


def ensure_pack(recipe: PackRecipe, deps: Sequence[Pack], maker: PackMaker) -> Pack:
    ident = identity(recipe, maker.target.glibc, [d.identity for d in deps])
    pack = Pack(recipe, ident, maker.cache / f"{recipe.name}-{ident[:16]}")
    key = layout.pack_key(recipe.name, ident)

    def make() -> None:
        pack.folder.mkdir(parents=True)
        got = maker.store.get(key) if maker.store is not None else None
        if got is not None:
            pack.tarball.write_bytes(got[0])
            _say(maker, f"pack {recipe.name} {recipe.version}: from the store ({ident[:12]})")
        else:
            _say(maker, f"pack {recipe.name} {recipe.version}: making it ({ident[:12]})")
            work = pack.folder / "work"
            stage = work / "stage"
            if recipe.kind == "source":
                build_source(recipe, deps, maker, work)
            else:
                assert recipe.wheel is not None
                unpack_wheel(recipe.wheel, work, stage)
            if not (stage / PACK_PREFIX).is_dir():
                raise PackFailed(f"pack {recipe.name}: nothing was installed below /{PACK_PREFIX}")
            with tarfile.open(pack.tarball, "w:gz") as tar:
                tar.add(stage / PACK_PREFIX, arcname=PACK_PREFIX)
            shutil.rmtree(work)
        extract(pack.tarball, pack.root)
        (pack.folder / ".complete").write_text(ident + "\n")

    made_once(pack.folder, make)
    if maker.store is not None and not maker.store.exists(key):  # made here, or cached only
        maker.store.put_if_absent(key, pack.tarball.read_bytes())
    return pack


def _say(maker: PackMaker, line: str) -> None:
    if maker.on_line is not None:
        maker.on_line(line)


def extract(tarball: Path, dest: Path) -> None:
    """Unpack a pack tarball into ``dest`` (its members stay below ``opt/refinery-packs``)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./").rstrip("/")
            parent = member.isdir() and PACK_PREFIX.startswith(name + "/")
            if not (parent or name == PACK_PREFIX or name.startswith(PACK_PREFIX + "/")):
                raise PackFailed(f"{tarball.name}: member {member.name} is outside /{PACK_PREFIX}")
        tar.extractall(dest, filter="tar")


def relocated(text: str, sysroot: Path) -> str:
    """``text`` with every path below the pack prefix moved below ``sysroot``."""
    return _PREFIX_PATH.sub(lambda m: f"{sysroot}{m.group(0)}", text)


#: The prefix as a path of its own: at a line's or word's start, after ``=``/``:``/a
#: quote, or glued to ``-I``/``-L``/``-R``; not inside a longer path.
_PREFIX_PATH = re.compile(
    rf"(?:^|(?<=[\s'\"=:(,])|(?<=-[ILR]))/{re.escape(PACK_PREFIX)}(?![\w.-])", re.MULTILINE
)


def install_scripts(pack: Pack, top: Path, sysroot: Path) -> tuple[str, ...]:
    """The pack's ``*-config`` shell scripts (``krb5-config``, ``curl-config``) print
    the prefix they were built for; a cross build sees the pack below its sysroot. Each
    is written into ``top`` (the sysroot's writable layer, where the pack was unpacked)
    answering with ``sysroot``'s paths; compiled programs (``pg_config``) are left as
    they are. Returns the names rewritten."""
    bin_dir = pack.root / PACK_PREFIX / "bin"
    names: list[str] = []
    for path in sorted(bin_dir.iterdir()) if bin_dir.is_dir() else ():
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if not data.startswith(b"#!") or f"/{PACK_PREFIX}".encode() not in data:
            continue
        text = relocated(data.decode("utf-8", "surrogateescape"), sysroot)
        dest = top / PACK_PREFIX / "bin" / path.name
        dest.unlink(missing_ok=True)
        dest.write_bytes(text.encode("utf-8", "surrogateescape"))
        dest.chmod(0o755)
        names.append(path.name)
    return tuple(names)


# --- source packs --------------------------------------------------------------------
def tool_scripts(target: PackTarget) -> dict[str, str]:
    """``cc``/``c++``/``cpp`` running zig for the target (zig's libc headers only: no
    sysroot is involved), ``ar``/``ranlib`` running zig's and ``ld`` its LLD (libtool
    asks ``$LD -v`` whether the linker is GNU-compatible before it builds shared
    libraries; the host's ``ld`` knows no s390x)."""
    name = zig_target(target.arch, target.glibc)
    scripts = {tool: wrapper(target.zig, tool, name, ()) for tool in ("cc", "c++", "cpp")}
    for tool in ("ar", "ranlib"):
        scripts[tool] = f'#!/bin/sh\nexec {target.zig.binary} {tool} "$@"\n'
    scripts["ld"] = f'#!/bin/sh\nexec {target.zig.binary} ld.lld "$@"\n'
    return scripts


def build_env(recipe: PackRecipe, work: Path, values: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a build step (nothing of the host's passes)."""
    bin_dir = work / "bin"
    deps_root = work / "deps"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "CC": str(bin_dir / "cc"),
        "CXX": str(bin_dir / "c++"),
        "AR": str(bin_dir / "ar"),
        "RANLIB": str(bin_dir / "ranlib"),
        "LD": str(bin_dir / "ld"),
        # GNU ld's default: a version script may name symbols a configuration leaves out
        # (libxml2 --without-debug); LLD would refuse the link
        "LDFLAGS": "-Wl,--undefined-version",
        "PKG_CONFIG_LIBDIR": str(deps_root / PACK_PREFIX / "lib/pkgconfig"),
        "PKG_CONFIG_SYSROOT_DIR": str(deps_root),
    }
    env.update({k: v.format(**values) for k, v in recipe.env.items()})
    return env


def build_source(recipe: PackRecipe, deps: Sequence[Pack], maker: PackMaker, work: Path) -> None:
    """Fetch and verify the source, unpack it, run the steps with zig as the compiler;
    they install into ``work/stage``."""
    assert recipe.source is not None
    try:
        archive = fetch_sdist(recipe.source.url, recipe.source.sha256, maker.cache / "sources")
    except SdistError as exc:
        raise PackFailed(f"pack {recipe.name}: {exc}") from None
    src = work / "src"
    src.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(src, filter="data")
    tops = list(src.iterdir())
    tree = tops[0] if len(tops) == 1 and tops[0].is_dir() else src
    (work / "bin").mkdir()
    for tool, text in tool_scripts(maker.target).items():
        (work / "bin" / tool).write_text(text)
        (work / "bin" / tool).chmod(0o755)
    for dep in deps:
        extract(dep.tarball, work / "deps")
    values = {
        "prefix": f"/{PACK_PREFIX}",
        "destdir": str(work / "stage"),
        "deps": str(work / "deps" / PACK_PREFIX),
        "host": maker.target.triplet,
        "jobs": str(maker.jobs),
    }
    env = build_env(recipe, work, values)
    for step in recipe.steps:
        result = run(
            ["sh", "-c", step.format(**values)],
            cwd=tree,
            env=env,
            on_line=maker.on_line,
            log=maker.log,
            timeout=maker.timeout,
        )
        if not result.ok:
            raise PackFailed(f"pack {recipe.name}: step failed ({result.exit_code}): {step}")


# --- wheel packs ---------------------------------------------------------------------
def pc_file(wheel: WheelSource, name: str, version: str) -> str:
    """A pkg-config file for the wheel's library, installed at the pack prefix."""
    cflags = f" {wheel.cflags}" if wheel.cflags else ""
    return (
        f"prefix=/{PACK_PREFIX}\n"
        "libdir=${prefix}/lib\n"
        "includedir=${prefix}/include\n"
        f"Name: {name}\n"
        f"Description: {wheel.library} from {wheel.requirement} (library pack)\n"
        f"Version: {version}\n"
        f"Libs: -L${{libdir}} -l{wheel.library}\n"
        f"Cflags: -I${{includedir}}{cflags}\n"
    )


def unpack_wheel(wheel: WheelSource, work: Path, stage: Path) -> None:
    """Download and verify the wheel; its ``lib``/``include`` go below the prefix with a
    pkg-config file per name in ``pkgconfig``."""
    downloads = work / "wheel"
    try:
        download_wheels((wheel.requirement,), downloads, (wheel.platform,))
    except BuildError as exc:
        raise PackFailed(str(exc)) from None
    found = sorted(downloads.glob("*.whl"))
    if len(found) != 1 or sha256_file(found[0]) != wheel.sha256:
        got = ", ".join(f"{p.name} {sha256_file(p)}" for p in found) or "nothing"
        raise PackFailed(
            f"{wheel.requirement}: expected one wheel with sha256 {wheel.sha256}, got {got}"
        )
    prefix = stage / PACK_PREFIX
    with zipfile.ZipFile(found[0]) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if parts[0] != wheel.module or len(parts) < 3 or parts[1] not in ("lib", "include"):
                continue
            if info.is_dir() or ".." in parts:
                continue
            dest = prefix.joinpath(*parts[1:])
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
            dest.chmod(0o755 if ".so" in dest.name else 0o644)
    version = found[0].name.split("-")[1]
    pkgconfig = prefix / "lib/pkgconfig"
    pkgconfig.mkdir(parents=True, exist_ok=True)
    for name in wheel.pkgconfig:
        (pkgconfig / f"{name}.pc").write_text(pc_file(wheel, name, version))
