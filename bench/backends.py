"""Cross vs native vs emulated: real PyPI sdists built three ways in one run.

    python bench/backends.py [--packages markupsafe==2.1.5,ujson==5.10.0]
                             [--skip-emulated-over 900] [--no-emulated] [--no-gcc] [--json]

For every package of ``bench/backends.txt`` (or ``--packages``), from the same sdist:

* *native*: ``pip wheel --no-deps`` of the sdist with the host's CPython of the target
  version, a wheel for x86_64 (what a build on a fast runner costs);
* *cross-zig*: the ``cross`` backend through ``build_plan`` for the plan's default
  target ``manylinux_2_28_s390x``, older than the sysroot's glibc (bookworm: 2.36), so
  zig compiles (hints applied to the sysroot, auditwheel, the target promise, then the
  import under emulation);
* *cross-gcc*: the same for target ``manylinux_2_36_s390x``: Debian's cross gcc against
  the sysroot (``--no-gcc`` skips it);
* *emulated*: the ``rootfs`` backend through ``build_plan`` for ``manylinux_2_36_s390x``
  (the whole build under QEMU).
  An emulated build whose estimate (native times the known 8x factor) exceeds
  ``--skip-emulated-over`` seconds is skipped and says so.

Prints the wall seconds of the build phase (the product's ``Durations.build``, which
includes installing the build requirements; the native figure is the whole ``pip
wheel``), cross/native and emulated/native ratios, the wheel tag and the smoke import.
Nothing is asserted: timings depend on the machine; the ratios are measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from refinery.builder.artifacts import fetch_sdist  # noqa: E402
from refinery.builder.cross import CrossRoot  # noqa: E402
from refinery.builder.options import BuildOptions, RunOptions  # noqa: E402
from refinery.builder.pipconf import HostPip  # noqa: E402
from refinery.builder.rootfs import RootfsRoot  # noqa: E402
from refinery.builder.rootfs_image import RootfsSpec  # noqa: E402
from refinery.builder.roots import BuildRoot  # noqa: E402
from refinery.builder.runner import build_plan  # noqa: E402
from refinery.builder.step import BuildOutcome  # noqa: E402
from refinery.core.cache import CacheRoot  # noqa: E402
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target  # noqa: E402
from refinery.hints import load_catalog  # noqa: E402
from refinery.hints.advise import Advisor, RetrySettings  # noqa: E402
from refinery.hints.models import Remedy  # noqa: E402
from refinery.store import Store  # noqa: E402
from refinery.upstream.simple import DEFAULT_INDEX, IndexClient  # noqa: E402

CORPUS = ROOT / "bench" / "backends.txt"
CACHE = CacheRoot.from_environment(os.environ, Path.home())
PIP = HostPip.read(os.environ, Path.home())
PYTHON = "3.11"
ZIG_TARGET = "manylinux_2_28_s390x"  # older than bookworm's glibc: zig
GCC_TARGET = "manylinux_2_36_s390x"  # the sysroot's own glibc: Debian's cross gcc
EMULATION_FACTOR = 8.0  # bench/emulation.py: the build phase under QEMU vs x86_64
INDEX_URL = os.environ.get("REFINERY_INDEX_URL", DEFAULT_INDEX)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    system: str = ""
    constraints: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass
class Result:
    """One way of building one package."""

    seconds: float | None = None  # build phase wall time
    wheel: str = ""
    smoke: str = ""  # ok / failed / -
    status: str = ""
    attempts: int = 0
    note: str = ""
    log: str = ""


@dataclass
class Row:
    package: Package
    native: Result = field(default_factory=Result)
    zig: Result = field(default_factory=Result)  # cross backend, ZIG_TARGET
    cross: Result = field(default_factory=Result)  # cross backend, GCC_TARGET
    emulated: Result = field(default_factory=Result)


def parse_corpus(text: str) -> list[Package]:
    packages = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        name, _, version = line[0].partition("==")
        system = next((w for w in line[1:] if "=" not in w), "")
        constraints = tuple(w.split("=", 1)[1] for w in line[1:] if w.startswith("constraint="))
        packages.append(Package(name, version, system, constraints))
    return packages


def sdist_ref(package: Package) -> FileRef:
    """The sdist of ``package`` on the index (simple API), with its sha256."""
    project = IndexClient(INDEX_URL, cache_dir=CACHE.index).project(package.name)
    files = project.files_for(package.version) if project is not None else []
    for file in files:
        if file.kind == "sdist":
            return file.ref()
    raise SystemExit(f"{package.spec} has no sdist on {INDEX_URL}")


def host_python() -> str:
    if f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON:
        return sys.executable
    return f"python{PYTHON}"


def build_native(package: Package, sdist: Path, work: Path) -> Result:
    """``pip wheel --no-deps`` of the sdist on the host (x86_64), shared pip cache."""
    out = work / "native"
    env = {**os.environ, "PIP_CACHE_DIR": str(CACHE.pip), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if package.constraints:
        constraints = work / "native-constraints.txt"
        constraints.write_text("\n".join(package.constraints) + "\n")
        env["PIP_CONSTRAINT"] = str(constraints)
    argv = [host_python(), "-m", "pip", "wheel", "--no-deps", "--no-binary", package.name]
    argv += ["-w", str(out), str(sdist)]
    log = work / "native.log"
    started = time.monotonic()
    with log.open("w") as fh:
        done = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    seconds = time.monotonic() - started
    wheels = sorted(out.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        return Result(status="failed", note=f"pip wheel exit {done.returncode}", log=str(log))
    return Result(seconds, wheels[0].name, "-", "built", 1, log=str(log))


@dataclass(frozen=True)
class Way:
    """One column: a build root and the plan's target platform."""

    label: str
    root: BuildRoot
    platform: str = GCC_TARGET


