"""Errors the CLI turns into one-line messages and exit codes."""

from __future__ import annotations


class RefineryError(Exception):
    """Base class: a failure the user can act on. ``exit_code`` follows DESIGN §5.1."""

    exit_code = 2


class InputError(RefineryError):
    """Bad input or configuration: always names where (``FILE:LINE: what``)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.bare = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class ResolutionError(RefineryError):
    """The requirements cannot be satisfied together for the target."""


class NetworkError(RefineryError):
    """An index or store could not be reached after retries."""


class StoreError(RefineryError):
    """The store refused an operation (bad credentials, missing bucket, conflict)."""


class ConflictError(StoreError):
    """A compare-and-swap lost its race, or an immutable object differs."""


class BuildFailed(RefineryError):
    exit_code = 1
