"""Strict loading of ``hints/*.yaml`` into :mod:`refinery.hints.models`.

Every problem names ``file:line``: unknown keys (with the closest valid key), wrong
types, invalid or empty-matching regexes, empty fixes, duplicate ids, unknown backends
or package managers, invalid Python specifiers, package entries naming unknown hints.
All problems of a catalog are collected and raised together as one
:class:`CatalogError`.

File shape::

    hints:
      - id: zlib
        match: ['fatal error: zlib\\.h: No such file or directory']
        scope: {packages: [...], python: ">=3.12", backends: [rootfs],
                versions: ">=43,<44"}                # the package's version (with packages)
        fix: {apt: [zlib1g-dev], dnf: [zlib-devel], yum: [...], env: {K: V},
              build_requires: [...], constraints: ["cython<3"],
              packs: [libpq],                      # library packs (packs/*.toml)
              config_settings: ["setup-args=-Dallow-noblas=false"],  # PEP 517 -C
              patches: [name.patch],              # hints/patches/name.patch, patch -p1
              vendor: {proj: pyproj/proj_dir}}    # a pack of packs copied into the sdist
        note: for humans
        evidence: [{build: name==ver@py, backend: rootfs, attempt: 2, at: ..., image: ...}]
    packages:            # per-package settings (``refinery hints learn`` adds hints)
      - package: lxml
        hints: [libxml2-libxslt]
        python: ">=3.11"
        versions: ">=5"      # this entry's versions of the package (optional)
        note: ...
        evidence: [...]
      - package: somepkg   # built under emulation from attempt 1 (no cross-compiling)
        emulate: "setup.py runs the binaries it compiles"
      - package: otherpkg  # a derived fix that worked, learned: a fix of its own
        fix: {apt: [libsnappy-dev]}
      - package: netpkg    # its build keeps the network (isolation off for it), and why
        fix: {network: {allow: true, reason: "downloads its data files while it builds"}}
      - package: numpy     # its own tests, on the target, after the import smoke test
        tests:
          command: pytest --pyargs numpy.linalg numpy.fft
          requires: [pytest, hypothesis]
          timeout: 1800
          known_failures: {"TestX::test_y": why it fails on s390x}

A package entry needs ``hints``, ``fix``, ``emulate`` (a non-empty reason), ``tests``,
``imports`` (modules the smoke test imports besides the top-level ones), or several.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from refinery.core.errors import InputError
from refinery.core.models import SourcePatch, normalize_name
from refinery.core.vocab import BACKENDS
from refinery.hints.models import (
    DEFAULT_TEST_TIMEOUT,
    NODE_FIELDS,
    Catalog,
    Evidence,
    Hint,
    HintFix,
    Location,
    PackageEntry,
    PackageTests,
    Scope,
)

TOP_KEYS = ("hints", "packages")
HINT_KEYS = ("id", "match", "scope", "fix", "note", "evidence")
SCOPE_KEYS = ("packages", "python", "backends", "versions")
FIX_KEYS = (
    "apt",
    "dnf",
    "yum",
    "env",
    "build_requires",
    "constraints",
    "packs",
    "config_settings",
    "network",
    "patches",
    "vendor",
)
#: Where a fix's ``patches`` live, beside the catalog files.
PATCH_DIR = "patches"
_PATCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.(patch|diff)")
NETWORK_KEYS = ("allow", "reason")
EVIDENCE_KEYS = ("build", "backend", "image", "attempt", "at", "log")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PACKAGE_KEYS = (
    "package",
    "hints",
    "fix",
    "emulate",
    "tests",
    "imports",
    "python",
    "versions",
    "note",
    "evidence",
)
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
TESTS_KEYS = ("command", "requires", "timeout", "known_failures", "from_sdist")
REQUIRED = {
    "hint": ("id", "match", "fix"),
    "package": ("package",),
    "evidence": ("build",),
    "tests": ("command",),
}

_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
_DEB_OR_RPM = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._:-]*")


@dataclass(frozen=True, slots=True)
class Problem:
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class CatalogError(InputError):
    """The catalog is invalid; ``problems`` lists every ``file:line: what``."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first.message + more, path=first.location.path, line=first.location.line)


