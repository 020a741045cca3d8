"""Cost of emulation: build the C-extension fixture natively and under QEMU, same run.

    python bench/emulation.py [--repeat 3] [--json]

*native*: the host's own CPython (``python3.X`` on PATH) through the ``native`` backend
code path, producing a wheel for the host architecture. *emulated*: the ``rootfs``
backend (Debian s390x under qemu-user-static). Both run the full build step — fetch,
``python -m build --wheel``, auditwheel, twine check, clean-root smoke import — with a
warm pip cache (one unmeasured warm-up build each). Prints the median wall time of the
build phase and of the whole step, and the emulated/native ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.sdists import make_sdist  # noqa: E402

from refinery.builder.artifacts import sha256_file  # noqa: E402
from refinery.builder.native import KEEP_ENV, NativeRoot  # noqa: E402
from refinery.builder.options import AttemptSpec, BuildOptions  # noqa: E402
from refinery.builder.pipconf import HostPip  # noqa: E402
from refinery.builder.rootfs import RootfsRoot  # noqa: E402
from refinery.builder.rootfs_image import RootfsSpec  # noqa: E402
from refinery.builder.roots import BuildRoot  # noqa: E402
from refinery.builder.step import BuildOutcome, build_node  # noqa: E402
from refinery.core.cache import CacheRoot  # noqa: E402
from refinery.core.models import FileRef, NodeStatus, PlanNode  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "cext"
CACHE = CacheRoot.from_environment(os.environ, Path.home())
PIP = HostPip.read(os.environ, Path.home())


def node_for(sdist: Path, python: str) -> PlanNode:
    return PlanNode(
        "refinery-fixture-cext",
        "0.1.0",
        python,
        NodeStatus.PENDING,
        "bench",
        True,
        sdist=FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist)),
    )


def measure(
    root: BuildRoot, node: PlanNode, work: Path, repeat: int, installer: str
) -> list[BuildOutcome]:
    outcomes = []
    for i in range(repeat + 1):  # the first build warms the pip cache and is not counted
        outcome = build_node(
            node,
            root,
            options=BuildOptions(cache=CACHE, installer=installer, pip=PIP),  # type: ignore[arg-type]
            spec=AttemptSpec(workdir=work / f"{root.backend}-{i}"),
        )
        if outcome.status is not NodeStatus.BUILT:
            raise SystemExit(f"{root.backend} build failed: {outcome.reason} (log {outcome.log})")
        if i:
            outcomes.append(outcome)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--installer",
        choices=("auto", "uv", "pip"),
        default="auto",
        help="what fills pypa/build's isolated environment (auto: uv when available)",
    )
    args = parser.parse_args()

    python = "3.11"
    with tempfile.TemporaryDirectory(prefix="refinery-bench.") as tmp:
        work = Path(tmp)
        sdist = make_sdist(FIXTURE, work / "sdist")
        node = node_for(sdist, python)

        native = NativeRoot(env={k: os.environ[k] for k in KEEP_ENV if k in os.environ})
        if python not in native.pythons():
            raise SystemExit(f"bench needs python{python} on PATH for the native build")
        emulated = RootfsRoot(RootfsSpec(), CACHE.roots)
        emulated.prepare()

        results = {
            "native": measure(native, node, work, args.repeat, args.installer),
            "emulated": measure(emulated, node, work, args.repeat, args.installer),
        }

    summary: dict[str, object] = {
        "host": platform.machine(),
        "repeat": args.repeat,
        "installer": args.installer,
    }
    for name, outcomes in results.items():
        summary[name] = {
            "build_s": round(statistics.median(o.durations.build for o in outcomes), 2),
            "total_s": round(statistics.median(o.durations.total for o in outcomes), 2),
            "smoke_s": round(statistics.median(o.durations.smoke for o in outcomes), 2),
            "wheel": outcomes[0].wheel.name if outcomes[0].wheel else None,
        }
    native_s = summary["native"]
    emulated_s = summary["emulated"]
    assert isinstance(native_s, dict) and isinstance(emulated_s, dict)
    summary["ratio_build"] = round(emulated_s["build_s"] / native_s["build_s"], 2)
    summary["ratio_total"] = round(emulated_s["total_s"] / native_s["total_s"], 2)

    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"fixture C extension, CPython {python}, installer {args.installer}, "
        f"median of {args.repeat} (warm cache)"
    )
    print(f"{'':10} {'build':>9} {'smoke':>9} {'total':>9}  wheel")
    for name in ("native", "emulated"):
        row = summary[name]
        assert isinstance(row, dict)
        print(
            f"{name:10} {row['build_s']:8.2f}s {row['smoke_s']:8.2f}s {row['total_s']:8.2f}s"
            f"  {row['wheel']}"
        )
    print(
        f"emulated/native ratio: build {summary['ratio_build']}x, "
        f"whole step {summary['ratio_total']}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
