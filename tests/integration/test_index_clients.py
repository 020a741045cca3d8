"""Real pip and uv against our index, served by ``python -m http.server`` on 127.0.0.1;
``refinery serve``'s content negotiation over a socket; overlay mode against a real
simple-API server.

No network: every request goes to the local server (``--no-cache-dir``, one index only).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from fixtures.need import unavailable
from fixtures.wheels import built_wheel

from refinery.index import Index, handler
from refinery.store import Store

S390X = "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x"


class StaticServer:
    """``python -m http.server`` in a subprocess; its request log is kept."""

    def __init__(self, directory: Path, log: Path) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(directory),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}/simple/"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def requests(self) -> list[str]:
        return re.findall(r'"GET (\S+) HTTP', self.log.read_text(errors="replace"))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StaticServer, Path]]:
    tmp = tmp_path_factory.mktemp("served")
    store = Store.open(str(tmp / "store"))
    built_wheel(store, tmp / "w", "s390x-demo", "1.0", S390X, requires_python=">=3.8")
    built_wheel(store, tmp / "w", "pure-demo", "1.0", module=b"ANSWER = 41\n")
    built_wheel(
        store, tmp / "w", "pure-demo", "2.0", module=b"ANSWER = 42\n", requires_python=">=3.8"
    )
    built_wheel(store, tmp / "w", "future-only", "1.0", requires_python=">=3.99")
    out = tmp / "index"
    Index(store, out).build()
    server = StaticServer(out, tmp / "http.log")
    yield server, tmp
    server.stop()


def pip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    env.pop("PIP_FIND_LINKS", None)
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-cache-dir"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_pip_download_fetches_our_s390x_wheel(
    served: tuple[StaticServer, Path], tmp_path: Path
) -> None:
    server, _ = served
    result = pip(
        "download",
        "--only-binary=:all:",
        "--platform",
        "manylinux2014_s390x",
        "--platform",
        "manylinux_2_17_s390x",
        "--python-version",
        "3.11",
        "--index-url",
        server.url,
        "-d",
        str(tmp_path),
        "s390x-demo",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [f"s390x_demo-1.0-{S390X}.whl"]


def test_pip_reads_metadata_files(served: tuple[StaticServer, Path], tmp_path: Path) -> None:
    server, _ = served
    before = len(server.requests())
    result = pip("install", "--dry-run", "--index-url", server.url, "pure-demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Would install pure-demo-2.0" in result.stdout
    new = server.requests()[before:]
    meta = [i for i, r in enumerate(new) if r.endswith("pure_demo-2.0-py3-none-any.whl.metadata")]
    wheel = [i for i, r in enumerate(new) if r.endswith("pure_demo-2.0-py3-none-any.whl")]
    assert meta, new
    assert not wheel or meta[0] < wheel[0], new  # resolved from the metadata file first


def test_uv_reads_metadata_files(served: tuple[StaticServer, Path], tmp_path: Path) -> None:
    server, _ = served
    uv = shutil.which("uv")
    if uv is None:
        unavailable("uv is not installed")
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
    )
    before = len(server.requests())
    result = subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--dry-run",
            "--no-cache",
            "--python",
            str(venv / "bin/python"),
            "--index-url",
            server.url,
            "pure-demo",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "UV_NO_CONFIG": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pure-demo==2.0" in result.stderr + result.stdout
    new = server.requests()[before:]
    assert any(r.endswith("pure_demo-2.0-py3-none-any.whl.metadata") for r in new), new
    assert not any(r.endswith(".whl") for r in new), new


def test_pip_rejects_a_wrong_metadata_hash(
    served: tuple[StaticServer, Path], tmp_path: Path
) -> None:
    """A copy of a project page whose data-core-metadata hash is wrong: pip refuses it."""
    server, tmp = served
    page = (tmp / "index/simple/pure-demo/index.html").read_text()
    bad = re.sub(
        r'data-core-metadata="sha256=[0-9a-f]+"',
        'data-core-metadata="sha256=' + "0" * 64 + '"',
        page,
    )
    bad = bad.replace('href="../../wheels/', f'href="http://127.0.0.1:{server.port}/wheels/')
    tampered = tmp_path / "tampered/simple/pure-demo"
    tampered.mkdir(parents=True)
    (tampered / "index.html").write_text(bad)
    other = StaticServer(tmp_path / "tampered", tmp_path / "log")
    try:
        result = pip("install", "--dry-run", "--index-url", other.url, "pure-demo")
    finally:
        other.stop()
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert ".whl.metadata" in output  # it fetched the metadata file, then checked its hash
    assert "Expected sha256 " + "0" * 64 in output, output


def test_pure_wheel_installs_with_plain_pip(
    served: tuple[StaticServer, Path], tmp_path: Path
) -> None:
    server, _ = served
    target = tmp_path / "site"
    result = pip("install", "--index-url", server.url, "--target", str(target), "pure-demo")
    assert result.returncode == 0, result.stdout + result.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import pure_demo; print(pure_demo.ANSWER)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.stdout.strip() == "42", check.stderr
    # requires-python is honoured: the only version needs Python 3.99
    result = pip("install", "--dry-run", "--index-url", server.url, "future-only")
    assert result.returncode != 0
    assert "Requires-Python" in result.stdout + result.stderr


# --- inside the s390x root: install a wheel we built from the served index ----------------
def test_pip_inside_the_s390x_root_installs_our_wheel(rootfs_root: Any, tmp_path: Path) -> None:
    from fixtures.sdists import make_sdist

    from refinery.builder.options import AttemptSpec, BuildOptions
    from refinery.builder.pipconf import HostPip
    from refinery.builder.roots import Mounts
    from refinery.builder.step import build_node
    from refinery.core.cache import CacheRoot
    from refinery.core.models import FileRef, NodeStatus, PlanNode
    from refinery.store import sha256_file

    root = rootfs_root
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "cext"
    sdist = make_sdist(fixture, tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(
        "refinery-fixture-cext", "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref
    )
    options = BuildOptions(  # as the CLI reads them: the user's cache root and pip settings
        cache=CacheRoot.from_environment(os.environ, Path.home()),
        pip=HostPip.read(os.environ, Path.home()),
    )
    outcome = build_node(node, root, options=options, spec=AttemptSpec(workdir=tmp_path / "build"))
    assert outcome.status is NodeStatus.BUILT and outcome.wheel is not None, outcome.reason
    assert outcome.wheel.name.endswith("s390x.whl")
    with zipfile.ZipFile(outcome.wheel) as zf:
        assert any(n.endswith(".so") for n in zf.namelist())

    store = Store.open(str(tmp_path / "store"))
    from refinery.store.ingest import ingest

    ingest(store, [outcome.wheel])
    Index(store, tmp_path / "index").build()
    server = StaticServer(tmp_path / "index", tmp_path / "http.log")
    work = tmp_path / "work"
    work.mkdir()
    try:
        mounts = Mounts(work=work, pip_cache=tmp_path / "pc", tools=tmp_path / "build")
        with root.smoke_session(mounts) as session:
            site = session.inside(work) + "/site"
            result = session.run(
                [
                    "python3.11",
                    "-m",
                    "pip",
                    "install",
                    "--no-cache-dir",
                    "--break-system-packages",
                    "--disable-pip-version-check",
                    "--index-url",
                    server.url,
                    "--target",
                    site,
                    "refinery-fixture-cext",
                ],
                timeout=600,
            )
            assert result.ok, result.tail
            result = session.run(
                [
                    "python3.11",
                    "-c",
                    "import platform, refinery_fixture_cext as m; "
                    "print(platform.machine(), m.byteorder(), m.add(2, 40))",
                ],
                env={"PYTHONPATH": site},
            )
            assert result.ok, result.tail
            assert result.tail[-1] == "s390x big 42"
    finally:
        server.stop()
    assert any(r.endswith(".whl.metadata") for r in server.requests())


def test_serve_negotiates(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    built_wheel(store, tmp_path / "w", "beta", "2.0", S390X)
    out = tmp_path / "out"
    Index(store, out).build()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(out))
    Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/simple/beta/"
    try:
        req = urllib.request.Request(
            base, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        with urllib.request.urlopen(req) as resp:
            assert resp.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
            assert resp.headers["Vary"] == "Accept"
            assert json.loads(resp.read())["name"] == "beta"
        with urllib.request.urlopen(base) as resp:
            assert resp.headers["Content-Type"].startswith("text/html")
        req = urllib.request.Request(base, headers={"Accept": "application/xml"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        assert info.value.code == 406
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_overlay_from_a_real_index(fixture_index: str, cache_dir: Path, tmp_path: Path) -> None:
    from refinery.core.cache import CacheRoot
    from refinery.upstream.simple import IndexClient

    store = Store.open(str(tmp_path / "store"))
    built_wheel(store, tmp_path / "w", "purepkg", "9.0")
    out = tmp_path / "out"
    client = IndexClient(fixture_index, cache_dir=CacheRoot(cache_dir).index)
    Index(store, out, overlay=client).build()
    doc = json.loads((out / "simple/purepkg/index.json").read_text())
    names = [f["filename"] for f in doc["files"]]
    assert "purepkg-9.0-py3-none-any.whl" in names
    assert "purepkg-1.0-py3-none-any.whl" in names and "purepkg-1.0.tar.gz" in names
    upstream = next(f for f in doc["files"] if f["filename"] == "purepkg-1.0-py3-none-any.whl")
    assert upstream["url"].startswith("http://127.0.0.1:")
    assert doc["versions"] == ["1.0", "1.1", "9.0"]
