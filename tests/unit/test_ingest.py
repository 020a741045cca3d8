"""``refinery ingest``: what is accepted, what is refused (one line, exit 2, nothing stored).

``twine check`` runs as a subprocess: it is turned off here and run for real in
tests/integration/test_ingest_twine.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.wheels import core_metadata as meta
from fixtures.wheels import forged_wheel as forged
from fixtures.wheels import write_wheel

from refinery.cli import main
from refinery.core.models import NodeStatus
from refinery.store import Store
from refinery.store.ingest import RejectedWheel, check_wheel, ingest

S390X = "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x"


def good(tmp: Path, name: str = "okpkg", version: str = "1.0", tag: str = "py3-none-any") -> Path:
    """A correct wheel (RECORD hashes are urlsafe base64, as the spec says)."""
    return write_wheel(tmp, name, version, {f"{name.replace('-', '_')}/__init__.py": b""}, tag)


WHEEL = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def test_accepts_pure_and_s390x_wheels(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    first = good(tmp_path)
    results = ingest(store, [first, good(tmp_path, "cpkg", "2.0", S390X)], twine=False)
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


def test_python_comes_from_the_tag(tmp_path: Path) -> None:
    c = check_wheel(good(tmp_path, "x", "1", "cp312-cp312-manylinux_2_28_s390x"), twine=False)
    assert c.python == "3.12" and not c.pure
    c = check_wheel(
        good(tmp_path, "y", "1", "cp39-abi3-manylinux_2_28_s390x"), python="3.13", twine=False
    )
    assert c.python == "3.13"


def _cases(tmp: Path) -> list[tuple[Path, str]]:
    info = "bad-1.0.dist-info"
    base = {"bad/__init__.py": b"", f"{info}/METADATA": meta("bad", "1.0"), f"{info}/WHEEL": WHEEL}
    notzip = tmp / "bad-1.0-py3-none-any.whl"
    cases = [
        (tmp / "nothere-1.0-py3-none-any.whl", "no such file"),
        (good(tmp, "xpkg", "1.0", "cp311-cp311-manylinux_2_17_x86_64"), "not for s390x"),
        (good(tmp, "lpkg", "1.0", "cp311-cp311-linux_s390x"), "not portable"),
        (
            forged(
                tmp / "n",
                "bad-1.0-py3-none-any.whl",
                {**base, f"{info}/METADATA": meta("other", "1.0")},
            ),
            "METADATA says Name",
        ),
        (
            forged(
                tmp / "v",
                "bad-1.0-py3-none-any.whl",
                {**base, f"{info}/METADATA": meta("bad", "1.1")},
            ),
            "METADATA says Version",
        ),
        (
            forged(
                tmp / "h",
                "bad-1.0-py3-none-any.whl",
                base,
                record=f"bad/__init__.py,sha256=AAAA,0\n{info}/RECORD,,\n",
            ),
            "hash mismatch",
        ),
        (
            forged(tmp / "u", "bad-1.0-py3-none-any.whl", base, extra={"bad/evil.py": b"x"}),
            "not listed in RECORD",
        ),
        (
            forged(tmp / "a", "bad-1.0-py3-none-any.whl", base, extra={"/etc/passwd": b"x"}),
            "unsafe path",
        ),
        (
            forged(tmp / "d", "bad-1.0-py3-none-any.whl", base, extra={"bad/../../x": b"x"}),
            "unsafe path",
        ),
        (forged(tmp / "r", "bad-1.0-py3-none-any.whl", base, record=""), "not listed in RECORD"),
        (notzip, "not a readable zip"),
        (tmp / "notawheel.txt", "not a wheel file name"),
    ]
    notzip.write_bytes(b"this is not a zip")
    (tmp / "notawheel.txt").write_text("x")
    return cases


def test_rejections_are_one_line(tmp_path: Path) -> None:
    for sub in "nvhuadr":
        (tmp_path / sub).mkdir()
    for path, words in _cases(tmp_path):
        with pytest.raises(RejectedWheel) as info:
            check_wheel(path, twine=False)
        assert words in str(info.value), (path, str(info.value))
        assert "\n" not in str(info.value)


def test_cli_rejects_with_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    store_dir = tmp_path / "s"
    bad = good(tmp_path, "xpkg", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
    # the bad wheel first: it is refused before any twine check runs
    result = CliRunner().invoke(
        main, ["--store", str(store_dir), "ingest", str(bad), str(good(tmp_path))]
    )
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "not for s390x" in result.output
    assert not store_dir.exists() or list(Store.open(str(store_dir)).blobs.list("")) == []


def test_same_name_different_bytes_is_refused(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    first = good(tmp_path)
    ingest(store, [first], twine=False)
    other = tmp_path / "o"
    other.mkdir()
    changed = forged(
        other,
        first.name,
        {
            "okpkg/__init__.py": b"# different\n",
            "okpkg-1.0.dist-info/METADATA": meta("okpkg", "1.0"),
            "okpkg-1.0.dist-info/WHEEL": WHEEL,
        },
    )
    from refinery.core.errors import ConflictError

    with pytest.raises(ConflictError, match="different bytes"):
        ingest(store, [changed], twine=False)
