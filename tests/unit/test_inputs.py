from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from refinery.core.errors import InputError
from refinery.plan.inputs import parse_files


def write(tmp_path: Path, text: str | bytes, name: str = "req.txt") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_pip_syntax_is_understood(tmp_path: Path) -> None:
    write(tmp_path, "idna==3.7\n", "sub/more.txt")
    write(tmp_path, "urllib3<3\n", "sub/cons.txt")
    path = write(
        tmp_path,
        "# a comment\n"
        "\n"
        "requests[socks]==2.32.3  # trailing comment\n"
        "numpy>=1.26,<2.2 ; python_version >= '3.10'\n"
        "six\n"
        "markupsafe \\\n"
        "    ==2.1.5\n"
        "pyyaml==6.0.2 --hash=sha256:abc123\n"
        "-r sub/more.txt\n"
        "--constraint sub/cons.txt\n",
    )
    reqs = parse_files([path], root=tmp_path)
    names = {e.name: e for e in reqs.requirements}
    assert set(names) == {"requests", "numpy", "six", "markupsafe", "pyyaml", "idna"}
    assert names["requests"].requirement.extras == {"socks"}
    assert names["markupsafe"].pin == "2.1.5"
    assert names["markupsafe"].line == 6
    assert names["idna"].path == "sub/more.txt"
    assert names["six"].pin is None
    assert str(names["numpy"].requirement.marker) == 'python_version >= "3.10"'
    assert [c.name for c in reqs.constraints] == ["urllib3"]
    assert reqs.files == ("req.txt", "sub/more.txt", "sub/cons.txt")
    assert len(reqs.digest) == 64


def test_different_pins_under_different_markers_are_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "numpy==1.26.4; python_version < '3.12'\nnumpy==2.1.3; python_version >= '3.12'\n",
    )
    assert len(parse_files([path], root=tmp_path).requirements) == 2


BAD = [
    ("requests==2.32.3\nfoo bar baz\n", 2, "malformed requirement"),
    ("requests==\n", 1, "malformed requirement"),
    ("requests~=1\n", 1, "malformed requirement"),
    ("numpy==2.1.3; python_version >>> '3.8'\n", 1, "malformed marker"),
    ("numpy==2.1.3; platform_machin == 's390x'\n", 1, "malformed marker"),
    ("numpy[==2\n", 1, "malformed requirement"),
    ("git+https://github.com/psf/requests.git\n", 1, "VCS"),
    ("https://example.org/pkg-1.0.tar.gz\n", 1, "URL"),
    ("requests @ https://example.org/requests.whl\n", 1, "direct references"),
    ("./local/pkg\n", 1, "local paths"),
    ("pkg-1.0-py3-none-any.whl\n", 1, "local paths"),
    ("-e .\n", 1, "editable"),
    ("--editable git+https://x/y.git\n", 1, "editable"),
    ("--index-url https://example.org/simple\n", 1, "the farm decides where packages come from"),
    ("-i https://example.org/simple\n", 1, "--index-url is not allowed"),
    ("--extra-index-url https://example.org/simple\n", 1, "--extra-index-url is not allowed"),
    ("--find-links /tmp/wheels\n", 1, "--find-links is not allowed"),
    ("-f /tmp/wheels\n", 1, "--find-links"),
    ("--no-index\n", 1, "farm decides"),
    ("--pre\n", 1, "unsupported option --pre"),
    ("requests==2.32.3 --global-option=x\n", 1, "not supported on a requirement line"),
    ("six==1.16.0\nsix==1.17.0\n", 2, "conflicting pins for six: ==1.17.0 here, ==1.16.0 at"),
    ("six==1.16.0\nsix<1.16\n", 2, "conflicting requirements for six"),
    ("-r missing.txt\n", 1, "included file not found: missing.txt"),
    ("-r\n", 1, "takes exactly one file name"),
    ("-r https://example.org/r.txt\n", 1, "must name a local file"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_input_names_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        parse_files([path], root=tmp_path)
    assert str(info.value).startswith(f"req.txt:{line}: "), str(info.value)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_undecodable_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"six==1.16.0\nna\xefve==1.0\n")
    with pytest.raises(InputError, match=r"^req.txt:2: not valid UTF-8"):
        parse_files([path], root=tmp_path)


def test_missing_top_level_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^nope.txt: file not found"):
        parse_files([tmp_path / "nope.txt"], root=tmp_path)


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path, "-r b.txt\n", "a.txt")
    write(tmp_path, "-r a.txt\n", "b.txt")
    with pytest.raises(InputError, match=r"^b.txt:1: include cycle: a.txt -> b.txt -> a.txt"):
        parse_files([tmp_path / "a.txt"], root=tmp_path)


def test_conflict_across_included_file(tmp_path: Path) -> None:
    write(tmp_path, "six==1.16.0\n", "base.txt")
    path = write(tmp_path, "-r base.txt\nsix==1.17.0\n")
    with pytest.raises(InputError, match=r"^req.txt:2: conflicting pins for six"):
        parse_files([path], root=tmp_path)


def test_constraint_conflicting_with_pin(tmp_path: Path) -> None:
    write(tmp_path, "six==1.17.0\n", "c.txt")
    path = write(tmp_path, "six==1.16.0\n-c c.txt\n")
    with pytest.raises(InputError, match=r"^c.txt:1: conflicting pins for six"):
        parse_files([path], root=tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("foo bar\n", "req.txt:1: malformed requirement"),
        ("--index-url https://x/simple\n", "req.txt:1: --index-url is not allowed"),
    ],
)
def test_cli_prints_one_line_and_exits_2(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "refinery", "plan", "req.txt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"refinery: error: {expected}")
    assert "Traceback" not in proc.stderr


def test_cli_github_annotation(tmp_path: Path) -> None:
    write(tmp_path, "six\n-e .\n")
    proc = subprocess.run(
        [sys.executable, "-m", "refinery", "plan", "req.txt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "GITHUB_ACTIONS": "true"},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("::error file=req.txt,line=2::editable installs")
