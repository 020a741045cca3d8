"""Version and Requires-Python rules, one implementation each."""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


def sort_key(version: str) -> tuple[int, Version | str]:
    """Sort key: PEP 440 versions by their order, unparseable ones first, by text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def canonical(version: str) -> str:
    """The normalised spelling of ``version`` (``1.0.0`` stays, ``1.0-rc1`` → ``1.0rc1``);
    unparseable versions unchanged."""
    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def python_allowed(requires_python: str | None, python: str) -> bool:
    """Whether CPython ``python`` (``3.11``) satisfies ``Requires-Python``. A missing or
    malformed specifier does not exclude (pip and uv ignore a malformed one)."""
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(f"{python}.0", prereleases=True)
    except InvalidSpecifier:
        return True
