from __future__ import annotations

import io
import tarfile
from pathlib import Path

from refinery.plan.resolver import parse_pylock, parse_uv_output
from refinery.upstream.sdist import LEGACY_BUILD_REQUIRES, build_requires_from_sdist
from refinery.upstream.simple import IndexClient, _classify, parse_project_html


class Tripwire(io.BytesIO):
    """A stream that fails once read past ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() > self.limit:
            raise AssertionError("read past the point where the answer was known")
        return super().read(size)


def sdist(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


PYPROJECT = b'[build-system]\nrequires = ["setuptools>=61", "cython<3"]\n'


def test_pyproject_is_found() -> None:
    data = sdist([("p-1/PKG-INFO", b"x"), ("p-1/pyproject.toml", PYPROJECT)])
    assert build_requires_from_sdist(io.BytesIO(data), "p-1.tar.gz") == (
        "setuptools>=61",
        "cython<3",
    )


def test_sorted_archive_without_pyproject_stops_early() -> None:
    big = bytes(range(256)) * 40_000  # ~10 MB, incompressible enough
    data = sdist(
        [
            ("p-1/LICENSE", b"l"),
            ("p-1/PKG-INFO", b"x"),
            ("p-1/setup.py", b"s"),
            ("p-1/src/big.bin", big),
        ]
    )
    stream = Tripwire(data, limit=len(data) // 2)
    assert build_requires_from_sdist(stream, "p-1.tar.gz") == LEGACY_BUILD_REQUIRES


def test_unsorted_archive_is_read_to_the_end() -> None:
    data = sdist(
        [
            ("p-1/setup.py", b"s"),
            ("p-1/PKG-INFO", b"x"),
            ("p-1/src/a.c", b"c"),
            ("p-1/pyproject.toml", PYPROJECT),
        ]
    )
    assert build_requires_from_sdist(io.BytesIO(data), "p-1.tar.gz")[0] == "setuptools>=61"


def test_classify() -> None:
    assert _classify("numpy-2.1.3-cp311-cp311-manylinux_2_17_s390x.whl", "numpy") == (
        "wheel",
        "2.1.3",
    )
    assert _classify("python-dateutil-2.8.2.tar.gz", "python-dateutil") == ("sdist", "2.8.2")
    assert _classify("MarkupSafe-2.1.5.tar.gz", "markupsafe") == ("sdist", "2.1.5")
    assert _classify("pkg-1.0.win32.exe", "pkg") is None
    assert _classify("other-1.0.tar.gz", "pkg") is None


def test_uv_outputs() -> None:
    res = parse_uv_output(
        "certifi==2024.8.30         # via requests\n"
        "requests==2.32.3           # via -r requirements.in\n"
        "urllib3==2.2.3             # via requests, botocore\n"
    )
    assert res.pins == {"certifi": "2024.8.30", "requests": "2.32.3", "urllib3": "2.2.3"}
    assert res.deps["requests"] == ("certifi", "urllib3")
    assert res.requested == frozenset({"requests"})
    files = parse_pylock(
        'lock-version = "1.0"\n[[packages]]\nname = "MarkupSafe"\nversion = "2.1.5"\n'
        'sdist = { url = "https://x/MarkupSafe-2.1.5.tar.gz", size = 3, '
        'hashes = { sha256 = "ab" } }\n'
    )
    assert files["markupsafe"].sdist is not None
    assert files["markupsafe"].sdist.filename == "MarkupSafe-2.1.5.tar.gz"
    assert files["markupsafe"].wheels == ()


def test_metadata_pep658_and_fallback(tmp_path: Path, fixture_index: str) -> None:
    client = IndexClient(fixture_index, cache_dir=tmp_path)
    project = client.project("withdeps")
    assert project is not None
    wheel = next(f for f in project.files if f.kind == "wheel")
    assert wheel.metadata  # the index offers PEP 658 metadata for it
    fields = client.metadata(wheel)
    assert fields["name"] == ["withdeps"]
    assert 'hostonly; platform_machine == "x86_64"' in fields["requires-dist"]
    legacy = client.project("legacy")
    assert legacy is not None
    sdist = next(f for f in legacy.files if f.kind == "sdist")
    assert not sdist.metadata  # no PEP 658 file: read PKG-INFO from the sdist itself
    assert client.metadata(sdist)["version"] == ["0.5"]
    # cached by file hash: a second client with the index gone still answers
    offline = IndexClient("http://127.0.0.1:9/simple/", cache_dir=tmp_path)
    assert offline.metadata(wheel)["name"] == ["withdeps"]


def test_unknown_project_is_none(tmp_path: Path, fixture_index: str) -> None:
    assert IndexClient(fixture_index, cache_dir=tmp_path).project("no-such-thing") is None


def test_html_fallback() -> None:
    page = (
        '<a href="../../files/x-1.0.tar.gz#sha256=ab" data-requires-python="&gt;=3.8">'
        "x-1.0.tar.gz</a>"
    )
    project = parse_project_html("x", "http://h/simple/x/", page)
    (f,) = project.files
    assert f.url == "http://h/files/x-1.0.tar.gz"
    assert f.sha256 == "ab"
    assert f.requires_python == ">=3.8"
