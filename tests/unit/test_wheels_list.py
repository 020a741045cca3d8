"""The committed wheels list (wheels/*.toml): strict schema, FILE:LINE errors, exit 2;
the URL rules; the verdict comment (escaped: it comes from a pull request)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from refinery.cli import main
from refinery.gitops.wheels import (
    COMMENT_MARKER,
    FetchOptions,
    WheelListError,
    allowed_url,
    load_wheel_lists,
    parse_wheel_list,
    verdict_markdown,
)

SHA = "a" * 64
WHL = "okpkg-1.0-cp311-cp311-manylinux_2_28_s390x.whl"
GOOD = f"""\
# wheels the farm serves without building them
[[wheel]]
name = "okpkg"
version = "1.0"
url = "https://example.org/files/{WHL}"
sha256 = "{SHA}"
note = "the upstream's own s390x build"

[[wheel]]
name = "Other_Pkg"
version = "2.0"
release = {{ repo = "octo/other", tag = "v2.0", asset = "other_pkg-2.0-py3-none-any.whl" }}
sha256 = "{"B" * 64}"
python = "3.12"
"""


def test_a_good_list_parses() -> None:
    first, second = parse_wheel_list(GOOD.encode(), "wheels/extra.toml")
    assert (first.name, first.version, first.filename, first.line) == ("okpkg", "1.0", WHL, 2)
    assert first.note == "the upstream's own s390x build"
    assert (second.name, second.python, second.sha256, second.line) == (
        "other-pkg",
        "3.12",
        "b" * 64,
        9,
    )
    assert second.source_url("https://ghe.example") == (
        "https://ghe.example/octo/other/releases/download/v2.0/other_pkg-2.0-py3-none-any.whl"
    )


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (('note = "', 'nots = "'), 7, "unknown key 'nots' in [[wheel]] (did you mean 'note'?)"),
        (("[[wheel]]\nname", "[[wheels]]\nname"), 2, "unknown key 'wheels' at the top level"),
        ((f'sha256 = "{SHA}"', 'sha256 = "abc"'), 6, "sha256 must be 64 hex digits"),
        (('url = "https://', 'url = "http://'), 5, "https only"),
        (('url = "https://', 'url = "ftp://'), 5, "want an https:// URL"),
        (('version = "1.0"', 'version = "1.1"'), 4, "version '1.1' but the file is"),
        (('name = "okpkg"', 'name = "okpkgs"'), 3, "name 'okpkgs' but the file is"),
        (("asset = ", "assets = "), 12, "unknown key 'assets' in release (did you mean 'asset'?)"),
        (('repo = "octo/other"', 'repo = "octo"'), 12, "want OWNER/NAME"),
        (('python = "3.12"', 'python = "3"'), 14, "want 3.N"),
        ((f'sha256 = "{SHA}"\n', f'sha256 = "{SHA}"\nrelease = {{}}\n'), 5, "exactly one of"),
        (('url = "https://example.org/files/', 'url = "https://example.org/'), 5, None),
    ],
)
def test_bad_entries_name_file_and_line(
    change: tuple[str, str], line: int, words: str | None
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    if words is None:  # the URL still names the same wheel: fine
        parse_wheel_list(text.encode(), "w.toml")
        return
    with pytest.raises(WheelListError) as caught:
        parse_wheel_list(text.encode(), "w.toml")
    assert str(caught.value).startswith(f"w.toml:{line}: "), str(caught.value)
    assert words in str(caught.value)


def test_not_a_wheel_file_name_and_not_toml() -> None:
    text = GOOD.replace(WHL, "okpkg-1.0.tar.gz")
    with pytest.raises(WheelListError, match=r"^w.toml:5: 'okpkg-1.0.tar.gz' is not a wheel"):
        parse_wheel_list(text.encode(), "w.toml")
    with pytest.raises(WheelListError, match=r"^w.toml:3: not TOML"):
        parse_wheel_list(b"[[wheel]]\nname = 'x'\nversion = \n", "w.toml")


def test_the_same_wheel_twice_is_an_error() -> None:
    with pytest.raises(WheelListError, match=r"^b.toml:2: okpkg-1.0-.* listed already at a.toml:2"):
        load_wheel_lists([("a.toml", GOOD.encode()), ("b.toml", GOOD.encode())])


def test_cli_exits_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('note = "', 'notes = "'))
    result = CliRunner().invoke(main, ["wheels", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:7: unknown key 'notes'" in result.output


def test_urls_https_only_loopback_http_only_when_asked() -> None:
    strict, tests = FetchOptions(), FetchOptions(allow_loopback_http=True)
    assert allowed_url("https://example.org/x.whl", strict) is None
    assert allowed_url("http://127.0.0.1:8000/x.whl", strict) is not None
    assert allowed_url("http://127.0.0.1:8000/x.whl", tests) is None
    assert allowed_url("http://[::1]:8000/x.whl", tests) is None
    assert allowed_url("http://example.org/x.whl", tests) is not None
    assert allowed_url("file:///etc/passwd", tests) is not None


def test_verdict_comment_escapes_what_the_pr_wrote() -> None:
    doc = {
        "schema": 1,
        "ok": False,
        "wheels": [
            {
                "file": "wheels/a.toml",
                "line": 2,
                "filename": "x-1.0-py3-none-any.whl",
                "ok": False,
                "detail": "sha256 mismatch | <img src=x> [link](http://evil)",
            }
        ],
    }
    body = verdict_markdown(doc, run_url="https://github.com/o/r/actions/runs/1")
    assert body.startswith(COMMENT_MARKER) and "1 refused" in body
    assert "<img" not in body and "\\| &lt;img" in body
    assert "\\[link\\](http://evil)" in body  # shown, not a link
    with pytest.raises(Exception, match="not a wheel verdict"):
        verdict_markdown({"schema": 9, "wheels": []})
