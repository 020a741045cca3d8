"""What a build may reach and fill (issue 14), the pure parts: the network record and
failure reason, the catalog's ``network`` field, the offline namespace's command line,
the build requirements fetched before an isolated build, the disk watchdog's verdicts,
zig's copy-on-write cache in the cross guard, the crates a cross build fetches first,
and the ``[build]`` limits of refinery.toml."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from refinery.builder import isolation
from refinery.builder.container import disconnect
from refinery.builder.cross import SharedGuard
from refinery.builder.crossrust import cargo_manifests
from refinery.builder.crosstools import REQUIRES_MARK
from refinery.builder.isolation import DiskLimits, DiskWatch
from refinery.builder.prefetch import Prefetch, PrefetchFailed, offline_env
from refinery.builder.proc import ProcResult
from refinery.builder.rootfs import unshare_argv
from refinery.core.config import ConfigError, Limits, parse_config
from refinery.hints import load_catalog
from refinery.hints.loader import CatalogError
from refinery.hints.models import Hint, HintFix, Remedy, fix_lines


# --- network ---------------------------------------------------------------------------
def test_network_mode_says_how_the_build_ran() -> None:
    mode = isolation.network_mode
    assert mode(isolate=True, allowed="", backend="cross", capable=True) == "isolated"
    allowed = mode(isolate=True, allowed="it downloads", backend="cross", capable=True)
    assert allowed == "allowed: it downloads"
    off = mode(isolate=False, allowed="", backend="cross", capable=True)
    assert off.startswith("not isolated: network isolation is turned off")
    native = mode(isolate=True, allowed="", backend="native", capable=False)
    assert native == "not isolated: the native backend cannot take a build's network"


@pytest.mark.parametrize(
    "line",
    [
        "curl: (6) Could not resolve host: github.com",
        "socket.gaierror: [Errno -3] Temporary failure in name resolution",
        "OSError: [Errno 101] Network is unreachable",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        "error: failed to lookup address information: Name or service not known",
        "urllib3: Failed to establish a new connection: [Errno -2] Name or service not known",
    ],
)
def test_network_failures_are_recognised(line: str) -> None:
    assert isolation.network_failure(["running build_ext", line, "error: x"]) == line
    reason = isolation.network_reason(line)
    assert reason.startswith(f"the build tried to reach the network: {line} (network isolation")
    assert 'network: {allow: true, reason: "..."}' in reason


def test_compiler_errors_are_no_network_failure() -> None:
    lines = ["fatal error: zlib.h: No such file or directory", "error: command 'gcc' failed"]
    assert isolation.network_failure(lines) is None


def test_offline_commands_get_a_network_namespace_with_loopback() -> None:
    online = unshare_argv('exec "$@"', ["true"])
    offline = unshare_argv('exec "$@"', ["true"], offline=True)
    assert "--net" not in online and "--net" in offline
    script = offline[offline.index("-c") + 1]
    assert script.startswith(isolation.LOOPBACK_UP + "\n")
    assert offline[-1] == "true"


CATALOG = """\
hints:
  - id: downloads
    match: ['the build tried to reach the network: ']
    fix:
      network: {allow: true, reason: 'fetches its data at build time'}
packages:
  - package: needs-net
    fix:
      network: {allow: true, reason: 'downloads libfoo'}
