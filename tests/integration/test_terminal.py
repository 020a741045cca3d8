"""`refinery run -j 2` as a person sees it in a terminal (tmux: ``send-keys`` to type,
``capture-pane`` to read the screen): both nodes' state lines while they build, the
summary after, and no compiler line on the screen without ``-v``.

Two fixture packages (cext, zlibext) from an index of our own, built by the cross
backend; setuptools for their build comes from PyPI.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.need import unavailable
from fixtures.pyindex import IndexServer
from fixtures.sdists import make_sdist

from refinery.builder import crosstools

pytestmark = pytest.mark.network

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
NODES = ("refinery-fixture-cext==0.1.0@3.11", "refinery-fixture-zlib==0.1.0@3.11")
WIDTH, HEIGHT = 160, 40


def sdist_index(root: Path, sdists: list[Path]) -> Path:
    """A PEP 503 index (HTML pages) of ``sdists`` under ``root``; returns ``root``."""
    for sdist in sdists:
        target = root / "files" / sdist.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sdist, target)
        project = sdist.name.removesuffix(".tar.gz").rsplit("-", 1)[0].lower()
        page = root / "simple" / project.replace("_", "-")
        page.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256(target.read_bytes()).hexdigest()
        (page / "index.html").write_text(
            f'<html><body><a href="../../files/{sdist.name}#sha256={sha}">{sdist.name}</a>'
            "</body></html>\n"
        )
    return root


class Pane:
    """A tmux server of our own (its own socket) with one pane of a fixed size."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def type(self, command: str) -> None:
        self.tmux("send-keys", "-t", "t", command, "Enter")

    def screen(self, history: int = 0) -> str:
        """What the pane shows now (with ``history`` lines scrolled off above)."""
        start = ["-S", str(-history)] if history else []
        return self.tmux("capture-pane", "-p", "-t", "t", *start)


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    if shutil.which("tmux") is None:
        unavailable("tmux is not installed (apt-get install tmux)")
    found = Pane(f"refinery-test-{tmp_path.name}")
    found.tmux("new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y", str(HEIGHT), "bash --norc")
    try:
        yield found
    finally:
        subprocess.run(["tmux", "-L", found.socket, "kill-server"], check=False)


def _wait(pane: Pane, seconds: float, seen: list[str], until: str) -> str:
    """Capture the screen every half second until the pattern ``until`` shows; every
    capture is kept."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        screen = pane.screen()
        seen.append(screen)
        if re.search(until, screen):
            return screen
        time.sleep(0.5)
    raise AssertionError(f"no {until!r} on the screen after {seconds}s:\n{seen[-1]}")


def test_run_in_a_terminal_shows_live_states_and_a_summary(
    tmp_path: Path, pane: Pane, rootfs_root: Any
) -> None:
    missing = crosstools.missing_tools("s390x")
    if missing:
        unavailable(f"the cross backend needs {', '.join(missing)} (crossbuild-essential-s390x)")
    sdists = [make_sdist(FIXTURES / name, tmp_path / "sdist") for name in ("cext", "zlibext")]
    req = tmp_path / "req.txt"
    req.write_text("refinery-fixture-cext==0.1.0\nrefinery-fixture-zlib==0.1.0\n")
    with IndexServer(sdist_index(tmp_path / "index-src", sdists)) as index:
        command = [
            sys.executable, "-m", "refinery", "--store", str(tmp_path / "store"),
            "--backend", "cross", "--index-url", index.url, "run", str(req), "--no-site",
            "--index-dir", str(tmp_path / "index"), "--hints", str(REPO / "hints"), "-j", "2",
        ]  # fmt: skip
        pane.type(f"cd {shlex.quote(str(tmp_path))}; {shlex.join(command)}; echo EXIT=$?")
        seen: list[str] = []
        # both nodes in flight, each on a line of its own with its state and attempt
        _wait(pane, 300, seen, "2 building")
        during = seen[-1]
        for node in NODES:
            assert any(
                line.lstrip().startswith(("leased", "building")) and node in line
                for line in during.splitlines()
            ), during
        assert "attempt 1/3" in during and "logs: /" in during
        _wait(pane, 600, seen, r"EXIT=\d")
    final = pane.screen(history=200)
    assert "EXIT=0" in final, final
    assert "builds" in final and "wheel tag" in final  # the summary table
    for node in NODES:
        assert f"✓ built {node}" in final
        row = next(line for line in final.splitlines() if line.startswith(f"│ {node}"))
        assert "built" in row and "manylinux" in row and "s390x" in row
    assert "build: 2 built" in final
    # every screen shown on the way: no raw compiler line, no setuptools banner
    for screen in [*seen, final]:
        assert "gcc" not in screen and "-fPIC" not in screen and "zig cc" not in screen
        assert "running build_ext" not in screen and "********" not in screen
    # progress came from the build output: some capture showed a phase beyond "leased"
    phase = re.compile(r"attempt 1/3  \d+:\d\d  (fetch|requires|build|repair|check|smoke)")
    assert any(phase.search(screen) for screen in seen)
