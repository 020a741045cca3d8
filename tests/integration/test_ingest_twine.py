"""``refinery ingest`` with its real ``twine check`` subprocess (the rest of ingest's
rules are unit-tested in tests/unit/test_ingest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.wheels import core_metadata, forged_wheel, write_wheel

from refinery.cli import main
from refinery.core.models import NodeStatus
from refinery.store import Store
from refinery.store.ingest import RejectedWheel, check_wheel, ingest

S390X = "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x"
WHEEL = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def good(tmp: Path, name: str = "okpkg", version: str = "1.0", tag: str = "py3-none-any") -> Path:
    return write_wheel(tmp, name, version, {f"{name.replace('-', '_')}/__init__.py": b""}, tag)


def test_accepts_pure_and_s390x_wheels(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    first = good(tmp_path)
    results = ingest(store, [first, good(tmp_path, "cpkg", "2.0", S390X)])
    assert [(r.name, r.python, r.stored) for r in results] == [
        ("okpkg", "3.11", True),
        ("cpkg", "3.11", True),
    ]
    record = store.get_record("cpkg", "2.0", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    assert record.source == "ingested" and record.events[-1].kind == "ingested"
    assert store.get_summary("cpkg") is not None
    again = ingest(store, [first], twine=False)
    assert again[0].stored is False


def test_twine_check_failure_is_a_rejection(tmp_path: Path) -> None:
    info = "rst-1.0.dist-info"
    body = core_metadata("rst", "1.0", "Description-Content-Type: text/x-rst\n")
    body += b"\n====\nbad `rst\n=\n"
    wheel = forged_wheel(
        tmp_path,
        "rst-1.0-py3-none-any.whl",
        {"rst/__init__.py": b"", f"{info}/METADATA": body, f"{info}/WHEEL": WHEEL},
    )
    with pytest.raises(RejectedWheel, match="twine check failed"):
        check_wheel(wheel)


def test_cli_rejects_with_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    store_dir = tmp_path / "s"
    bad = good(tmp_path, "xpkg", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
    result = CliRunner().invoke(
        main, ["--store", str(store_dir), "ingest", str(good(tmp_path)), str(bad)]
    )
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "not for s390x" in result.output
    assert not store_dir.exists() or list(Store.open(str(store_dir)).blobs.list("")) == []
    ok = CliRunner().invoke(main, ["--store", str(store_dir), "ingest", str(good(tmp_path))])
    assert ok.exit_code == 0, ok.output
    assert "ingested as okpkg==1.0@3.11" in ok.output
