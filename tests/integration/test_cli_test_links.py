"""``refinery test --find-links DIR``: a test requirement PyPI has no wheel of for the
target (pyproj's suite wants numpy) comes from a folder of the farm's own wheels. Two
pure wheels of our own, made here: one ships a test that imports the other, which
exists only in that folder; without the option the requirement cannot be installed and
the run says so. Needs the emulated root (the tests run in its clean session) and PyPI
(pytest for the target)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from refinery.builder.rootfs import RootfsRoot
from refinery.cli import main

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"
[project]
name = "{name}"
version = "0.1.0"
[tool.setuptools]
packages = {packages}
"""


def pure_wheel(tmp: Path, name: str, files: dict[str, str]) -> Path:
    project = tmp / name
    packages = sorted({str(Path(f).parent).replace("/", ".") for f in files})
    (project).mkdir()
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(name=name, packages=str(packages).replace("'", '"'))
    )
    for rel, text in files.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    out = tmp / f"dist-{name}"
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(project)]
    subprocess.run(argv, check=True)
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.mark.network
def test_test_requirements_come_from_find_links(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    links = pure_wheel(tmp_path, "refinery-fixture-linked", {"linked/__init__.py": "VALUE = 42\n"})
    wheel = pure_wheel(
        tmp_path,
        "refinery-fixture-user",
        {
            "user/__init__.py": "",
            "user/tests/__init__.py": "",
            "user/tests/test_linked.py": "import linked\n\n"
            "def test_value():\n    assert linked.VALUE == 42\n",
        },
    )
    args = ["test", "--wheel", str(wheel), "--hints", str(tmp_path / "no-hints")]
    args += ["--command", "pytest --pyargs user.tests -q"]
    args += ["--requires", "pytest", "--requires", "refinery-fixture-linked"]
    without = CliRunner().invoke(main, [*args, "--workdir", str(tmp_path / "w1")])
    assert without.exit_code == 1, without.output
    assert "installing the wheel and the test requirements failed" in without.output
    given = [*args, "--workdir", str(tmp_path / "w2"), "--find-links", str(links.parent)]
    result = CliRunner().invoke(main, given)
    assert result.exit_code == 0, result.output
    assert "1 passed" in result.output
