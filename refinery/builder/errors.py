"""Errors raised by build roots and the build step.

They carry a human sentence that says what is missing and how to fix it; the CLI shows
the message and maps the class to an exit code or a node status.
"""

from __future__ import annotations

from refinery.core.errors import RefineryError


class BuildError(RefineryError):
    """Base class for everything the build package raises on purpose (exit code 2)."""


class BuildRootUnavailable(BuildError):
    """The requested build root cannot work on this machine (not root, no binfmt, …)."""


class MissingPython(BuildError):
    """The build root does not provide the requested target Python (node → `missing`)."""

    def __init__(self, python: str, available: tuple[str, ...], root: str) -> None:
        self.python = python
        self.available = available
        self.root = root
        have = ", ".join(available) or "none"
        super().__init__(f"build root {root} has no Python {python} (it provides: {have})")


class SystemRecipeFailed(BuildError):
    """Installing a recipe's system packages failed (node → `system_recipe_failed`)."""

    def __init__(self, manager: str, packages: tuple[str, ...], exit_code: int) -> None:
        self.manager = manager
        self.packages = packages
        self.exit_code = exit_code
        super().__init__(
            f"{manager} install {' '.join(packages)} failed with exit code {exit_code}"
        )


class SdistError(BuildError):
    """The sdist could not be fetched or its sha256 does not match."""
