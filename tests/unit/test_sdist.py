from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from refinery.upstream import sdist

PYPROJECT = b'[build-system]\nrequires = ["x"]\n'


def archive(members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=fmt) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def chunks(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


LONG = "p-1/" + "d" * 120 + "/file.txt"


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_member_names_in_every_tar_format(fmt: int) -> None:
    names = ["p-1/PKG-INFO", "p-1/" + "s" * 90 + "/" + "t" * 60 + ".c"]
    if fmt != tarfile.USTAR_FORMAT:
        names.append(LONG)  # too long for ustar: PAX path record / GNU long name
    data = archive([(n, n.encode()) for n in names], fmt)
    seen = [(name, member.read()) for name, _k, _s, member in sdist.members(chunks(data))]
    assert seen == [(n, n.encode()) for n in names]


def test_unread_member_data_is_skipped() -> None:
    data = archive([("p-1/a", b"A" * 5000), ("p-1/pyproject.toml", PYPROJECT)])
    assert sdist.top_level_file(chunks(data)) == PYPROJECT


def test_concatenated_gzip_members() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, body in (("p-1/PKG-INFO", b"x"), ("p-1/pyproject.toml", PYPROJECT)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    tar = raw.getvalue()
    data = gzip.compress(tar[:1024]) + gzip.compress(tar[1024:])
    assert sdist.top_level_file(chunks(data, 97)) == PYPROJECT


def test_plain_zlib_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    data = archive(
        [("p-1/PKG-INFO", b"x"), ("p-1/src/a.c", b"c" * 3000), ("p-1/pyproject.toml", PYPROJECT)]
    )
    fast = sdist.top_level_file(chunks(data))
    monkeypatch.setattr(sdist, "_isal", None)
    assert sdist.top_level_file(chunks(data)) == fast == PYPROJECT


def test_truncated_stream_is_an_error_or_nothing() -> None:
    data = archive([("p-1/PKG-INFO", b"x" * 3000), ("p-1/pyproject.toml", PYPROJECT)])
    assert sdist.top_level_file(chunks(data[: len(data) // 3])) is None