def build_product(package: Package, ref: FileRef, way: Way, work: Path, timeout: float) -> Result:
    """``build_plan`` of the one node on ``way.root`` for ``way.platform`` with the hint
    catalog's advisor."""
    node = PlanNode(
        package.name, package.version, PYTHON, NodeStatus.PENDING, "bench", True, wave=0, sdist=ref
    )
    target = Target(PYTHON, way.platform)
    plan = Plan("bench-backends", (), (target,), (node,), ((node.key,),), {})
    store = Store.open(str(work / f"store-{way.label}"))
    outcomes: list[BuildOutcome] = []

    def on_event(event: object) -> None:
        outcome = getattr(event, "outcome", None)
        if outcome is not None:
            outcomes.append(outcome)

    advisor = Advisor(
        load_catalog(ROOT / "hints"), "apt", RetrySettings(max_attempts=3, backoff=0.0)
    )
    first_fix: Callable[[PlanNode], Remedy | None] = advisor.first_fix
    if package.constraints:
        fix = Remedy(constraints=package.constraints)
        first_fix = lambda _node: fix  # noqa: E731
    build = BuildOptions(cache=CACHE, pip=PIP, timeout=timeout)
    options = RunOptions(build=build, workdir=work / way.label, max_attempts=3)
    build_plan(
        plan, store, way.root, options, on_event=on_event, advise=advisor, first_fix=first_fix
    )
    if not outcomes:
        return Result(status="not built", note="no attempt ran")
    last = outcomes[-1]
    smoke = "-" if last.smoke is None else ("ok" if last.smoke.ok else "failed")
    return Result(
        seconds=last.durations.build,
        wheel=last.wheel.name if last.wheel else "",
        smoke=smoke,
        status=last.status.value,
        attempts=len(outcomes),
        note="" if last.status is NodeStatus.BUILT else last.reason,
        log=str(last.log),
    )


def tag(wheel: str) -> str:
    return wheel.removesuffix(".whl").rsplit("-", 1)[-1] if wheel else "-"


def ratio(a: Result, b: Result) -> str:
    if a.seconds is None or b.seconds is None or a.status != "built" or b.status != "built":
        return "-"
    return f"{a.seconds / b.seconds:.2f}x"


def secs(result: Result) -> str:
    if result.seconds is None or result.status != "built":
        return result.note[:18] or result.status or "-"
    return f"{result.seconds:.1f}"


