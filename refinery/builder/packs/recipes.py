"""Strict loading of ``packs/*.toml``: one recipe per library pack.

A pack is a library built for the target (or taken from a PyPI wheel for it) and
installed below :data:`PACK_PREFIX` of a cross build's sysroot, so an extension links
*it*, not the sysroot's distro build (which needs the sysroot's newer glibc). Every
problem names ``file:line`` (unknown keys with the closest valid key, wrong types, bad
placeholders, unknown dependencies) and all are raised together as one
:class:`PackError`.

File shape (``kind = "source"``)::

    name = "libpq"                 # the file's stem
    version = "15.18"
    kind = "source"
    description = "PostgreSQL's client library"
    requires = ["openssl"]         # packs built first and seen by the build steps
    replaces = ["libpq-dev"]       # Debian packages it stands in for (derived fixes)
    notes = "built with OpenSSL"  # recorded with every wheel built with the pack
    [source]
    url = "https://deb.debian.org/debian/pool/main/p/postgresql-15/postgresql-15_15.18.orig.tar.bz2"
    sha256 = "11df0df9…"
    [build]
    steps = ["./configure --host={host} --prefix={prefix}", "make install DESTDIR={destdir}"]
    env = {CFLAGS = "-O2"}

or (``kind = "wheel"``: a PyPI wheel for the target, unpacked, with pkg-config files)::

    [wheel]
    requirement = "scipy-openblas32==0.3.29.265.0"
    platform = "manylinux2014_s390x"
    sha256 = "…"
    module = "scipy_openblas32"    # the wheel's package folder (lib/, include/)
    library = "scipy_openblas"     # -l name
    pkgconfig = ["openblas", "scipy-openblas"]
    cflags = "-DBLAS_SYMBOL_PREFIX=scipy_"

Build steps run with ``sh -c`` in the unpacked source; the placeholders are
:data:`PLACEHOLDERS`.
"""

from __future__ import annotations

import difflib
import re
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from refinery.core.errors import InputError

#: Where packs are installed in a sysroot (and the ``--prefix`` they are built for).
PACK_PREFIX = "opt/refinery-packs"

PackKind = Literal["source", "wheel"]
KINDS: tuple[PackKind, ...] = ("source", "wheel")
TOP_KEYS = (
    "name",
    "version",
    "kind",
    "description",
    "requires",
    "replaces",
    "notes",
    "source",
    "build",
    "wheel",
)
SOURCE_KEYS = ("url", "sha256")
BUILD_KEYS = ("steps", "env")
WHEEL_KEYS = ("requirement", "platform", "sha256", "module", "library", "pkgconfig", "cflags")
REQUIRED: dict[str, tuple[str, ...]] = {
    "": ("name", "version", "kind"),
    "source": SOURCE_KEYS,
    "build": ("steps",),
    "wheel": ("requirement", "platform", "sha256", "module", "library", "pkgconfig"),
}
#: What a build step may name: ``{prefix}`` (/opt/refinery-packs), ``{destdir}`` (the
#: staging root ``make install DESTDIR=`` writes into), ``{deps}`` (the installed
#: prefix of the ``requires`` packs), ``{host}`` (the GNU triplet), ``{jobs}``.
PLACEHOLDERS = ("prefix", "destdir", "deps", "host", "jobs")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    sha256: str


@dataclass(frozen=True, slots=True)
class WheelSource:
    requirement: str
    platform: str
    sha256: str
    module: str
    library: str
    pkgconfig: tuple[str, ...]
    cflags: str = ""


@dataclass(frozen=True, slots=True)
class PackRecipe:
    """One ``packs/<name>.toml``; ``text`` is the file's bytes as text (part of the
    pack's identity)."""

    name: str
    version: str
    kind: PackKind
    text: str
    path: str = ""
    description: str = ""
    notes: str = ""
    requires: tuple[str, ...] = ()
    #: Debian packages the pack stands in for when a derived fix picks one for a build
    #: that installs packs (the pack's ``-dev`` package and its runtime library).
    replaces: tuple[str, ...] = ()
    source: Source | None = None
    steps: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    wheel: WheelSource | None = None

    @property
    def digest(self) -> str:
        """The pinned input's sha256 (source archive or wheel)."""
        if self.source is not None:
            return self.source.sha256
        assert self.wheel is not None
        return self.wheel.sha256


