"""Wheel upload, GitOps form, with real parts: wheels served over HTTP on 127.0.0.1, a
real folder store, twine check for real. ``wheels check`` stores nothing; a wrong sha256
or a wheel that fails the ingest checks is refused (exit 1) and nothing is stored;
``wheels ingest`` stores, a second time is a no-op, other bytes under a stored name are
refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fixtures.pyindex import IndexServer
from fixtures.wheels import good_wheel

from refinery.cli import main
from refinery.core.models import NodeStatus
from refinery.store import Store

S390X = "cp311-cp311-manylinux_2_28_s390x"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served on 127.0.0.1, and its base URL."""
    root = tmp_path / "served"
    (root / "files").mkdir(parents=True)
    with IndexServer(root) as server:
        yield root / "files", server.url.removesuffix("simple/") + "files/"


def _entry(path: Path, base: str, sha: str | None = None, name: str = "upl") -> str:
    digest = sha or hashlib.sha256(path.read_bytes()).hexdigest()
    return (
        f'[[wheel]]\nname = "{name}"\nversion = "1.0"\n'
        f'url = "{base}{path.name}"\nsha256 = "{digest}"\n'
    )


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["wheels", *args, "--allow-http-loopback"])


def test_check_then_ingest_then_again(served: tuple[Path, str], tmp_path: Path) -> None:
    files, base = served
    wheel = good_wheel(files, "upl", "1.0", S390X)
    pure = good_wheel(files, "upl-pure", "1.0")
    listing = tmp_path / "wheels" / "extra.toml"
    listing.parent.mkdir()
    listing.write_text(_entry(wheel, base) + "\n" + _entry(pure, base, name="upl-pure"))
    store_dir = tmp_path / "store"

    verdict = tmp_path / "out" / "verdict.json"
    comment = tmp_path / "out" / "comment.md"
    checked = _run("check", str(listing), "--json-out", str(verdict), "--comment", str(comment))
    assert checked.exit_code == 0, checked.output
    doc = json.loads(verdict.read_text())
    assert doc["ok"] is True
    assert [(w["filename"], w["detail"], w["python"]) for w in doc["wheels"]] == [
        (wheel.name, "accepted", "3.11"),
        (pure.name, "accepted", "3.11"),
    ]
    assert "all accepted" in comment.read_text()
    assert not store_dir.exists(), "check stores nothing"

    ingested = _run("ingest", str(listing), "--store", str(store_dir))
    assert ingested.exit_code == 0, ingested.output
    assert ingested.output.count("ingested") == 2
    store = Store.open(str(store_dir))
    record = store.get_record("upl", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    assert record.source == "ingested" and record.wheel is not None
    assert record.wheel.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()

    again = _run("ingest", str(listing), "--store", str(store_dir))
    assert again.exit_code == 0, again.output
    assert again.output.count("already in the store") == 2
    after = store.get_record("upl", "1.0", "3.11")
    assert after == record, "a second ingest changes nothing"

    # the same file name with other bytes: refused by check (with the store) and ingest
    other = good_wheel(tmp_path / "other", "upl", "1.0", S390X, module=b"OTHER = 1\n")
    shutil.copy(other, wheel)
    listing.write_text(_entry(wheel, base))
    for command in ("check", "ingest"):
        refused = _run(command, str(listing), "--store", str(store_dir))
        assert refused.exit_code == 1, refused.output
        assert "already recorded with different bytes" in refused.output
    assert store.get_record("upl", "1.0", "3.11") == record


def test_wrong_sha_or_bad_wheel_is_refused_and_nothing_stored(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    files, base = served
    wheel = good_wheel(files, "upl", "1.0", S390X)
    x86 = good_wheel(files, "upl-x86", "1.0", "cp311-cp311-manylinux_2_28_x86_64")
    listing = tmp_path / "w.toml"
    listing.write_text(_entry(wheel, base, sha="0" * 64) + _entry(x86, base, name="upl-x86"))
    store_dir = tmp_path / "store"
    verdict = tmp_path / "verdict.json"

    result = _run("ingest", str(listing), "--store", str(store_dir), "--json-out", str(verdict))
    assert result.exit_code == 1, result.output
    details = [w["detail"] for w in json.loads(verdict.read_text())["wheels"]]
    assert details[0].startswith("sha256 mismatch: the list says 0000000000000000…")
    assert "is not for s390x" in details[1]
    assert "nothing stored" in result.output
    assert not list(Store.open(str(store_dir)).records())

    # plain http without the test switch, and a missing file
    listing.write_text(_entry(wheel, base))
    strict = CliRunner().invoke(main, ["wheels", "check", str(listing)])
    assert strict.exit_code == 1 and "plain http refused" in strict.output
    wheel.unlink()
    gone = _run("check", str(listing))
    assert gone.exit_code == 1 and "HTTP 404" in gone.output
