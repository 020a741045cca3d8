"""The ``refinery`` command: every stage, one process each, state in files.

``app`` holds the group and the shared plumbing; each stage has its own module whose
import registers its commands.
"""

from refinery.cli import (
    build,
    config,
    gitops,
    hints,
    logs,
    plan,
    sbom,
    site,
    store,
    test,
    verify,
    wheels,
)
from refinery.cli.app import Settings, main
from refinery.cli.plan import make_plan

__all__ = [
    "Settings",
    "build",
    "config",
    "gitops",
    "hints",
    "logs",
    "main",
    "make_plan",
    "plan",
    "sbom",
    "site",
    "store",
    "test",
    "verify",
    "wheels",
]
