"""The planner against the real PyPI: decisions on ~20 real pins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parents[2]
S390X_WHEELS = {"pyyaml", "bitarray", "charset-normalizer", "cffi", "lxml"}
PURE = {"six", "requests", "attrs", "click", "packaging"}
SDIST_ONLY = {"markupsafe", "numpy", "crcmod", "psycopg2", "msgpack", "cryptography", "pillow"}
REQUESTS_DEPS = {"idna", "urllib3", "certifi", "charset-normalizer"}


def test_real_pins_are_decided(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinery",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--store",
            str(tmp_path / "store"),
            "plan",
            "requirements/mix-20.txt",
            "--python",
            "3.11",
            "--json",
            "-o",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    nodes = json.loads(out.read_text())["nodes"]
    requested = {n["name"]: n for n in nodes if n["requested"]}
    assert set(requested) == S390X_WHEELS | PURE | SDIST_ONLY
    for name in S390X_WHEELS:
        assert requested[name]["status"] == "reused", name
        assert "s390x" in requested[name]["wheel"], name
    for name in PURE:
        assert requested[name]["status"] == "reused", name
        assert requested[name]["wheel"].endswith("-none-any.whl"), name
    for name in SDIST_ONLY:
        assert requested[name]["status"] == "pending", name
        assert requested[name]["wave"] is not None
    transitive = {n["name"] for n in nodes if not n["requested"]}
    assert REQUESTS_DEPS - {"charset-normalizer"} <= transitive
    req = requested["requests"]
    assert {d.split("==")[0] for d in req["deps"]} == REQUESTS_DEPS
    # build dependencies of what we build are planned too (numpy needs meson-python)
    numpy = requested["numpy"]
    assert any(d.startswith("meson-python==") for d in numpy["build_deps"])
