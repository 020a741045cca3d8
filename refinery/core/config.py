"""``refinery.toml``: the one committed file of targets and defaults (DESIGN §5.1).

Read by the CLI (``refinery plan``/``run`` default their Pythons and platform from it)
and by the workflows (``refinery config --github-output``: backend, runner labels,
re-dispatch budget). A pure parser: the CLI reads the file and hands the TOML document
here. Strict like the hint catalog: an unknown key is an error naming the closest known
one; every value is checked.

```toml
[targets]
pythons = ["3.11", "3.12"]          # CPython 3.9 … 3.14
platform = "manylinux_2_28_s390x"   # manylinux_2_17 (manylinux2014) or newer

[build]
backend = "container"               # the workflows' default backend
redispatch-budget = 2               # re-dispatches per node after a lost runner
network-isolation = true            # the PEP 517 build runs without a network
disk-quota-gib = 20                 # what one build's folders may hold
disk-min-free-gib = 2               # free space a build must leave on its filesystem

[runners]
hosted = "ubuntu-24.04"             # jobs that need no s390x machine
s390x = "s390x-large"               # the native backend's runner label

[files."requirements/legacy.txt"]   # per requirement file: other targets
pythons = ["3.9"]
```
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from refinery.core.errors import InputError
from refinery.core.vocab import BACKEND_CHOICES, BackendChoice

CONFIG_FILE = "refinery.toml"
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT_PYTHONS = ("3.11",)
DEFAULT_PLATFORM = "manylinux_2_28_s390x"
MIN_GLIBC_MINOR = 17


class ConfigError(InputError):
    """``refinery.toml`` is invalid (the message names the key)."""


@dataclass(frozen=True, slots=True)
class Targets:
    pythons: tuple[str, ...] = DEFAULT_PYTHONS
    platform: str = DEFAULT_PLATFORM


@dataclass(frozen=True, slots=True)
class Limits:
    """What a build may reach and fill ([build] of ``refinery.toml``)."""

    network_isolation: bool = True
    disk_quota_gib: float = 20.0
    disk_min_free_gib: float = 2.0


@dataclass(frozen=True, slots=True)
class RefineryConfig:
    targets: Targets = field(default_factory=Targets)
    backend: BackendChoice = "container"
    redispatch_budget: int = 2
    hosted_runner: str = "ubuntu-24.04"
    s390x_runner: str = ""
    files: Mapping[str, Targets] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    def targets_for(self, files: Iterable[str]) -> Targets:
        """The targets one plan of ``files`` gets: each file's override (else the
        defaults); Pythons are the union, the platform must agree."""
        chosen = [self.files.get(_norm(f), self.targets) for f in files] or [self.targets]
        platforms = {t.platform for t in chosen}
        if len(platforms) > 1:
            raise ConfigError(
                f"{CONFIG_FILE}: these files target different platforms "
                f"({', '.join(sorted(platforms))}); plan them separately"
            )
        pythons = sorted({p for t in chosen for p in t.pythons}, key=lambda v: int(v[2:]))
        return Targets(tuple(pythons), platforms.pop())


def _norm(path: str) -> str:
    return path.removeprefix("./")


def _closest(word: str, choices: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {found[0]!r}?)" if found else ""


def _table(doc: Any, where: str, known: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{CONFIG_FILE}: [{where}] must be a table")
    for key in doc:
        if key not in known:
            raise ConfigError(
                f"{CONFIG_FILE}: unknown key {key!r} in [{where}]{_closest(key, known)}"
            )
    return doc


def _pythons(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{CONFIG_FILE}: {where}.pythons must be a list like ["3.11"]')
    for v in value:
        if v not in PYTHONS:
            raise ConfigError(
                f"{CONFIG_FILE}: {where}.pythons: {v!r} is not one of {', '.join(PYTHONS)}"
            )
    return tuple(dict.fromkeys(value))


def _platform(value: Any, where: str) -> str:
    m = re.fullmatch(r"manylinux_2_(\d+)_s390x", value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) < MIN_GLIBC_MINOR:
        raise ConfigError(
            f"{CONFIG_FILE}: {where}.platform {value!r}: want manylinux_2_N_s390x with "
            f"N >= {MIN_GLIBC_MINOR} (s390x wheels start at manylinux2014)"
        )
    return str(value)


def _targets(doc: Any, where: str, base: Targets) -> Targets:
    table = _table(doc, where, ("pythons", "platform"))
    return Targets(
        _pythons(table["pythons"], where) if "pythons" in table else base.pythons,
        _platform(table["platform"], where) if "platform" in table else base.platform,
    )


def _build(doc: Any) -> tuple[BackendChoice, int]:
    table = _table(doc, "build", ("backend", "redispatch-budget", *LIMIT_KEYS))
    backend = table.get("backend", "container")
    if backend not in BACKEND_CHOICES:
        raise ConfigError(
            f"{CONFIG_FILE}: build.backend {backend!r} is not one of "
            f"{', '.join(BACKEND_CHOICES)}{_closest(str(backend), BACKEND_CHOICES)}"
        )
    budget = table.get("redispatch-budget", 2)
    if not isinstance(budget, int) or isinstance(budget, bool) or not 0 <= budget <= 10:
        raise ConfigError(f"{CONFIG_FILE}: build.redispatch-budget must be 0 … 10")
    return backend, budget


LIMIT_KEYS = ("network-isolation", "disk-quota-gib", "disk-min-free-gib")


def _limits(table: Mapping[str, Any]) -> Limits:
    isolate = table.get("network-isolation", True)
    if not isinstance(isolate, bool):
        raise ConfigError(f"{CONFIG_FILE}: build.network-isolation must be true or false")
    sizes = []
    for key, default in (("disk-quota-gib", 20.0), ("disk-min-free-gib", 2.0)):
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{CONFIG_FILE}: build.{key} must be a number of GiB (0: no bound)")
        sizes.append(float(value))
    return Limits(isolate, sizes[0], sizes[1])


def _runners(doc: Any) -> tuple[str, str]:
    table = _table(doc, "runners", ("hosted", "s390x"))
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{CONFIG_FILE}: runners.{key} must be a runner label")
    return str(table.get("hosted", "ubuntu-24.04")), str(table.get("s390x", ""))


def parse_config(doc: Mapping[str, Any]) -> RefineryConfig:
    """The configuration in a parsed ``refinery.toml`` (an empty one: the defaults)."""
    top = _table(doc, "top level", ("targets", "build", "runners", "files"))
    targets = _targets(top.get("targets", {}), "targets", Targets())
    backend, budget = _build(top.get("build", {}))
    hosted, s390x = _runners(top.get("runners", {}))
    files_doc = top.get("files", {})
    if not isinstance(files_doc, Mapping):
        raise ConfigError(f"{CONFIG_FILE}: [files] must be a table of requirement files")
    files = {
        _norm(str(path)): _targets(table, f'files."{path}"', targets)
        for path, table in files_doc.items()
    }
    build = top.get("build", {})
    limits = _limits(build) if isinstance(build, Mapping) else Limits()
    return RefineryConfig(targets, backend, budget, hosted, s390x, files, limits)


_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")


def _line_of(text: str, message: str) -> int | None:
    """The line of ``text`` holding the table or key a :class:`ConfigError` names
    (``unknown key 'k' in [t]``, ``t.k …``, ``[t] …``); ``None`` when not found."""
    unknown = re.match(r"unknown key '([^']+)' in \[([^\]]+)\]", message)
    if unknown:
        key, table = unknown.group(1), unknown.group(2)
        table = "" if table == "top level" else table
    else:
        named = re.match(r"\[?([\w.-]+)\]?", message)
        if named is None:
            return None
        table, _, key = (
            named.group(1).rpartition(".") if "." in named.group(1) else (named.group(1), "", "")
        )
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).strip()
            if (not key and current == table) or (key and current == f"{table}.{key}".strip(".")):
                return number
        elif key and current == table and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', line):
            return number
    return None


def load_config(data: bytes, path: str) -> RefineryConfig:
    """The configuration in the bytes of ``path``: every problem is ``path:line: what``."""
    import tomllib

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", path=path, line=line
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = _TOML_AT.search(str(exc))
        where = int(at.group(1)) if at else None
        if where is None and "at end of document" in str(exc):
            where = text.count("\n") + (0 if text.endswith("\n") else 1)
        raise ConfigError(
            f"not TOML: {_TOML_AT.sub('', str(exc))}", path=path, line=where
        ) from None
    try:
        return parse_config(doc)
    except ConfigError as exc:
        bare = str(exc).removeprefix(f"{CONFIG_FILE}: ")
        raise ConfigError(bare, path=path, line=_line_of(text, bare)) from None