"""


def test_catalog_network_field_allows_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(CATALOG)
    catalog = load_catalog(tmp_path)
    (hint,) = catalog.hints
    assert hint.fix.network == "fetches its data at build time"
    assert fix_lines(hint.fix) == ("network: allowed (fetches its data at build time)",)
    (entry,) = catalog.packages
    assert entry.fix is not None and entry.fix.network == "downloads libfoo"
    remedy = Remedy().plus(hint, "apt")
    assert remedy.network == "fetches its data at build time"
    assert remedy.recipes == ("network: allowed (fetches its data at build time)",)
    assert not remedy.adds_to(hint, "apt")  # allowed already: no retry for it again
    assert Remedy().adds_to(Hint("h", (), HintFix(network="x")), "apt")


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ("{allow: false, reason: x}", "network.allow must be true"),
        ("{allow: true}", "network needs a reason"),
        ("{allow: true, reason: x, why: y}", "unknown key 'why' in network of"),
        ("yes", "network of hint 'h' must be a mapping"),
    ],
)
def test_catalog_network_field_is_strict(tmp_path: Path, network: str, message: str) -> None:
    text = (
        f"hints:\n  - id: h\n    match: [x]\n    fix:\n      apt: [a]\n      network: {network}\n"
    )
    (tmp_path / "x.yaml").write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    assert message in str(info.value), str(info.value)
    assert "x.yaml:6" in str(info.value)


# --- disk ------------------------------------------------------------------------------
def test_disk_watch_stops_over_the_quota(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big").write_bytes(b"x" * (3 << 20))
    watch = DiskWatch(DiskLimits(quota=1 << 20, min_free=0, interval=0.01), [tmp_path / "none"])
    assert watch.check() is None  # the folder it watches is still empty
    watch.add(tmp_path / "a")
    reason = watch.measure()
    assert reason.startswith("disk quota exceeded: the build's folders hold 3.0 MiB, over")
    assert "quota of 1.0 MiB" in reason


def test_disk_watch_keeps_free_space(tmp_path: Path) -> None:
    huge = 1 << 60  # more than any disk has free
    watch = DiskWatch(DiskLimits(quota=0, min_free=huge, interval=1.0), [tmp_path])
    assert watch.check() is not None
    assert watch.reason.startswith("disk quota exceeded: ") and "left free" in watch.reason
    assert watch.check() == watch.reason  # once tripped, it stays so
    fine = DiskWatch(DiskLimits(quota=1 << 30, min_free=1, interval=1.0), [tmp_path])
    assert fine.check() is None


def test_empty_folder_keeps_the_log(tmp_path: Path) -> None:
    (tmp_path / "src" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "deep" / "f").write_text("x")
    (tmp_path / "file").write_text("x")
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "build.log"
    log.write_text("kept")
    isolation.empty_folder(tmp_path, keep=log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"] and log.read_text() == "kept"


def test_disk_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        DiskLimits(quota=-1)


# --- zig's cache, crates ---------------------------------------------------------------
def test_zig_cache_is_copy_on_write_in_a_cross_build(tmp_path: Path) -> None:
    cache, zig, layer = tmp_path / "pip", tmp_path / "zig-cache", tmp_path / "s" / "zig-cache"
    guard = SharedGuard(
        writable=(tmp_path / "work",), cache=cache, scratch=None, cow=((zig, layer),)
    )
    after = "\n".join(guard.after())
    assert f"lowerdir={zig},upperdir={layer}/upper,workdir={layer}/work" in after
    assert str(zig) not in "\n".join(guard.before())  # not among the writable folders


def test_cargo_manifests_prefer_locked_projects(tmp_path: Path) -> None:
    for rel in ("Cargo.toml", "Cargo.lock", "crates/a/Cargo.toml", "vendor/x/Cargo.toml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert cargo_manifests(tmp_path) == (tmp_path / "Cargo.toml",)
    (tmp_path / "Cargo.lock").unlink()
    assert cargo_manifests(tmp_path) == (tmp_path / "Cargo.toml",)  # the shallowest
    (tmp_path / "Cargo.toml").unlink()
    assert cargo_manifests(tmp_path) == (tmp_path / "crates/a/Cargo.toml",)


def test_cargo_manifests_skip_the_crates_an_sdist_vendors(tmp_path: Path) -> None:
    """orjson 3.13 keeps its crates in include/cargo (a cargo directory source, each crate
    with its .cargo-checksum.json, some with their own Cargo.lock)."""
    files = ("Cargo.toml", "Cargo.lock", "include/cargo/assoc-3.0.1/Cargo.toml")
    files += (
        "include/cargo/assoc-3.0.1/Cargo.lock",
        "include/cargo/assoc-3.0.1/.cargo-checksum.json",
    )
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert cargo_manifests(tmp_path) == (tmp_path / "Cargo.toml",)


# --- refinery.toml -----------------------------------------------------------------------
def test_build_limits_in_refinery_toml() -> None:
    assert parse_config({}).limits == Limits()
    doc = {"build": {"network-isolation": False, "disk-quota-gib": 5, "disk-min-free-gib": 0}}
    assert parse_config(doc).limits == Limits(False, 5.0, 0.0)
    with pytest.raises(ConfigError, match="network-isolation must be true or false"):
        parse_config({"build": {"network-isolation": "no"}})
    with pytest.raises(ConfigError, match="disk-quota-gib must be a number"):
        parse_config({"build": {"disk-quota-gib": -1}})
    with pytest.raises(ConfigError, match="did you mean 'disk-quota-gib'"):
        parse_config({"build": {"disk-quota-gb": 1}})


# --- build requirements fetched first --------------------------------------------------
def test_prefetch_fetches_static_then_dynamic_requirements(tmp_path: Path) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []
    asked = {"static": ["setuptools>=61"], "wheel": ["wheel"]}

    def run(argv: Sequence[str], env: Mapping[str, str]) -> ProcResult:
        calls.append((list(argv), dict(env)))
        tail: tuple[str, ...] = ()
        if argv[1] == "-c":
            tail = (f"{REQUIRES_MARK}{json.dumps(asked[argv[5]])}",)
        return ProcResult(tuple(argv), 0, 0.0, False, tail)

    fetch = Prefetch("/py", "/tools", "/src", ("a=b",), tmp_path, lambda p: f"/in{p}", run)
    wheels = fetch.fetch({"PIP_INDEX_URL": "https://pypi/simple"})
    assert wheels == tmp_path / "requires-wheels" and wheels.is_dir()
    assert not (tmp_path / "requires-static").exists()
    steps = [argv[3] if argv[1] == "-m" else f"ask {argv[5]}" for argv, _env in calls]
    assert steps == ["ask static", "wheel", "install", "ask wheel", "wheel"]
    assert calls[0][0][-1] == '{"a": "b"}'
    assert calls[1][0][-1] == "setuptools>=61" and calls[1][1]["PIP_BREAK_SYSTEM_PACKAGES"] == "1"
    assert calls[3][1]["PYTHONPATH"] == f"/in{tmp_path}/requires-static"
    assert calls[4][0][-1] == "wheel"


def test_prefetch_failure_names_the_step(tmp_path: Path) -> None:
    def run(argv: Sequence[str], env: Mapping[str, str]) -> ProcResult:
        return ProcResult(tuple(argv), 1, 0.0, False, ("Traceback",))

    fetch = Prefetch("/py", "/tools", "/src", (), tmp_path, str, run)
    with pytest.raises(PrefetchFailed, match="asking the build backend for its static"):
        fetch.fetch({})


def test_offline_env_installs_from_the_fetched_wheels_only() -> None:
    pip = offline_env({"PIP_FIND_LINKS": "/seed /waves"}, "/w/requires-wheels")
    assert pip == {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/w/requires-wheels /seed /waves"}
    uv = offline_env({"UV_CACHE_DIR": "/c/uv", "UV_FIND_LINKS": "/seed"}, "/w/r")
    assert uv["UV_OFFLINE"] == "1" and uv["UV_FIND_LINKS"] == "/w/r,/seed"


def test_container_is_disconnected_from_every_network() -> None:
    calls: list[list[str]] = []

    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        out = "podman other " if argv[1] == "inspect" else ""
        refused = argv[1:3] == ["network", "disconnect"] and argv[3] == "other"
        return subprocess.CompletedProcess(argv, 1 if refused else 0, out, "no such network")

    why = disconnect(runner, "podman", "refinery-build-1")
    assert calls[1] == ["podman", "network", "disconnect", "podman", "refinery-build-1"]
    assert why == "podman could not disconnect other: no such network"