class PackError(InputError):
    """Invalid pack recipes; ``problems`` lists every ``file:line: what``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(self.problems[0] + more)


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


class _Lines:
    """Where a key of a table is written (tomllib keeps no positions)."""

    _HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
    _KEY = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=")

    def __init__(self, text: str) -> None:
        self.at: dict[tuple[str, str], int] = {}
        table = ""
        for n, line in enumerate(text.splitlines(), 1):
            header = self._HEADER.match(line)
            if header:
                table = header.group(1)
                self.at.setdefault(("", table), n)
                continue
            key = self._KEY.match(line)
            if key:
                self.at.setdefault((table, key.group(1)), n)

    def __call__(self, table: str, key: str = "") -> int:
        if not key:
            return self.at.get(("", table), 1)
        return self.at.get((table, key), self.at.get(("", table), 1))


class _RecipeLoader:
    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown
        self.problems: list[str] = []
        self.text = ""
        self.lines = _Lines("")

    def problem(self, line: int, message: str) -> None:
        self.problems.append(f"{self.shown}:{line}: {message}")

    def table(self, node: Any, name: str, keys: Sequence[str]) -> bool:
        """Whether ``node`` is a table of ``keys`` only, with the required ones."""
        what = f"[{name}]" if name else "the recipe"
        if not isinstance(node, dict):
            self.problem(self.lines(name), f"{what} must be a table, not {_kind(node)}")
            return False
        for key in node:
            if key not in keys:
                near = difflib.get_close_matches(key, list(keys), n=1, cutoff=0.5)
                did = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(keys)}"
                self.problem(self.lines(name, key), f"unknown key {key!r} in {what}{did}")
        for key in REQUIRED.get(name, ()):
            if key not in node:
                self.problem(self.lines(name), f"{what} needs {key!r}")
        return True

    def string(self, node: Mapping[str, Any], table: str, key: str) -> str:
        value = node.get(key, "")
        if not isinstance(value, str):
            self.problem(self.lines(table, key), f"{key} must be a string, not {_kind(value)}")
            return ""
        return value

    def strings(self, node: Mapping[str, Any], table: str, key: str) -> tuple[str, ...]:
        value = node.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(
                self.lines(table, key),
                f"{key} must be a list of non-empty strings, not {_kind(value)}",
            )
            return ()
        return tuple(value)

    def sha256(self, node: Mapping[str, Any], table: str) -> str:
        digest = self.string(node, table, "sha256")
        if digest and not _SHA256.fullmatch(digest):
            self.problem(self.lines(table, "sha256"), f"sha256 {digest!r} is not 64 hex digits")
        return digest

    def load(self) -> PackRecipe | None:
        try:
            self.text = self.path.read_text(encoding="utf-8")
            self.lines = _Lines(self.text)
            doc = tomllib.loads(self.text)
        except (OSError, UnicodeDecodeError) as exc:
            at = (
                exc.object[: exc.start].count(b"\n") + 1
                if isinstance(exc, UnicodeDecodeError)
                else 1
            )
            self.problem(at, f"cannot read: {exc}")
            return None
        except tomllib.TOMLDecodeError as exc:
            line = re.search(r"line (\d+)", str(exc))
            self.problem(int(line.group(1)) if line else 1, f"invalid TOML: {exc}")
            return None
        if not self.table(doc, "", TOP_KEYS):
            return None
        return self.recipe(doc)

    def recipe(self, doc: Mapping[str, Any]) -> PackRecipe | None:
        before = len(self.problems)
        name = self.string(doc, "", "name")
        if name and (not _NAME.fullmatch(name) or name != self.path.stem):
            self.problem(
                self.lines("", "name"), f"name {name!r} must be the file's stem, lowercase"
            )
        kind = self.string(doc, "", "kind")
        if kind and kind not in KINDS:
            self.problem(self.lines("", "kind"), f"kind {kind!r} is not one of {', '.join(KINDS)}")
        version = self.string(doc, "", "version")
        requires = self.strings(doc, "", "requires")
        replaces = self.strings(doc, "", "replaces")
        source = self.source(doc) if kind == "source" else None
        steps, env = self.build(doc) if kind == "source" else ((), {})
        wheel = self.wheel(doc) if kind == "wheel" else None
        for other, wanted in (("source", "source"), ("build", "source"), ("wheel", "wheel")):
            if other in doc and kind in KINDS and kind != wanted:
                self.problem(self.lines(other), f"[{other}] does not belong to a {kind} pack")
        if len(self.problems) > before or not (name and version and kind in KINDS):
            return None
        return PackRecipe(
            name=name,
            version=version,
            kind="source" if kind == "source" else "wheel",
            text=self.text,
            path=self.shown,
            description=self.string(doc, "", "description"),
            notes=self.string(doc, "", "notes").strip(),
            requires=requires,
            replaces=replaces,
            source=source,
            steps=steps,
            env=env,
            wheel=wheel,
        )

    def source(self, doc: Mapping[str, Any]) -> Source | None:
        node = doc.get("source")
        if node is None:
            self.problem(self.lines(""), "a source pack needs [source]")
            return None
        if not self.table(node, "source", SOURCE_KEYS):
            return None
        url = self.string(node, "source", "url")
        if url and not url.startswith(("https://", "file://")):
            self.problem(self.lines("source", "url"), f"url {url!r} must be https:// or file://")
        return Source(url, self.sha256(node, "source"))

    def build(self, doc: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, str]]:
        node = doc.get("build")
        if node is None:
            self.problem(self.lines(""), "a source pack needs [build]")
            return (), {}
        if not self.table(node, "build", BUILD_KEYS):
            return (), {}
        steps = self.strings(node, "build", "steps")
        for step in steps:
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(step) if f is not None}
            except ValueError as exc:
                self.problem(self.lines("build", "steps"), f"step {step!r}: {exc}")
                continue
            for unknown in sorted(names - set(PLACEHOLDERS)):
                near = difflib.get_close_matches(unknown, PLACEHOLDERS, n=1, cutoff=0.5)
                did = f"; did you mean {{{near[0]}}}?" if near else ""
                self.problem(
                    self.lines("build", "steps"),
                    f"unknown placeholder {{{unknown}}} in a step{did}",
                )
        env = node.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            self.problem(
                self.lines("build", "env"), f"env must be a table of strings, not {_kind(env)}"
            )
            env = {}
        return steps, dict(env)

    def wheel(self, doc: Mapping[str, Any]) -> WheelSource | None:
        node = doc.get("wheel")
        if node is None:
            self.problem(self.lines(""), "a wheel pack needs [wheel]")
            return None
        if not self.table(node, "wheel", WHEEL_KEYS):
            return None
        return WheelSource(
            requirement=self.string(node, "wheel", "requirement"),
            platform=self.string(node, "wheel", "platform"),
            sha256=self.sha256(node, "wheel"),
            module=self.string(node, "wheel", "module"),
            library=self.string(node, "wheel", "library"),
            pkgconfig=self.strings(node, "wheel", "pkgconfig"),
            cflags=self.string(node, "wheel", "cflags"),
        )


def load_recipe(path: Path, shown: str | None = None) -> PackRecipe:
    """One recipe file (its ``requires`` unchecked); raises :class:`PackError`."""
    loader = _RecipeLoader(path, shown or str(path))
    recipe = loader.load()
    if loader.problems or recipe is None:
        raise PackError(loader.problems or [f"{loader.shown}:1: not a pack recipe"])
    return recipe


def load_recipes(directory: Path) -> dict[str, PackRecipe]:
    """Every ``*.toml`` in ``directory`` by name (a missing folder: none); ``requires``
    must name recipes of the same folder, without cycles."""
    problems: list[str] = []
    recipes: dict[str, PackRecipe] = {}
    for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
        try:
            recipe = load_recipe(path)
        except PackError as exc:
            problems += exc.problems
            continue
        recipes[recipe.name] = recipe
    for recipe in recipes.values():
        for dep in recipe.requires:
            if dep not in recipes:
                near = difflib.get_close_matches(dep, list(recipes), n=1, cutoff=0.5)
                did = f"; did you mean {near[0]!r}?" if near else ""
                line = _Lines(recipe.text)("", "requires")
                problems.append(f"{recipe.path}:{line}: unknown pack {dep!r} in requires{did}")
    if not problems:
        for name in recipes:
            try:
                closure(recipes, (name,))
            except PackError as exc:
                problems += exc.problems
    if problems:
        raise PackError(problems)
    return recipes


def closure(recipes: Mapping[str, PackRecipe], names: Sequence[str]) -> tuple[PackRecipe, ...]:
    """The recipes ``names`` need, dependencies first (each once)."""
    out: dict[str, PackRecipe] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise PackError(
                [f"{recipes[name].path}:1: requires cycle {' -> '.join((*path, name))}"]
            )
        if name in out:
            return
        recipe = recipes.get(name)
        if recipe is None:
            near = difflib.get_close_matches(name, list(recipes), n=1, cutoff=0.5)
            did = f"; did you mean {near[0]!r}?" if near else ""
            raise PackError([f"no pack recipe {name!r}{did}"])
        for dep in recipe.requires:
            visit(dep, (*path, name))
        out[name] = recipe

    for name in names:
        visit(name, ())
    return tuple(out.values())


def stand_ins(recipes: Mapping[str, PackRecipe], packages: Sequence[str]) -> dict[str, str]:
    """Which of ``packages`` (a fix's Debian packages) a pack stands in for: package ->
    pack name (from the recipes' ``replaces``)."""
    by_package = {p: r.name for r in recipes.values() for p in r.replaces}
    return {p: by_package[p] for p in packages if p in by_package}