WAYS = ("native", "zig", "cross", "emulated")


def render(rows: list[Row]) -> str:
    head = (
        f"{'package':22} {'build system':18} {'native':>8} {'cross-zig':>10} {'cross-gcc':>10} "
        f"{'emulated':>9} {'zig/nat':>8} {'gcc/nat':>8} {'emu/nat':>8}  "
        f"{'cross-zig tag':26} {'cross-gcc tag':24} smoke(zig/gcc/emu)"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        smoke = "/".join(r.smoke or "-" for r in (row.zig, row.cross, row.emulated))
        lines.append(
            f"{row.package.spec:22} {row.package.system:18} {secs(row.native):>8} "
            f"{secs(row.zig):>10} {secs(row.cross):>10} {secs(row.emulated):>9} "
            f"{ratio(row.zig, row.native):>8} {ratio(row.cross, row.native):>8} "
            f"{ratio(row.emulated, row.native):>8}  {tag(row.zig.wheel):26} "
            f"{tag(row.cross.wheel):24} {smoke}"
        )
    notes = [
        f"  {row.package.spec} {way}: {result.status} {result.note} ({result.log})"
        for row in rows
        for way in WAYS
        for result in (getattr(row, way),)
        if result.status not in ("built", "") or result.attempts > 1
    ]
    if notes:
        lines += ["", "notes (not built, skipped, or more than one attempt):", *notes]
    return "\n".join(lines)


def bench_one(package: Package, roots: dict[str, BuildRoot], args: argparse.Namespace) -> Row:
    row = Row(package)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{package.name}.", dir=args.workdir))
    ref = sdist_ref(package)
    sdist = fetch_sdist(ref.url, ref.sha256, work / "sdist")
    local = FileRef(ref.filename, sdist.as_uri(), ref.sha256)
    row.native = build_native(package, sdist, work)
    row.zig = build_product(
        package, local, Way("cross-zig", roots["cross"], ZIG_TARGET), work, args.timeout
    )
    if args.no_gcc:
        row.cross = Result(status="skipped", note="--no-gcc")
    else:
        row.cross = build_product(
            package, local, Way("cross-gcc", roots["cross"]), work, args.timeout
        )
    if "rootfs" not in roots:
        row.emulated = Result(status="skipped", note="--no-emulated")
        return row
    estimate = (row.native.seconds or 0.0) * EMULATION_FACTOR
    if estimate > args.skip_emulated_over:
        row.emulated = Result(status="skipped", note=f"estimated {estimate:.0f}s")
        return row
    row.emulated = build_product(
        package, local, Way("emulated", roots["rootfs"]), work, args.timeout
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--packages", help="comma-separated name==version (default: corpus)")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--skip-emulated-over", type=float, default=900.0, metavar="SECONDS")
    parser.add_argument("--no-emulated", action="store_true")
    parser.add_argument("--no-gcc", action="store_true", help="skip the cross-gcc column")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per attempt")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the builds here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    corpus = {p.spec: p for p in parse_corpus(args.corpus.read_text())}
    if args.packages:
        wanted = [s.strip() for s in args.packages.split(",") if s.strip()]
        packages = [corpus.get(s) or parse_corpus(s)[0] for s in wanted]
    else:
        packages = list(corpus.values())
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    rootfs = RootfsRoot(RootfsSpec(), CACHE.roots)
    roots: dict[str, BuildRoot] = {"cross": CrossRoot(rootfs, cache=CACHE.cross)}
    if not args.no_emulated:
        roots["rootfs"] = rootfs
    rows = []
    for package in packages:
        rows.append(bench_one(package, roots, args))
        print(f"[{len(rows)}/{len(packages)}] {package.spec} done", file=sys.stderr, flush=True)
    if args.json:
        data = [{"package": r.package.spec, **{w: vars(getattr(r, w)) for w in WAYS}} for r in rows]
        print(json.dumps(data, indent=2))
        return 0
    print(f"CPython {PYTHON}; build phase wall seconds; one run (no warm-up)")
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
