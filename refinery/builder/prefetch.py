"""Build requirements fetched before a network-isolated build (issue 14).

pypa/build's isolated environment downloads the build requirements during the build
command itself. Before that command runs without a network, this fetches them, with
the network, as wheels into one folder of the attempt (``work/requires-wheels``),
inside the session (the target's interpreter and pip, so markers and wheel tags are the
build's): the static ``[build-system].requires``, then what the backend's
``get_requires_for_build_wheel`` asks for (it runs with the static ones on
``PYTHONPATH``). The build then installs from that folder only (pip ``--no-index``, uv
offline), as fromager does. The cross backend needs none of this: it installs the build
requirements itself in its ``requires`` phase.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.crosstools import REQUIRES_SCRIPT, parse_requires
from refinery.builder.proc import ProcResult

REQUIRES_WHEELS = "requires-wheels"
REQUIRES_TARGET = "requires-static"
#: pip in a distro's Python refuses ``--target`` installs only by PEP 668's marker.
PIP_ENV = {"PIP_BREAK_SYSTEM_PACKAGES": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

Run = Callable[[Sequence[str], Mapping[str, str]], ProcResult]


class PrefetchFailed(Exception):
    def __init__(self, what: str, result: ProcResult) -> None:
        super().__init__(what)
        self.result = result


@dataclass(frozen=True)
class Prefetch:
    """One attempt's prefetch: ``python`` and ``frontend`` (pypa/build's folder) as the
    session sees them, the ``project``, its ``settings`` (PEP 517 ``-C``), the host
    ``work`` folder and how the session maps and runs things."""

    python: str
    frontend: str
    project: str
    settings: tuple[str, ...]
    work: Path
    inside: Callable[[Path], str]
    run: Run

    def requires(self, kind: str, env: Mapping[str, str]) -> tuple[str, ...]:
        pairs = dict(s.partition("=")[::2] for s in self.settings)
        argv = [self.python, "-c", REQUIRES_SCRIPT, self.frontend, self.project, kind]
        result = self.run([*argv, json.dumps(pairs)], env)
        wanted = parse_requires(result.tail) if result.ok else None
        if wanted is None:
            raise PrefetchFailed(f"asking the build backend for its {kind} requirements", result)
        return wanted

    def pip(self, args: Sequence[str], env: Mapping[str, str], what: str) -> None:
        result = self.run([self.python, "-m", "pip", *args], {**env, **PIP_ENV})
        if not result.ok:
            raise PrefetchFailed(what, result)

    def fetch(self, env: Mapping[str, str]) -> Path:
        """Every build requirement as a wheel in ``work/requires-wheels`` (returned)."""
        wheels, target = self.work / REQUIRES_WHEELS, self.work / REQUIRES_TARGET
        for folder in (wheels, target):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
        into = ["wheel", "--wheel-dir", self.inside(wheels)]
        static = self.requires("static", env)
        if static:
            self.pip([*into, *static], env, "fetching the static build requirements")
            install = ["install", "--no-index", "--find-links", self.inside(wheels), "--target"]
            self.pip([*install, self.inside(target), *static], env, "installing them to ask")
        dynamic = self.requires("wheel", {**env, "PYTHONPATH": self.inside(target)})
        if dynamic:
            self.pip([*into, *dynamic], env, "fetching the backend's build requirements")
        shutil.rmtree(target, ignore_errors=True)
        return wheels


def offline_env(env: Mapping[str, str], wheels: str) -> dict[str, str]:
    """The build command's environment installing from ``wheels`` (as the session sees
    it) only: pip without an index, uv offline, both with it first among find-links."""
    out = dict(env)
    out["PIP_NO_INDEX"] = "1"
    out["PIP_FIND_LINKS"] = " ".join([wheels, *env.get("PIP_FIND_LINKS", "").split()])
    if "UV_CACHE_DIR" in env:
        out["UV_OFFLINE"] = "1"
        links = [wheels, *(x for x in env.get("UV_FIND_LINKS", "").split(",") if x)]
        out["UV_FIND_LINKS"] = ",".join(links)
    return out
