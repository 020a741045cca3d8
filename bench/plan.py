"""Planner speed against uv's resolver, measured in the same run.

    python bench/plan.py [REQUIREMENTS] [--warm-runs N]

Cold: every cache empty (ours and uv's, fresh folders). Warm: the same command again
with the caches the cold run left. Baseline: ``uv pip compile --python-platform
s390x-manylinux_2_28`` on the same file, cold and warm the same way. Prints both times
and the ratios (targets: cold <= 1.5x uv, warm <= 0.5x uv). Needs PyPI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="?", default=str(HERE / "requirements-300.txt"))
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()
    pins = sum(
        1
        for line in Path(args.requirements).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        t = Path(tmp)
        ours_env = {**os.environ, "UV_CACHE_DIR": str(t / "ours-uv")}
        uv_env = {**os.environ, "UV_CACHE_DIR": str(t / "uv")}
        ours = [
            sys.executable,
            "-m",
            "refinery",
            "--cache-dir",
            str(t / "ours"),
            "--store",
            str(t / "store"),
            "plan",
            args.requirements,
            "--json",
            "-o",
            str(t / "plan.json"),
        ]
        from uv import find_uv_bin

        uv = [
            str(find_uv_bin()),
            "pip",
            "compile",
            args.requirements,
            "--no-config",
            "--python-platform",
            "s390x-manylinux_2_28",
            "--python-version",
            "3.11",
            "--quiet",
            "-o",
            str(t / "uv.txt"),
        ]
        uv_cold = timed(uv, uv_env)
        ours_cold = timed(ours, ours_env)
        uv_warm = statistics.median(timed(uv, uv_env) for _ in range(args.warm_runs))
        ours_warm = statistics.median(timed(ours, ours_env) for _ in range(args.warm_runs))
    print(f"plan benchmark: {pins} pins from {args.requirements}")
    for label, ours_s, uv_s in (("cold", ours_cold, uv_cold), ("warm", ours_warm, uv_warm)):
        print(f"  {label}: refinery {ours_s:6.2f} s  uv {uv_s:6.2f} s  ratio {ours_s / uv_s:.2f}x")
    print("  targets: cold <= 1.50x, warm <= 0.50x")


if __name__ == "__main__":
    main()
