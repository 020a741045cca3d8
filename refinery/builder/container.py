"""The ``container`` backend: docker or podman running a manylinux s390x image.

On x86 hosts the engine runs the image under QEMU via binfmt_misc (in GitHub Actions:
``docker/setup-qemu-action``). The image is pinned: set ``REFINERY_CONTAINER_IMAGE`` to
``quay.io/pypa/manylinux_2_28_s390x@sha256:<digest>`` (find the digest with
``skopeo inspect docker://quay.io/pypa/manylinux_2_28_s390x:<tag>`` or, after a pull,
``docker image inspect --format '{{index .RepoDigests 0}}' <image>``); the CLI reads it
(and ``REFINERY_CONTAINER_ENGINE``) into :class:`~refinery.builder.options.RootOptions`.
Records always carry the resolved digest, whatever reference was configured.

A session is one long-running container (``sleep infinity``) with the work, pip cache,
tools and wheels directories bind-mounted; each command is a ``docker exec`` wrapped in
``timeout -k`` inside, because killing the exec client would leave the build running;
the container is removed when the session ends.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refinery.builder.errors import BuildRootUnavailable, MissingPython
from refinery.builder.proc import OnLine, run
from refinery.builder.roots import (
    INSIDE_BASE,
    BoundSession,
    Command,
    Mounts,
    Runner,
    ShellSession,
    quoted,
)

IMAGE_REPOSITORY = "quay.io/pypa/manylinux_2_28_s390x"
# The newest tag cibuildwheel had pinned when this was written; a digest pin is better:
# set REFINERY_CONTAINER_IMAGE=quay.io/pypa/manylinux_2_28_s390x@sha256:… (see above).
IMAGE_TAG = "2024-05-10-7415d48"
IMAGE_ENV = "REFINERY_CONTAINER_IMAGE"
ENGINE_ENV = "REFINERY_CONTAINER_ENGINE"
ENGINES = ("docker", "podman")
PLATFORM = "linux/s390x"
CA_INSIDE = f"{INSIDE_BASE}/ca/ca-certificates.crt"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PODMAN_ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
# Pythons in /opt/python of manylinux_2_28 images (CPython, non-free-threaded).
MANYLINUX_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")

DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"

which = shutil.which


def run_quiet(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", str(exc))


def default_image(environ: Mapping[str, str]) -> str:
    """The configured image reference (``REFINERY_CONTAINER_IMAGE`` of ``environ``)."""
    return environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def forced_engine(environ: Mapping[str, str]) -> str | None:
    """The one engine to try (``REFINERY_CONTAINER_ENGINE`` of ``environ``), if set."""
    return environ.get(ENGINE_ENV) or None


def is_digest_pinned(image: str) -> bool:
    return "@sha256:" in image


def detect_engine(
    *,
    candidates: Sequence[str] = ENGINES,
    which: Callable[[str], str | None] = which,
    runner: Runner = run_quiet,
) -> str | None:
    """The first of ``candidates`` that is installed *and* answers ``info``."""
    for engine in candidates:
        if which(engine) is None:
            continue
        if runner([engine, "info", "--format", "{{json .}}"]).returncode == 0:
            return engine
    return None


_OPT_PYTHON = re.compile(r"^cp(\d)(\d+)-cp\d+$")


def parse_opt_python(listing: str) -> tuple[str, ...]:
    """CPython versions from ``ls /opt/python`` of a manylinux image (no free-threaded)."""
    found = []
    for entry in listing.split():
        match = _OPT_PYTHON.match(entry)
        if match:
            found.append(f"{match.group(1)}.{match.group(2)}")
    return tuple(sorted(found, key=lambda v: tuple(int(x) for x in v.split("."))))


def python_path(version: str) -> str:
    tag = "cp" + version.replace(".", "")
    return f"/opt/python/{tag}-{tag}/bin/python"


def run_argv(
    engine: str, image: str, name: str, mounts: Mounts, *, ca_bundle: Path | None
) -> list[str]:
    """``ENGINE run`` starting a session container that waits for ``exec`` s."""
    argv = [engine, "run", "--detach", "--rm", "--name", name, "--platform", PLATFORM]
    if engine == "podman":
        argv += list(PODMAN_ULIMITS)
    for src, dst, read_only in mounts.pairs(INSIDE_BASE):
        argv += ["--volume", f"{src}:{dst}{':ro' if read_only else ''}"]
    if ca_bundle is not None:
        argv += ["--volume", f"{ca_bundle}:{CA_INSIDE}:ro"]
    argv += ["--workdir", f"{INSIDE_BASE}/work", image, "sleep", "infinity"]
    return argv


def exec_argv(
    engine: str,
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    timeout: float | None,
) -> list[str]:
    """``ENGINE exec`` of one command, killed inside the container on timeout."""
    out = [engine, "exec", "--workdir", cwd]
    for key, value in sorted(env.items()):
        out += ["--env", f"{key}={value}"]
    out.append(name)
    if timeout is not None:
        out += ["timeout", "--kill-after=10", f"{int(timeout)}"]
    out += list(argv)
    return out


def rm_argv(engine: str, name: str) -> list[str]:
    return [engine, "rm", "--force", name]


def inspect_digest_argv(engine: str, image: str) -> list[str]:
    return [engine, "image", "inspect", "--format", "{{index .RepoDigests 0}}", image]


def pull_argv(engine: str, image: str) -> list[str]:
    return [engine, "pull", "--platform", PLATFORM, image]


@dataclass
class ContainerSession(BoundSession, ShellSession):
    root: ContainerRoot
    name: str
    ca_host: Path | None

    backend = "container"
    package_manager = "dnf"
    host_auditwheel = False
    ldpaths: tuple[Path, ...] = field(default=(), init=False)

    @property
    def ca_bundle(self) -> str | None:
        return CA_INSIDE if self.ca_host is not None else None

    def python(self, version: str) -> str:
        available = self.root.pythons()
        if version not in available:
            raise MissingPython(version, available, self.root.image)
        return python_path(version)

    def command(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None, timeout: float | None
    ) -> Command:
        full_env = {"PIP_ROOT_USER_ACTION": "ignore", "PYTHONDONTWRITEBYTECODE": "1"}
        if self.ca_bundle is not None:
            full_env |= {"SSL_CERT_FILE": self.ca_bundle, "REQUESTS_CA_BUNDLE": self.ca_bundle}
        full_env.update(env)
        command = exec_argv(
            self.root.engine,
            self.name,
            argv,
            env=full_env,
            cwd=cwd or f"{INSIDE_BASE}/work",
            timeout=timeout,
        )
        # The outer timeout is a backstop for a hung engine; `timeout` inside kills first.
        return Command(command, timeout=None if timeout is None else timeout + 60)

    def install_command(self, packages: Sequence[str]) -> tuple[str, str]:
        names = quoted(packages)
        return "dnf", f"dnf install -y {names} || yum install -y {names}"


class ContainerRoot:
    """manylinux image under docker/podman; ``image`` is resolved to a digest on prepare."""

    def __init__(self, engine: str, image: str = DEFAULT_IMAGE, runner: Runner = run_quiet) -> None:
        self.engine = engine
        self.image_ref = image
        self.runner = runner
        self._digest: str | None = None
        self._pythons: tuple[str, ...] | None = None

    @property
    def arch(self) -> str:
        return "s390x"

    @property
    def backend(self) -> str:
        return "container"

    @property
    def image(self) -> str:
        return self._digest or self.image_ref

    def prepare(self, on_line: OnLine | None = None) -> None:
        pulled = run(pull_argv(self.engine, self.image_ref), on_line=on_line, timeout=3600)
        if not pulled.ok:
            raise BuildRootUnavailable(
                f"{self.engine} pull {self.image_ref} failed (exit {pulled.exit_code})"
            )
        done = self.runner(inspect_digest_argv(self.engine, self.image_ref))
        if done.returncode == 0 and done.stdout.strip():
            self._digest = done.stdout.strip()

    def pythons(self) -> tuple[str, ...]:
        if self._pythons is None:
            done = self.runner(
                [
                    self.engine,
                    "run",
                    "--rm",
                    "--platform",
                    PLATFORM,
                    self.image_ref,
                    "ls",
                    "/opt/python",
                ]
            )
            self._pythons = (
                parse_opt_python(done.stdout) if done.returncode == 0 else MANYLINUX_PYTHONS
            )
        return self._pythons

    @contextlib.contextmanager
    def _session(self, mounts: Mounts, purpose: str) -> Iterator[ContainerSession]:
        name = f"refinery-{purpose}-{uuid.uuid4().hex[:12]}"
        ca_host = HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None
        started = self.runner(
            run_argv(self.engine, self.image_ref, name, mounts, ca_bundle=ca_host)
        )
        if started.returncode != 0:
            raise BuildRootUnavailable(
                f"{self.engine} could not start {self.image_ref}: {started.stderr.strip()}"
            )
        try:
            yield ContainerSession(mounts, self, name, ca_host)
        finally:
            self.runner(rm_argv(self.engine, name))

    def build_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[ContainerSession]:
        return self._session(mounts, "build")

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[ContainerSession]:
        return self._session(mounts, "smoke")