def closest(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def _line_of_key(node: Any, key: Any) -> int | None:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _line_of_item(node: Any, index: int) -> int | None:
    try:
        return int(node.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def _line_of(node: Any) -> int | None:
    try:
        return int(node.lc.line) + 1
    except (AttributeError, TypeError):
        return None


class _FileLoader:
    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown
        self.problems: list[Problem] = []
        self.hints: list[Hint] = []
        self.packages: list[PackageEntry] = []

    # --- helpers ----------------------------------------------------------------
    def loc(self, line: int | None) -> Location:
        return Location(self.shown, line or 1)

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.loc(line), message))

    def mapping(self, node: Any, line: int | None, what: str, keys: Sequence[str]) -> bool:
        """Check ``node`` is a mapping with only ``keys`` (and the required ones).

        False only when it is not a mapping: unknown or missing keys are reported and
        the caller goes on, so one run reports every problem of the file."""
        if not isinstance(node, Mapping):
            self.problem(line, f"{what} must be a mapping, not {_kind(node)}")
            return False
        for key in node:
            if key not in keys:
                hint = closest(str(key), keys)
                did = f"; did you mean {hint!r}?" if hint else f"; valid keys: {', '.join(keys)}"
                self.problem(_line_of_key(node, key) or line, f"unknown key {key!r} in {what}{did}")
        for key in REQUIRED.get(what.split(maxsplit=1)[0], ()):
            if key not in node:
                self.problem(_line_of(node) or line, f"{what} needs {key!r}")
        return True

    def string(self, node: Any, key: str, line: int | None, what: str) -> str:
        value = node.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.problem(
                _line_of_key(node, key) or line,
                f"{what}.{key} must be a string, not {_kind(value)} (quote it)",
            )
            return ""
        return value

    def strings(self, node: Any, key: str, line: int | None, what: str) -> tuple[str, ...]:
        value = node.get(key)
        where = _line_of_key(node, key) or line
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.problem(where, f"{what}.{key} must be a list of strings, not {_kind(value)}")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.problem(
                    _line_of_item(value, i) or where,
                    f"{what}.{key}[{i}] must be a non-empty string, not {_kind(item)}",
                )
                continue
            out.append(item)
        return tuple(out)

    # --- sections ---------------------------------------------------------------
    def load(self) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            at = (
                exc.object[: exc.start].count(b"\n") + 1
                if isinstance(exc, UnicodeDecodeError)
                else 1
            )
            self.problem(at, f"cannot read: {exc}")
            return
        try:
            doc = YAML(typ="rt").load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            self.problem(line, f"invalid YAML: {exc.problem or exc.context}")
            return
        except YAMLError as exc:
            self.problem(1, f"invalid YAML: {str(exc).splitlines()[0]}")
            return
        if doc is None:
            return
        if not self.mapping(doc, 1, "file", TOP_KEYS):
            return
        for section, parse in (("hints", self.hint), ("packages", self.package)):
            items = doc.get(section)
            line = _line_of_key(doc, section)
            if items is None:
                continue
            if not isinstance(items, list):
                self.problem(line, f"{section} must be a list, not {_kind(items)}")
                continue
            for i, item in enumerate(items):
                parse(item, _line_of_item(items, i) or line)

    def hint(self, node: Any, line: int | None) -> None:
        what = "hint"
        if not self.mapping(node, line, what, HINT_KEYS):
            return
        line = _line_of(node) or line
        hint_id = self.ident(node, line)
        label = f"hint {hint_id!r}" if hint_id else what
        patterns = self.patterns(node, line, label)
        scope = self.scope(node.get("scope"), _line_of_key(node, "scope") or line, label)
        fix = self.fix(node.get("fix"), _line_of_key(node, "fix") or line, label)
        note = self.string(node, "note", line, label).strip()
        evidence = self.evidence(node, line, label)
        if hint_id and patterns and fix is not None and scope is not None:
            self.hints.append(Hint(hint_id, patterns, fix, scope, note, evidence, self.loc(line)))

    def ident(self, node: Any, line: int | None) -> str:
        hint_id = node.get("id")
        if hint_id is None:
            return ""
        if not isinstance(hint_id, str) or not _ID.fullmatch(hint_id):
            self.problem(
                _line_of_key(node, "id") or line,
                f"id {hint_id!r} must be lowercase letters, digits, '.', '_' or '-'",
            )
            return ""
        return hint_id

    def patterns(self, node: Any, line: int | None, label: str) -> tuple[re.Pattern[str], ...]:
        before = len(self.problems)
        raw = self.strings(node, "match", line, label)
        where = _line_of_key(node, "match") or line
        seq = node.get("match")
        out: list[re.Pattern[str]] = []
        for i, text in enumerate(raw):
            at = _line_of_item(seq, i) if isinstance(seq, list) else where
            try:
                pattern = re.compile(text)
            except re.error as exc:
                self.problem(at or where, f"{label}: invalid regex {text!r}: {exc}")
                continue
            if pattern.search("") is not None:
                self.problem(at or where, f"{label}: regex {text!r} matches an empty line")
                continue
            out.append(pattern)
        if "match" in node and not raw and len(self.problems) == before:
            self.problem(where, f"{label}: match needs at least one regex")
        return tuple(out)

    def scope(self, node: Any, line: int | None, label: str) -> Scope | None:
        if node is None:
            return Scope()
        if not self.mapping(node, line, f"scope of {label}", SCOPE_KEYS):
            return None
        packages = tuple(
            normalize_name(p) for p in self.strings(node, "packages", line, f"{label}.scope")
        )
        python = self.specifier(node, line, f"{label}.scope")
        versions = self.specifier(node, line, f"{label}.scope", "versions")
        if versions and not packages:
            self.problem(
                _line_of_key(node, "versions") or line,
                f"{label}: scope.versions needs scope.packages (whose versions?)",
            )
        backends = self.strings(node, "backends", line, f"{label}.scope")
        for backend in backends:
            if backend not in BACKENDS:
                near = closest(backend, BACKENDS)
                did = f"; did you mean {near!r}?" if near else ""
                self.problem(
                    _line_of_key(node, "backends") or line,
                    f"{label}: unknown backend {backend!r} (one of {', '.join(BACKENDS)}){did}",
                )
        return Scope(packages, python, backends, versions)

    def specifier(self, node: Any, line: int | None, label: str, key: str = "python") -> str:
        text = self.string(node, key, line, label)
        if not text:
            return ""
        try:
            SpecifierSet(text)
        except InvalidSpecifier:
            self.problem(
                _line_of_key(node, key) or line,
                f"{label}.{key} {text!r} is not a version specifier (e.g. '>=3.12')",
            )
            return ""
        return text

    def fix(self, node: Any, line: int | None, label: str) -> HintFix | None:
        if node is None:
            return None  # "needs 'fix'" was reported
        if not self.mapping(node, line, f"fix of {label}", FIX_KEYS):
            return None
        before = len(self.problems)
        managers: dict[str, tuple[str, ...]] = {}
        for manager in ("apt", "dnf", "yum"):
            names = self.strings(node, manager, line, f"{label}.fix")
            for name in names:
                if not _DEB_OR_RPM.fullmatch(name):
                    self.problem(
                        _line_of_key(node, manager) or line,
                        f"{label}: {name!r} is not a {manager} package name",
                    )
            managers[manager] = names
        env = self.env(node, line, label)
        fix = HintFix(
            apt=managers["apt"],
            dnf=managers["dnf"],
            yum=managers["yum"],
            env=env,
            build_requires=self.requirements(node, "build_requires", line, label),
            constraints=self.requirements(node, "constraints", line, label),
            packs=self.names(node, "packs", line, label),
            config_settings=self.settings(node, line, label),
            network=self.network(node, line, label),
            patches=self.patches(node, line, label),
        )
        fix = replace(fix, vendor=self.vendor(node, line, label, fix.packs))
        if fix.empty:
            if len(self.problems) == before:  # not merely emptied by its own problems
                self.problem(
                    line, f"{label}: the fix is empty (give packages, packs, env or constraints)"
                )
            return None
        return fix

    def network(self, node: Any, line: int | None, label: str) -> str:
        """``network: {allow: true, reason: "..."}``: the build of this package keeps the
        network (network isolation off for it); the reason it needs it."""
        raw = node.get("network")
        if raw is None:
            return ""
        where = _line_of_key(node, "network") or line
        if not self.mapping(raw, where, f"network of {label}", NETWORK_KEYS):
            return ""
        reason = raw.get("reason")
        if raw.get("allow") is not True:
            self.problem(where, f"{label}: network.allow must be true (leave network out)")
        elif not isinstance(reason, str) or not reason.strip():
            self.problem(where, f"{label}: network needs a reason (why the build downloads)")
        else:
            return reason.strip()
        return ""

    def fix_mapping(
        self, node: Any, key: str, line: int | None, label: str
    ) -> tuple[Mapping[Any, Any], int | None]:
        """The fix's ``key`` as a mapping (empty when absent, or reported when it is not
        one) and the line it is written on."""
        raw = node.get(key)
        where = _line_of_key(node, key) or line
        if raw is None:
            return {}, where
        if not isinstance(raw, Mapping):
            self.problem(where, f"{label}.fix.{key} must be a mapping, not {_kind(raw)}")
            return {}, where
        return raw, where

    def vendor(
        self, node: Any, line: int | None, label: str, packs: tuple[str, ...]
    ) -> dict[str, str]:
        """``vendor: {pack: folder}``: a pack of the same fix's ``packs`` copied into the
        unpacked sdist at ``folder`` (relative, inside the project)."""
        raw, where = self.fix_mapping(node, "vendor", line, label)
        out: dict[str, str] = {}
        for pack, folder in raw.items():
            at = _line_of_key(raw, pack) or where
            if pack not in packs:
                self.problem(at, f"{label}: vendor names pack {pack!r}, which fix.packs lacks")
            elif not isinstance(folder, str) or not _inside(folder):
                self.problem(
                    at, f"{label}: vendor folder {folder!r} must be a relative path in the sdist"
                )
            else:
                out[pack] = folder.strip("/")
        return out

    def patches(self, node: Any, line: int | None, label: str) -> tuple[SourcePatch, ...]:
        """Patch files under ``patches/`` beside the catalog, read whole: each must be
        a unified diff (``--- ``/``+++ `` headers and a hunk)."""
        out: list[SourcePatch] = []
        where = _line_of_key(node, "patches") or line
        for name in self.strings(node, "patches", line, f"{label}.fix"):
            path = self.path.parent / PATCH_DIR / name
            if not _PATCH_NAME.fullmatch(name):
                self.problem(where, f"{label}: {name!r} is not a patch file name (x.patch)")
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self.problem(where, f"{label}: patch {name!r}: cannot read {path}: {exc}")
                continue
            if not re.search(r"^--- .*\n\+\+\+ .*\n@@ ", text, re.M):
                self.problem(where, f"{label}: patch {name!r} is not a unified diff")
                continue
            out.append(SourcePatch(name, text))
        return tuple(out)

    def names(self, node: Any, key: str, line: int | None, label: str) -> tuple[str, ...]:
        """Pack names: lowercase ids (whether a recipe exists is checked by
        ``refinery hints check`` against ``packs/``)."""
        items = self.strings(node, key, line, f"{label}.fix")
        for item in items:
            if not _ID.fullmatch(item):
                self.problem(
                    _line_of_key(node, key) or line, f"{label}: {item!r} is not a pack name"
                )
        return items

    def settings(self, node: Any, line: int | None, label: str) -> tuple[str, ...]:
        """PEP 517 config settings, each ``key=value``."""
        items = self.strings(node, "config_settings", line, f"{label}.fix")
        for item in items:
            if "=" not in item or not item.partition("=")[0].strip():
                self.problem(
                    _line_of_key(node, "config_settings") or line,
                    f"{label}: config setting {item!r} is not key=value",
                )
        return items

    def env(self, node: Any, line: int | None, label: str) -> dict[str, str]:
        raw, where = self.fix_mapping(node, "env", line, label)
        out: dict[str, str] = {}
        for key, value in raw.items():
            at = _line_of_key(raw, key) or where
            if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                self.problem(at, f"{label}: {key!r} is not an environment variable name")
            elif not isinstance(value, str):
                self.problem(at, f"{label}: env {key} must be a string (quote it)")
            elif set(_PLACEHOLDER.findall(value)) - set(NODE_FIELDS):
                known = ", ".join("{" + f + "}" for f in NODE_FIELDS)
                self.problem(at, f"{label}: env {key} may only use {known}")
            else:
                out[key] = value
        return out

    def requirements(self, node: Any, key: str, line: int | None, label: str) -> tuple[str, ...]:
        from packaging.requirements import InvalidRequirement, Requirement

        items = self.strings(node, key, line, f"{label}.fix")
        for item in items:
            try:
                Requirement(item)
            except InvalidRequirement as exc:
                self.problem(
                    _line_of_key(node, key) or line,
                    f"{label}: {key} {item!r} is not a requirement: {exc}",
                )
        return items

    def evidence(self, node: Any, line: int | None, label: str) -> tuple[Evidence, ...]:
        raw = node.get("evidence")
        where = _line_of_key(node, "evidence") or line
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problem(where, f"{label}.evidence must be a list, not {_kind(raw)}")
            return ()
        out: list[Evidence] = []
        for i, item in enumerate(raw):
            at = _line_of_item(raw, i) or where
            if not self.mapping(item, at, f"evidence of {label}", EVIDENCE_KEYS):
                continue
            attempt = item.get("attempt")
            if attempt is not None and (not isinstance(attempt, int) or isinstance(attempt, bool)):
                where_attempt = _line_of_key(item, "attempt") or at
                self.problem(where_attempt, f"{label}: attempt must be a number")
                attempt = None
            out.append(
                Evidence(
                    build=self.string(item, "build", at, "evidence"),
                    backend=self.string(item, "backend", at, "evidence"),
                    image=self.string(item, "image", at, "evidence"),
                    attempt=attempt,
                    at=_text(item.get("at")),
                    log=self.string(item, "log", at, "evidence"),
                )
            )
        return tuple(out)

    def package(self, node: Any, line: int | None) -> None:
        if not self.mapping(node, line, "package entry", PACKAGE_KEYS):
            return
        line = _line_of(node) or line
        name = self.string(node, "package", line, "package entry")
        label = f"package entry {name!r}"
        hints = self.strings(node, "hints", line, label)
        if "hints" in node and not hints:
            self.problem(_line_of_key(node, "hints") or line, f"{label}: hints is empty")
        emulate = self.emulate(node, line, label)
        fix = (
            self.fix(node["fix"], _line_of_key(node, "fix") or line, label)
            if "fix" in node
            else None
        )
        tests = self.tests(node.get("tests"), _line_of_key(node, "tests") or line, label)
        imports = self.strings(node, "imports", line, label)
        for module in imports:
            if not _MODULE.fullmatch(module):
                where = _line_of_key(node, "imports") or line
                self.problem(where, f"{label}: {module!r} is not a module name (a.b.c)")
        if not any(key in node for key in ("hints", "emulate", "fix", "tests", "imports")):
            self.problem(line, f"{label} needs 'hints', 'fix', 'emulate', 'tests' or 'imports'")
        python = self.specifier(node, line, label)
        versions = self.specifier(node, line, label, "versions")
        note = self.string(node, "note", line, label).strip()
        evidence = self.evidence(node, line, label)
        if name and (hints or emulate or fix or tests or imports):
            entry = PackageEntry(
                normalize_name(name),
                hints,
                python,
                note,
                evidence,
                self.loc(line),
                emulate,
                fix,
                tests,
                versions,
                imports,
            )
            self.packages.append(entry)

    def tests(self, node: Any, line: int | None, label: str) -> PackageTests | None:
        """A package entry's ``tests``: a command (``pytest …``), test requirements, a
        timeout in seconds and known failures (test id: reason)."""
        if node is None:
            return None
        what = f"tests of {label}"
        before = len(self.problems)
        if not self.mapping(node, line, what, TESTS_KEYS):
            return None
        command = self.string(node, "command", line, what).strip()
        if "command" in node and not command:
            self.problem(_line_of_key(node, "command") or line, f"{what}: command is empty")
        elif command and command.split()[0] != "pytest":
            self.problem(
                _line_of_key(node, "command") or line,
                f"{what}: command must start with 'pytest' (its JUnit report is read)",
            )
        requires = self.requirements(node, "requires", line, label)
        timeout = node.get("timeout", DEFAULT_TEST_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            where = _line_of_key(node, "timeout") or line
            self.problem(where, f"{what}: timeout must be a positive number of seconds")
            timeout = DEFAULT_TEST_TIMEOUT
        known = self.known_failures(node, line, what)
        from_sdist = self.strings(node, "from_sdist", line, what)
        for path in from_sdist:
            parts = path.split("/")
            if path.startswith("/") or ".." in parts or "" in parts[:-1]:
                where = _line_of_key(node, "from_sdist") or line
                self.problem(where, f"{what}: from_sdist {path!r} is not a path inside the sdist")
        if len(self.problems) > before:
            return None
        return PackageTests(command, requires, float(timeout), known, from_sdist)

    def known_failures(self, node: Any, line: int | None, what: str) -> tuple[tuple[str, str], ...]:
        """``known_failures``: a mapping of test id to a non-empty reason."""
        raw = node.get("known_failures")
        where = _line_of_key(node, "known_failures") or line
        if raw is None:
            return ()
        if not isinstance(raw, Mapping):
            self.problem(where, f"{what}: known_failures must be a mapping (test id: reason)")
            return ()
        out: list[tuple[str, str]] = []
        for key, value in raw.items():
            at = _line_of_key(raw, key) or where
            if not isinstance(key, str) or not key.strip():
                self.problem(at, f"{what}: known failure {key!r} must be a test id")
            elif not isinstance(value, str) or not value.strip():
                self.problem(at, f"{what}: known failure {key!r} needs a reason (never silently)")
            else:
                out.append((key.strip(), " ".join(value.split())))
        return tuple(out)

    def emulate(self, node: Any, line: int | None, label: str) -> str:
        """The ``emulate`` reason of a package entry: a non-empty string, or ""."""
        if "emulate" not in node:
            return ""
        before = len(self.problems)
        reason = self.string(node, "emulate", line, label).strip()
        if not reason and len(self.problems) == before:
            self.problem(
                _line_of_key(node, "emulate") or line,
                f"{label}.emulate needs a reason (why the package cannot be cross-compiled)",
            )
        return reason


def _inside(folder: str) -> bool:
    """Whether ``folder`` is a relative path that stays inside the project."""
    path = PurePosixPath(folder)
    return bool(folder.strip("/")) and not path.is_absolute() and ".." not in path.parts


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def catalog_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_catalog(
    directory: Path,
    *,
    display: Callable[[Path], str] | None = None,
) -> Catalog:
    """Load and validate every ``*.yaml`` in ``directory``; raise :class:`CatalogError`.

    A missing directory is an empty catalog (a farm without hints still builds).
    """
    from refinery.hints import catalog_digest

    shown = display or str
    problems: list[Problem] = []
    hints: list[Hint] = []
    packages: list[PackageEntry] = []
    files = catalog_files(directory) if directory.is_dir() else []
    for path in files:
        loader = _FileLoader(path, shown(path))
        loader.load()
        problems += loader.problems
        hints += loader.hints
        packages += loader.packages
    seen: dict[str, Hint] = {}
    for hint in hints:
        first = seen.get(hint.id)
        if first is not None:
            assert hint.location is not None
            problems.append(
                Problem(hint.location, f"duplicate hint id {hint.id!r} (first at {first.location})")
            )
        else:
            seen[hint.id] = hint
    learned: dict[tuple[str, str, str], PackageEntry] = {}
    for entry in packages:
        assert entry.location is not None
        for hint_id in entry.hints:
            if hint_id not in seen:
                near = closest(hint_id, seen)
                did = f"; did you mean {near!r}?" if near else ""
                problems.append(
                    Problem(
                        entry.location,
                        f"package entry {entry.package!r}: unknown hint {hint_id!r}{did}",
                    )
                )
        key = (entry.package, entry.python, entry.versions)
        if key in learned:
            problems.append(
                Problem(
                    entry.location,
                    f"duplicate package entry {entry.package!r} (first at {learned[key].location})",
                )
            )
        learned[key] = entry
    if problems:
        raise CatalogError(problems)
    return Catalog(
        hints=tuple(hints),
        packages=tuple(packages),
        digest=catalog_digest(directory),
        files=tuple(shown(p) for p in files),
    )
