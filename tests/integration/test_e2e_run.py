"""`refinery run requirements/example.txt`: the README's first command, end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parents[2]
EM_S390 = 22


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    order = "big" if data[5] == 2 else "little"
    return int.from_bytes(data[18:20], order)


def test_run_example(tmp_path: Path) -> None:
    # a checkout of our own: the run writes docs/status/ and site/ beside mkdocs.yml
    repo = tmp_path / "repo"
    for part in ("requirements", "hints", "docs"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("status"))
    shutil.copy(ROOT / "mkdocs.yml", repo / "mkdocs.yml")
    store = tmp_path / "store"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinery",
            "--store",
            str(store),
            "--backend",
            "rootfs",
            "run",
            "requirements/example.txt",
            "--index-dir",
            str(tmp_path / "index"),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name, version in (("markupsafe", "2.1.5"), ("crcmod", "1.7")):
        record = json.loads((store / "records" / name / version / "3.11.json").read_text())
        assert record["status"] == "built"
        attempt = record["attempts"][-1]
        assert attempt["backend"] == "rootfs"
        assert attempt["exit"] == 0
        assert (store / attempt["log"]).is_file()
        wheel = record["wheel"]
        assert "manylinux" in wheel["filename"] and wheel["filename"].endswith("_s390x.whl")
        path = store / "wheels" / wheel["sha256"] / wheel["filename"]
        assert Path(f"{path}.metadata").is_file()
        with zipfile.ZipFile(path) as zf:
            sos = [n for n in zf.namelist() if n.endswith(".so")]
            assert sos, zf.namelist()
            assert all(elf_machine(zf.read(n)) == EM_S390 for n in sos)
    plans = list((store / "plans").glob("*.json"))
    assert len(plans) == 1
    inputs = json.loads((store / "inputs" / "requirements-example.txt.json").read_text())
    assert inputs["status"] == "queued"
    assert inputs["plan_id"] == plans[0].stem
    # the run ends with a pip index of the store: pip resolves our wheel from it
    page = (tmp_path / "index" / "simple" / "markupsafe" / "index.html").read_text()
    assert "markupsafe-2.1.5-cp311-cp311-manylinux" in page
    assert "data-core-metadata" in page
    dl = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_s390x",
            "--python-version",
            "3.11",
            "--index-url",
            (tmp_path / "index" / "simple").as_uri() + "/",
            "--no-cache-dir",
            "-d",
            str(tmp_path / "dl"),
            "crcmod==1.7",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert dl.returncode == 0, dl.stderr
    assert any(p.name.startswith("crcmod-1.7-") for p in (tmp_path / "dl").iterdir())
    # and with the status site: one page per package, its attempts and log
    site = repo / "site"
    assert (site / "index.html").is_file()
    pages = [p for p in site.rglob("*.html") if "markupsafe" in p.as_posix()]
    assert pages, "no package page for markupsafe"
