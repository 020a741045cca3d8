"""The environment of every build command is an allow-list (issue 14): credentials of
the host never reach a build in any backend, nor do those a careless fix passes; and a
command's output is bounded (a log keeps its head and tail; a flood is killed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from refinery.builder import container, native, proc
from refinery.builder.crosstools import CrossToolchain
from refinery.builder.options import RootOptions
from refinery.builder.rootfs import base_env
from refinery.builder.roots import Mounts
from refinery.core.cache import CacheRoot

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIALEAKED",
    "AWS_SECRET_ACCESS_KEY": "leaked",
    "AWS_SESSION_TOKEN": "leaked",
    "GITHUB_TOKEN": "ghs_leaked",
    "GH_TOKEN": "ghs_leaked",
    "ACTIONS_RUNTIME_TOKEN": "leaked",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "leaked",
    "TWINE_PASSWORD": "leaked",
    "NPM_TOKEN": "leaked",
    "CARGO_REGISTRY_TOKEN": "leaked",
    "PYPI_API_KEY": "leaked",
    "SSH_AUTH_SOCK": "/leaked.sock",
}
KEPT = {"PATH": "/usr/bin:/bin", "HOME": "/root", "PIP_INDEX_URL": "https://pypi.org/simple"}
#: A CI's other variables: no credential, but no build needs them; the backends'
#: allow-lists keep them out of a build (scrub() need not know them).
CI = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://leaked.invalid/",
    "ACTIONS_CACHE_URL": "https://leaked.invalid/",
    "RUNNER_TEMP": "/leaked",
    "GITHUB_REPOSITORY": "leaked/leaked",
}


@pytest.fixture(autouse=True)
def leaky_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**SECRETS, **CI}.items():
        monkeypatch.setenv(key, value)


def _leaks(env: dict[str, str] | None) -> list[str]:
    assert env is not None
    return sorted(k for k in env if k in SECRETS or k in CI or "leaked" in env[k])


def test_scrub_drops_credentials_and_keeps_build_settings() -> None:
    assert proc.scrub({**SECRETS, **KEPT}) == KEPT
    for name in ("SOURCE_DATE_EPOCH", "CFLAGS", "PIP_FIND_LINKS", "CROSS_SYSROOT", "MAKEFLAGS"):
        assert not proc.is_secret(name), name


def test_rootfs_and_cross_start_from_nothing_of_the_host() -> None:
    assert _leaks(base_env()) == []
    tc = CrossToolchain(dir=Path("/c/cross/s390x-py3.11-abc"), arch="s390x", python="3.11")
    assert _leaks(tc.env(home=Path("/s/home"), tmp=Path("/s/tmp"))) == []


def test_native_keeps_only_its_allow_list(tmp_path: Path) -> None:
    options = RootOptions.from_environment({**SECRETS, **KEPT}, cache=CacheRoot(tmp_path / "cache"))
    assert dict(options.host_env) == {"PATH": KEPT["PATH"], "HOME": "/root"}
    root = native.NativeRoot(machine="s390x", env=dict(options.host_env))
    mounts = Mounts(work=tmp_path, pip_cache=tmp_path, tools=tmp_path)
    with root.build_session(mounts) as session:
        command = session.command(["true"], env={}, cwd=None, timeout=None)
        assert _leaks(dict(command.env or {})) == []


def test_container_exec_passes_no_credential() -> None:
    argv = container.exec_argv(
        "podman", "n", ["true"], env={**SECRETS, "A": "1"}, cwd="/w", timeout=None
    )
    assert [a for a in argv if "leaked" in a or a.split("=")[0] in SECRETS] == []
    assert "A=1" in argv


def test_a_careless_fix_env_is_scrubbed_before_any_command(tmp_path: Path) -> None:
    env = {**SECRETS, **KEPT, "A": "1"}
    result = proc.run(["env"], env=env)
    names = {line.split("=", 1)[0] for line in result.tail}
    assert result.ok and "A" in names and not names & set(SECRETS)


def test_log_keeps_head_and_tail_of_a_long_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proc, "LOG_KEEP", 4000)
    log = tmp_path / "build.log"
    script = "for i in range(5000): print(f'line {i:05d}')"
    result = proc.run([sys.executable, "-c", script], log=log)
    text = log.read_text()
    assert result.ok and len(text) < 3 * 4000
    assert "line 00000" in text and "line 04999" in text and "line 02500" not in text
    assert "!! log cut:" in text and "head and tail are kept" in text


def test_a_flood_of_output_is_killed_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proc, "OUTPUT_LIMIT", 200_000)
    monkeypatch.setattr(proc, "LINE_LIMIT", 1000)
    monkeypatch.setattr(proc, "LOG_KEEP", 10_000)
    script = "import sys\nwhile True: sys.stdout.write('x' * 100000)"  # no newline, ever
    result = proc.run([sys.executable, "-c", script], log=tmp_path / "f.log", timeout=60)
    assert result.flooded and not result.ok and not result.timed_out
    assert result.exit_code == -9 and "a flood" in result.tail[-1]
    assert (tmp_path / "f.log").stat().st_size < 30_000


def test_rootfs_sees_the_shared_pip_cache_copy_on_write_without_sys_admin() -> None:
    from refinery.builder.rootfs import namespace_script

    binds = (
        (Path("/c/pip"), "/refinery/pip-cache", False),
        (Path("/c/tools"), "/refinery/tools", True),
    )
    cow = namespace_script(
        merged=Path("/s/m"),
        overlay=None,
        binds=binds,
        cwd="/",
        guarded={"/refinery/pip-cache": Path("/s/pc")},
    )
    assert "lowerdir=/c/pip,upperdir=/s/pc/upper,workdir=/s/pc/work" in cow
    assert "mount --bind /c/pip" not in cow and "--bounding-set -sys_admin" in cow
    ro = namespace_script(
        merged=Path("/s/m"),
        overlay=None,
        binds=binds,
        cwd="/",
        guarded={"/refinery/pip-cache": None},
    )
    assert "mount -o remount,bind,ro /s/m/refinery/pip-cache" in ro


def test_cross_build_sees_the_host_read_only_but_its_own_folders() -> None:
    from refinery.builder.cross import SharedGuard, sysroot_script

    guard = SharedGuard(
        writable=(Path("/w"), Path("/s")), cache=Path("/c/pip"), scratch=Path("/s/pc")
    )
    script = sysroot_script(
        mountpoint=Path("/x/sysroot"), overlay=None, copy=Path("/s/root"), cwd="/w", guard=guard
    )
    lines = script.splitlines()
    ro = next(i for i, line in enumerate(lines) if "remount,bind,ro" in line)
    rw = lines.index("mount -o remount,bind,rw /w")
    sysroot = lines.index("mount --bind /s/root /x/sysroot")
    cache = next(i for i, line in enumerate(lines) if "lowerdir=/c/pip" in line)
    drop = next(i for i, line in enumerate(lines) if "setpriv" in line)
    assert ro < rw < sysroot < cache < drop < lines.index('exec "$@"')
