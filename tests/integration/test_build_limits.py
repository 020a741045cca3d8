"""What a build may reach and fill (issue 14), with the cross backend for real.

* Network isolation: the netprobe fixture's build opens a TCP connection to a server this
  test runs on the host. Its first attempt runs isolated (its own network namespace,
  loopback only): the connection is refused, the attempt fails with "the build tried to
  reach the network: ..." and records ``isolated``; the real catalog's
  ``network-during-build`` hint allows the network for the retry, which reaches the
  server and is built, recorded as ``allowed: ...``.
* The disk watchdog: the diskfill fixture's build writes into its build folder and its
  temp folder without end; under a quota of a few MiB it is stopped within seconds,
  recorded as ``disk quota exceeded: ...``, and its work folder is emptied (the log kept).

* The emulated root: build requirements fetched as wheels first, then the build offline.
* Rust: ``cargo fetch`` first, cargo offline (a Cargo project with no dependencies).

Needs what tests/integration/test_build_cross.py needs (and ``ip`` from iproute2 for the
namespace's loopback).
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist, write_sdist

from refinery.builder.cross import CrossRoot
from refinery.builder.isolation import ISOLATED, QUOTA_EXCEEDED, DiskLimits
from refinery.builder.options import AttemptSpec, RunOptions
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.runner import BuildEvent, build_plan
from refinery.builder.step import build_node
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.hints import load_catalog
from refinery.hints.advise import Advisor, RetrySettings
from refinery.store import Store, sha256_file

OPTIONS = host_build_options()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HINTS = Path(__file__).resolve().parents[2] / "hints"
PLATFORM = "manylinux_2_28_s390x"


class Listener:
    """A TCP server on the host's 127.0.0.1: what each connection sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                self.received.append(conn.recv(1024))


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    server.thread.start()
    yield server
    server.sock.close()


def node_for(fixture: str, tmp: Path, extra: dict[str, str] | None = None) -> PlanNode:
    name = f"refinery-fixture-{fixture}"
    source = tmp / "src" / fixture
    shutil.copytree(FIXTURES / fixture, source)
    for file, text in (extra or {}).items():
        (source / file).write_text(text)
    if (source / "rust").is_dir():  # the host has no setuptools-rust to make an sdist with
        found = [p for p in source.rglob("*") if p.is_file()]
        files = {p.relative_to(source).as_posix(): p.read_text() for p in found}
        sdist = write_sdist(tmp / "sdist", name.replace("-", "_"), "0.1.0", files)
    else:
        sdist = make_sdist(source, tmp / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    return PlanNode(name, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)


def test_isolated_build_cannot_connect_and_the_hint_allows_it(
    cross_root: CrossRoot, listener: Listener, tmp_path: Path
) -> None:
    target = json.dumps(["127.0.0.1", listener.port])
    node = node_for("netprobe", tmp_path, {"netprobe_target.json": target})
    plan = Plan("it-network", (), (Target("3.11", PLATFORM),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    lines: list[str] = []

    def on_event(event: BuildEvent) -> None:
        if event.kind == "line":
            lines.append(event.message)

    advisor = Advisor(load_catalog(HINTS), "apt", RetrySettings(max_attempts=2, backoff=0.0))
    options = RunOptions(build=OPTIONS, workdir=tmp_path / "run", max_attempts=2)
    build_plan(plan, store, cross_root, options, on_event=on_event, advise=advisor)
    record = store.get_record(node.name, "0.1.0", "3.11")
    assert record is not None
    assert record.status is NodeStatus.BUILT, (record.reason, lines[-40:])
    first, second = record.attempts
    assert first.network == ISOLATED, first
    assert first.reason.startswith("the build tried to reach the network: "), first.reason
    assert "Connection refused" in first.reason and "network: {allow: true" in first.reason
    assert second.hint_ids == ("network-during-build",), second.hint_ids
    assert second.network.startswith("allowed: the build downloads"), second.network
    assert listener.received == [b"hello from the build\n"]  # the allowed attempt only


def test_disk_filling_build_is_stopped_and_its_folder_removed(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    node = node_for("diskfill", tmp_path)
    limits = DiskLimits(quota=24 << 20, min_free=0, interval=0.2)
    lines: list[str] = []
    work = tmp_path / "work"
    spec = AttemptSpec(
        workdir=work, log=tmp_path / "build.log", on_line=lines.append, target_platform=PLATFORM
    )
    outcome = build_node(node, cross_root, options=replace(OPTIONS, disk=limits), spec=spec)
    assert outcome.status is NodeStatus.FAILED, (outcome.reason, lines[-30:])
    assert outcome.reason.startswith(f"{QUOTA_EXCEEDED}: the build's folders hold "), outcome.reason
    assert "over its quota of 24.0 MiB" in outcome.reason
    written = [line for line in lines if line.startswith("DISKFILL ")]
    assert written and "DISKFILL NOT STOPPED" not in written
    assert int(written[-1].split()[1]) < 200  # stopped long before its 10 GiB
    assert list(work.iterdir()) == []  # the work folder is emptied …
    assert "disk quota exceeded" in (tmp_path / "build.log").read_text()  # … the log is kept


def test_rust_crates_are_fetched_first_and_cargo_builds_offline(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    """The rustext fixture (a Cargo project with no dependencies: crates.io is not
    reachable here) builds isolated: ``cargo fetch`` in the requires phase, then cargo
    with ``CARGO_NET_OFFLINE`` in the namespace without a network."""
    node = node_for("rustext", tmp_path)
    lines: list[str] = []
    spec = AttemptSpec(workdir=tmp_path / "work", on_line=lines.append, target_platform=PLATFORM)
    outcome = build_node(node, cross_root, options=OPTIONS, spec=spec)
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, lines[-40:])
    assert outcome.network == ISOLATED
    log = spec.log_file.read_text()
    fetch = log.index("cargo fetch --manifest-path")
    assert fetch < log.index("==> build: ") < log.index("(network: isolated)")
    assert "SMOKE OK refinery_fixture_rustext" in log


def test_rootfs_build_fetches_requirements_first_then_runs_without_a_network(
    rootfs_root: RootfsRoot, listener: Listener, tmp_path: Path
) -> None:
    """The emulated root: pypa/build's isolated environment would download setuptools
    during the build, so the requires phase fetches it as a wheel first; the build then
    installs from that folder only, in a namespace without a network (refused), and
    with the package's fix allowing the network it reaches the host's server."""
    target = json.dumps(["127.0.0.1", listener.port])
    node = node_for("netprobe", tmp_path, {"netprobe_target.json": target})
    outcomes = []
    for n, allowed in enumerate(("", "the test's server")):
        spec = AttemptSpec(workdir=tmp_path / f"w{n}", network=allowed, target_platform=PLATFORM)
        outcomes.append(build_node(node, rootfs_root, options=OPTIONS, spec=spec))
    isolated, allowed_run = outcomes
    log = (tmp_path / "w0" / "build.log").read_text()
    assert isolated.network == ISOLATED and isolated.status is NodeStatus.FAILED, log[-3000:]
    assert isolated.reason.startswith("the build tried to reach the network: "), isolated.reason
    assert log.index("==> requires: ") < log.index("(network: isolated)")
    assert "setuptools" in log[log.index("==> requires: ") : log.index("==> build: ")]
    assert allowed_run.status is NodeStatus.BUILT, allowed_run.reason
    assert allowed_run.network == "allowed: the test's server"
    assert listener.received == [b"hello from the build\n"]
