"""The store's ledger rules on a local folder, the S3 backend's error handling against a
fake client, and publish (order, merge, interruption)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from fixtures.ledger import concurrent_updates
from fixtures.wheels import Project, make_wheel

from refinery.core.errors import ConflictError, InputError, StoreError
from refinery.core.models import Attempt, BuildRecord, Event, NodeStatus
from refinery.store import LocalBlobStore, S3Options, Store, open_blobs
from refinery.store.layout import (
    RecordId,
    WheelKey,
    is_log_key,
    log_key,
    metadata_key,
    parse_plan_key,
    parse_project_key,
    parse_record_key,
    parse_wheel_key,
    plan_key,
    project_key,
    record_key,
)
from refinery.store.publish import merge_records, publish
from refinery.store.s3 import S3BlobStore, content_type


def wheel_file(tmp: Path, name: str, version: str, tag: str = "py3-none-any", **kw: Any) -> Path:
    filename, data, _meta = make_wheel(Project(name, version, **kw), tag)
    path = tmp / filename
    path.write_bytes(data)
    return path


def built(store: Store, path: Path, name: str, version: str, python: str = "3.11") -> None:
    ref = store.put_wheel(path)
    store.update_record(
        name,
        version,
        python,
        lambda cur: (cur or BuildRecord(name, version, python, NodeStatus.PENDING)).evolve(
            status=NodeStatus.BUILT, wheel=ref
        ),
    )


def test_local_conditional_writes(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    assert blobs.put_if_absent("a/b", b"1")
    assert not blobs.put_if_absent("a/b", b"2")
    data, tag = blobs.get("a/b") or (b"", "")
    assert data == b"1"
    blobs.put_if_match("a/b", b"3", tag)
    with pytest.raises(ConflictError):
        blobs.put_if_match("a/b", b"4", tag)
    with pytest.raises(ConflictError):
        blobs.put_if_match("a/new", b"4", "x")
    with pytest.raises(StoreError):
        blobs.get("../escape")


def test_list_tags_change_with_content(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    blobs.put("p/x.json", b"1")
    blobs.put("p/y.json", b"1")
    before = dict(blobs.list_tags("p/"))
    blobs.put("p/x.json", b"22")
    after = dict(blobs.list_tags("p/"))
    assert set(before) == {"p/x.json", "p/y.json"}
    assert before["p/y.json"] == after["p/y.json"]
    assert before["p/x.json"] != after["p/x.json"]
    assert sorted(blobs.list("")) == ["p/x.json", "p/y.json"]
    assert list(blobs.list("missing/")) == []


def test_summary_follows_records(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    w = wheel_file(tmp_path, "Demo_Pkg", "1.0", requires_python=">=3.9")
    store.update_record(
        "demo-pkg",
        "1.0",
        "3.11",
        lambda _c: BuildRecord("demo-pkg", "1.0", "3.11", NodeStatus.BUILDING),
    )
    assert store.get_summary("demo-pkg") is None  # nothing servable yet
    built(store, w, "demo-pkg", "1.0")
    summary = store.get_summary("Demo.Pkg")
    assert summary is not None
    (entry,) = summary.files.values()
    assert entry.filename == w.name and entry.requires_python == ">=3.9"
    # A yanked event reaches the summary; a failed rebuild removes the file.
    store.update_record("demo-pkg", "1.0", "3.11", lambda c: c.with_event("t", "yanked", "bad"))  # type: ignore[union-attr]
    summary = store.get_summary("demo-pkg")
    assert summary is not None and next(iter(summary.files.values())).yanked == "bad"
    store.update_record("demo-pkg", "1.0", "3.11", lambda c: c.evolve(status=NodeStatus.FAILED))  # type: ignore[union-attr]
    summary = store.get_summary("demo-pkg")
    assert summary is not None and summary.files == {}


def test_summary_skips_records_whose_wheel_is_missing(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    w = wheel_file(tmp_path, "ghost", "1.0")
    ref = store.put_wheel(w)
    wheel = store.blobs.local_path(store.wheel_path(ref.sha256, ref.filename))
    assert wheel is not None
    wheel.unlink()
    store.update_record(
        "ghost",
        "1.0",
        "3.11",
        lambda _c: BuildRecord("ghost", "1.0", "3.11", NodeStatus.BUILT, wheel=ref),
    )
    summary = store.get_summary("ghost")
    assert summary is None or summary.files == {}


def test_concurrent_record_updates_lose_nothing(tmp_path: Path) -> None:
    record = concurrent_updates(Store.open(str(tmp_path / "s")), writers=6, each=10)
    assert len(record.events) == 60


def test_open_blobs_s3_url_needs_no_network() -> None:
    blobs = open_blobs("s3://bucket/some/prefix/")
    assert isinstance(blobs, S3BlobStore)
    assert blobs.url == "s3://bucket/some/prefix"
    assert blobs._key("records/a.json") == "some/prefix/records/a.json"
    assert content_type("simple/x/index.json") == "application/vnd.pypi.simple.v1+json"
    assert content_type("simple/x/index.html").startswith("text/html")


# --- S3 error handling against a fake client ------------------------------------------
def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


class FakeClient:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def put_object(self, **kw: Any) -> dict[str, str]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ETag": '"abc"'}

    get_object = put_object


def fake_store(
    errors: list[Exception], retries: int = 4
) -> tuple[S3BlobStore, FakeClient, list[float]]:
    client = FakeClient(errors)
    sleeps: list[float] = []
    store = S3BlobStore(
        "b",
        "p",
        client=client,  # type: ignore[arg-type]
        options=S3Options(retries=retries),
        sleep=sleeps.append,
    )
    return store, client, sleeps


@pytest.mark.parametrize(
    "error",
    [
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
        client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ],
)
def test_transient_errors_are_retried_with_backoff(error: Exception) -> None:
    store, client, sleeps = fake_store([error, error])
    store.put("k", b"x")
    assert client.calls == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.7


def test_transient_errors_give_up_with_one_line() -> None:
    store, client, _ = fake_store([client_error("503", 503)] * 10, retries=2)
    with pytest.raises(StoreError) as info:
        store.put("k", b"x")
    assert client.calls == 3
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [
        ("InvalidAccessKeyId", 403, "credentials rejected"),
        ("SignatureDoesNotMatch", 403, "credentials rejected"),
        ("AccessDenied", 403, "credentials rejected"),
        ("NoSuchBucket", 404, "does not exist"),
        ("NotImplemented", 501, "conditional writes"),
    ],
)
def test_permanent_errors_fail_at_once(code: str, status: int, words: str) -> None:
    store, client, sleeps = fake_store([client_error(code, status)])
    with pytest.raises(StoreError, match=words) as info:
        store.put_if_absent("k", b"x")
    assert client.calls == 1 and sleeps == []
    assert "\n" not in str(info.value)


def test_precondition_failed_means_present_or_conflict() -> None:
    store, _, _ = fake_store([client_error("PreconditionFailed", 412)])
    assert store.put_if_absent("k", b"x") is False
    store, _, _ = fake_store([client_error("PreconditionFailed", 412)])
    with pytest.raises(ConflictError):
        store.put_if_match("k", b"x", '"old"')


# --- publish ------------------------------------------------------------------------
class RecordingBlobs:
    """A folder that remembers the order of writes and can fail after N of them."""

    def __init__(self, root: Path, fail_after: int | None = None) -> None:
        self.inner = LocalBlobStore(root)
        self.url = self.inner.url
        self.writes: list[str] = []
        self.fail_after = fail_after

    def _count(self, key: str) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise StoreError("server went away")
        self.writes.append(key)

    def get(self, key: str) -> tuple[bytes, str] | None:
        return self.inner.get(key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._count(key)
        return self.inner.put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        self._count(key)
        return self.inner.put_if_match(key, data, etag)

    def put(self, key: str, data: bytes) -> None:
        self._count(key)
        self.inner.put(key, data)

    def list(self, prefix: str) -> Iterator[str]:
        return self.inner.list(prefix)

    def list_tags(self, prefix: str) -> Iterator[tuple[str, str]]:
        return self.inner.list_tags(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def local_path(self, key: str) -> Path | None:
        return None  # behaves as a remote store


def staging_with(tmp_path: Path, n: int) -> Store:
    staging = Store.open(str(tmp_path / "staging"))
    for i in range(n):
        w = wheel_file(tmp_path, f"pkg{i}", "1.0")
        built(staging, w, f"pkg{i}", "1.0")
        staging.put_log(f"pkg{i}", "1.0", "3.11", 1, b"log\n")
    return staging


def test_publish_writes_wheels_first_and_records_last(tmp_path: Path) -> None:
    staging = staging_with(tmp_path, 3)
    blobs = RecordingBlobs(tmp_path / "target")
    result = publish(staging, Store(blobs))
    assert (result.records, result.wheels, result.logs) == (3, 3, 3)
    kinds = [k.split("/")[0] for k in blobs.writes]
    last_wheel = max(i for i, k in enumerate(kinds) if k == "wheels")
    first_record = min(i for i, k in enumerate(kinds) if k == "records")
    assert last_wheel < first_record
    for k in blobs.writes:  # each wheel's metadata before the wheel
        if k.endswith(".whl"):
            assert blobs.writes.index(k + ".metadata") < blobs.writes.index(k)
    again = publish(staging, Store(blobs))
    assert again.wheels == 0 and again.wheels_present == 3


def test_interrupted_publish_exposes_nothing_and_resumes(tmp_path: Path) -> None:
    staging = staging_with(tmp_path, 3)
    target_dir = tmp_path / "target"
    with pytest.raises(StoreError):
        publish(staging, Store(RecordingBlobs(target_dir, fail_after=5)))
    target = Store.open(str(target_dir))
    assert list(target.records()) == []
    assert list(target.summaries()) == []
    publish(staging, target)
    assert len(list(target.records())) == 3 and len(list(target.summaries())) == 3


def test_publish_refuses_a_record_without_its_wheel(tmp_path: Path) -> None:
    staging = staging_with(tmp_path, 1)
    for key in list(staging.blobs.list("wheels/")):
        (tmp_path / "staging" / key).unlink()
    with pytest.raises(StoreError, match="neither store"):
        publish(staging, Store.open(str(tmp_path / "target")))
    assert list(Store.open(str(tmp_path / "target")).blobs.list("")) == []


def test_merge_keeps_both_histories() -> None:
    a1 = Attempt(1, "t1", ended="t2", status="failed")
    a2_open = Attempt(2, "t3")
    a2_done = Attempt(2, "t3", ended="t4", status="built")
    cur = BuildRecord(
        "m",
        "1",
        "3.11",
        NodeStatus.LEASED,
        attempts=(a1, a2_open),
        events=(Event("t0", "leased"),),
        updated="t3",
    )
    inc = BuildRecord(
        "m",
        "1",
        "3.11",
        NodeStatus.BUILT,
        attempts=(a2_done,),
        events=(Event("t0", "leased"), Event("t4", "built")),
        updated="t1",
    )
    merged = merge_records(cur, inc)
    assert merged.status is NodeStatus.BUILT  # terminal beats active despite being older
    assert merged.attempts == (a1, a2_done)
    assert [e.kind for e in merged.events] == ["leased", "built"]
    assert merge_records(None, inc) is inc


def test_project_key_is_normalised() -> None:
    assert project_key("Foo_Bar.baz") == "projects/foo-bar-baz.json"


# --- the key layout -----------------------------------------------------------------
def test_layout_keys_are_the_documented_ones() -> None:
    sha = "ab" * 32
    assert record_key("Foo_Bar", "1.0", "3.11") == "records/foo-bar/1.0/3.11.json"
    assert log_key("Foo_Bar", "1.0", "3.11", 2) == "logs/foo-bar/1.0/3.11/2.log"
    assert (
        metadata_key(sha, "f-1-py3-none-any.whl") == f"wheels/{sha}/f-1-py3-none-any.whl.metadata"
    )
    assert plan_key("p1") == "plans/p1.json"


def test_layout_parsers_invert_the_builders() -> None:
    sha = "cd" * 32
    assert parse_record_key(record_key("a", "1.0", "3.12")) == RecordId("a", "1.0", "3.12")
    assert parse_record_key("records/a/1.0.json") is None
    assert parse_record_key("records/a/1.0/3.12.txt") is None
    assert parse_wheel_key(f"wheels/{sha}/x.whl") == WheelKey(sha, "x.whl", False)
    assert parse_wheel_key(metadata_key(sha, "x.whl")) == WheelKey(sha, "x.whl", True)
    assert parse_wheel_key(f"wheels/{sha}/.tmp-123") is None
    assert parse_project_key(project_key("A.B")) == "a-b"
    assert parse_project_key("projects/sub/x.json") is None
    assert parse_plan_key(plan_key("p1")) == "p1" and parse_plan_key("inputs/x.json") is None
    assert is_log_key("logs/a/1/3.11/1.log")
    assert not is_log_key("logs/../records/a/1/3.11.json") and not is_log_key(None)
    assert not is_log_key("records/a/1/3.11.json")


def test_store_queries_answer_without_keys(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    built(store, wheel_file(tmp_path, "q", "1.0"), "q", "1.0")
    built(store, wheel_file(tmp_path, "q", "2.0"), "q", "2.0", python="3.12")
    assert sorted(store.record_ids("Q")) == [("q", "1.0", "3.11"), ("q", "2.0", "3.12")]
    assert [r for r, _d in store.stored_records()] == list(store.records())
    key = store.put_log("q", "1.0", "3.11", 1, b"hello\n")
    assert store.get_log(key) == b"hello\n" and store.log_file(key) == tmp_path / "s" / key
    assert store.get_log(record_key("q", "1.0", "3.11")) is None  # not a log: not read
    assert store.logs_of("Q") == "logs/q"
    assert store.local and Store(RecordingBlobs(tmp_path / "r")).local is False
    store.put_index_file("q/index.html", b"<html>")
    assert store.get_index_file("q/index.html") == b"<html>"
    store.delete_index_file("q/index.html")
    assert store.get_index_file("q/index.html") is None


def test_export_wheel_copies_metadata_and_wheel(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    ref = store.put_wheel(wheel_file(tmp_path, "e", "1.0"))
    out = tmp_path / "out"
    assert store.export_wheel(ref.sha256, ref.filename, out) == 2
    rel = store.wheel_path(ref.sha256, ref.filename)
    assert (out / rel).read_bytes() == store.get_wheel(ref)
    assert (out / f"{rel}.metadata").is_file()
    assert store.export_wheel(ref.sha256, ref.filename, out) == 0
    with pytest.raises(StoreError, match="missing"):
        store.export_wheel("00" * 32, ref.filename, out)


def test_unreadable_record_is_a_store_error(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    store.blobs.put(record_key("bad", "1", "3.11"), b"{not json")
    with pytest.raises(StoreError, match="not a build record"):
        store.get_record("bad", "1", "3.11")


def test_repair_summaries_reuses_entries_only_while_the_wheel_is_stored(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    w = wheel_file(tmp_path, "r", "1.0")
    built(store, w, "r", "1.0")
    assert store.repair_summaries() == []  # in line with the records
    summary = store.get_summary("r")
    assert summary is not None
    (entry,) = summary.files.values()
    wheel = store.blobs.local_path(store.wheel_path(entry.sha256, entry.filename))
    assert wheel is not None
    wheel.unlink()
    store.refresh_summary("r")  # an ordinary refresh trusts the entry
    assert store.get_summary("r") == summary
    assert store.repair_summaries() == ["r"]  # a full one checks the wheel
    repaired = store.get_summary("r")
    assert repaired is not None and repaired.files == {}


def test_s3_options_are_read_at_the_cli_edge() -> None:
    from refinery.cli.app import s3_options

    assert s3_options({}) == S3Options()
    assert s3_options({"REFINERY_S3_RETRIES": "2"}).retries == 2
    with pytest.raises(InputError):
        s3_options({"REFINERY_S3_RETRIES": "many"})
    with pytest.raises(InputError):
        S3Options(retries=-1)
    blobs = open_blobs("s3://b/p", s3=S3Options(retries=1, backoff=0.5))
    assert isinstance(blobs, S3BlobStore) and (blobs.retries, blobs.backoff) == (1, 0.5)
