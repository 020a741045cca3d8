"""``refinery verify`` finds every tampered object; the index never links one."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from fixtures.wheels import built_wheel

from refinery.cli import main
from refinery.core.models import BuildRecord, NodeStatus, WheelRef
from refinery.index import Index
from refinery.store import Store
from refinery.store.verify import verify_store


def _store(tmp_path: Path) -> tuple[Store, list[WheelRef]]:
    store = Store.open(str(tmp_path / "store"))
    refs = [built_wheel(store, tmp_path / "w", f"good{i}", "1.0") for i in range(3)]
    Index(store, tmp_path / "out").build(upload=True)
    return store, refs


def _verify(store: Store) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, ["--store", store.url, "verify", "--json"])
    return result.exit_code, json.loads(result.output)


def test_a_whole_store_verifies(tmp_path: Path) -> None:
    store, _refs = _store(tmp_path)
    code, doc = _verify(store)
    assert code == 0 and doc["ok"] is True and doc["schema"] == 1
    assert (doc["wheels"], doc["metadata"], doc["records"], doc["summaries"]) == (3, 3, 3, 3)
    assert doc["pages"] == 4 and doc["links"] >= 3 + 3 * 2


def test_tampered_wheel_is_reported_and_never_linked(tmp_path: Path) -> None:
    store, refs = _store(tmp_path)
    key = store.wheel_path(refs[1].sha256, refs[1].filename)
    path = store.blobs.local_path(key)
    assert path is not None
    path.write_bytes(path.read_bytes() + b"evil")
    code, doc = _verify(store)
    assert code == 1
    problems = {(p["key"], p["what"].split(",")[0]) for p in doc["problems"]}  # type: ignore[union-attr]
    assert any(k == key and "hash to" in w for k, w in problems)
    assert any(k == "records/good1/1.0/3.11.json" for k, _w in problems)
    assert any(k == "simple/good1/index.json" for k, _w in problems)  # the uploaded page
    result = Index(store, tmp_path / "out2").build(full=True)
    assert result.files == 2 and not (tmp_path / "out2/simple/good1").exists()
    root = json.loads((tmp_path / "out2/simple/index.json").read_text())
    assert [p["name"] for p in root["projects"]] == ["good0", "good2"]
    assert len(json.loads((tmp_path / "out2/simple/good0/index.json").read_text())["files"]) == 1


def test_tampered_metadata_and_missing_wheel_are_reported(tmp_path: Path) -> None:
    store, refs = _store(tmp_path)
    meta = store.blobs.local_path(store.wheel_path(refs[0].sha256, refs[0].filename) + ".metadata")
    assert meta is not None
    meta.write_bytes(b"Metadata-Version: 2.1\nName: evil\n")
    store.update_record(
        "ghost",
        "1.0",
        "3.11",
        lambda _c: BuildRecord(
            "ghost",
            "1.0",
            "3.11",
            NodeStatus.FAILED,
            wheel=WheelRef("ghost-1.0-py3-none-any.whl", "0" * 64),
        ),
    )
    report = verify_store(store)
    lines = [p.line() for p in report.problems]
    assert not report.ok
    assert any(".metadata: metadata file differs" in line for line in lines)
    assert any(line.startswith("records/ghost/1.0/3.11.json: names") for line in lines)
    result = Index(store, tmp_path / "out2").build(full=True)
    assert result.files == 2 and not (tmp_path / "out2/simple/good0").exists()


def test_uploaded_page_with_a_wrong_hash_is_reported(tmp_path: Path) -> None:
    store, _refs = _store(tmp_path)
    rel = "good2/index.json"
    page = json.loads(store.get_index_file(rel) or b"{}")
    page["files"][0]["hashes"]["sha256"] = "f" * 64
    store.put_index_file(rel, json.dumps(page).encode())
    store.put_index_file("index.json", b'{"projects": [{"name": "nopage"}]}')
    lines = [p.line() for p in verify_store(store).problems]
    assert any(line.startswith("simple/good2/index.json: links") for line in lines)
    assert "simple/index.json: lists nopage, no page" in lines


def test_the_index_remembers_verified_wheels_and_sees_a_change(tmp_path: Path) -> None:
    store, refs = _store(tmp_path)
    again = Index(store, tmp_path / "out")
    again.build(full=True)
    assert again._verified.read == 0  # every wheel verified before, unchanged since
    path = store.blobs.local_path(store.wheel_path(refs[2].sha256, refs[2].filename))
    assert path is not None
    path.write_bytes(b"PK" + path.read_bytes()[2:][::-1])
    index = Index(store, tmp_path / "out")
    result = index.build(full=True)
    assert index._verified.read == 1 and result.files == 2
    assert not (tmp_path / "out/simple/good2").exists()
