"""The store's key layout (DESIGN §5.3): the only place key strings are built or parsed.

Identical for every backend::

    wheels/<sha256>/<wheel-filename>            immutable
    wheels/<sha256>/<wheel-filename>.metadata   PEP 658 core metadata
    wheels/<sha256>/<wheel-filename>.provenance PEP 740 provenance object (when attested)
    records/<name>/<version>/<python>.json      compare-and-swap
    logs/<name>/<version>/<python>/<attempt>.log
    plans/<plan_id>.json   inputs/<input_id>.json
    projects/<name>.json                        per-project summary
    simple/…                                    index pages uploaded by ``refinery index``
    packs/<identity>/<name>.tar.gz              library packs, by content hash (immutable)
    state/planned.json                          the last commit whose inputs were planned
    state/snapshot.json                         what a snapshot folder was copied from

Everything outside the ``store`` package asks the :class:`~refinery.store.Store`; it
never spells a key itself.
"""

from __future__ import annotations

from typing import NamedTuple

from refinery.core.models import normalize_name

WHEELS = "wheels/"
RECORDS = "records/"
LOGS = "logs/"
PLANS = "plans/"
INPUTS = "inputs/"
PROJECTS = "projects/"
SIMPLE = "simple/"
PACKS = "packs/"
STATE = "state/"
PLANNED = f"{STATE}planned.json"
SNAPSHOT = f"{STATE}snapshot.json"
JSON = ".json"
METADATA = ".metadata"
PROVENANCE = ".provenance"


class RecordId(NamedTuple):
    """What a record key names."""

    name: str
    version: str
    python: str


class WheelKey(NamedTuple):
    """What a ``wheels/`` key names: a wheel or the metadata beside it."""

    sha256: str
    filename: str
    metadata: bool


def record_key(name: str, version: str, python: str) -> str:
    return f"{RECORDS}{normalize_name(name)}/{version}/{python}{JSON}"


def records_of(name: str) -> str:
    """The prefix of every record of project ``name``."""
    return f"{RECORDS}{normalize_name(name)}/"


def parse_record_key(key: str) -> RecordId | None:
    """``records/<name>/<version>/<python>.json`` → its parts; ``None`` for anything else."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != RECORDS[:-1] or not parts[3].endswith(JSON):
        return None
    return RecordId(parts[1], parts[2], parts[3][: -len(JSON)])


def log_key(name: str, version: str, python: str, attempt: int) -> str:
    return f"{LOGS}{normalize_name(name)}/{version}/{python}/{attempt}.log"


class LogId(NamedTuple):
    """What a ``logs/`` key names: one attempt's log of one node."""

    name: str
    version: str
    python: str
    attempt: int
    key: str


def parse_log_key(key: str) -> LogId | None:
    """``logs/<name>/<version>/<python>/<attempt>.log`` → its parts; ``None`` otherwise."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != LOGS[:-1] or not parts[4].endswith(".log"):
        return None
    number = parts[4][: -len(".log")]
    if not number.isdigit():
        return None
    return LogId(parts[1], parts[2], parts[3], int(number), key)


def logs_of(name: str) -> str:
    """The prefix of every log of project ``name``."""
    return f"{LOGS}{normalize_name(name)}/"


def is_log_key(key: str | None) -> bool:
    """Whether ``key`` (as a record's attempt names it) is a safe key under ``logs/``."""
    return bool(key) and str(key).startswith(LOGS) and ".." not in str(key).split("/")


def wheel_key(sha256: str, filename: str) -> str:
    return f"{WHEELS}{sha256}/{filename}"


def metadata_key(sha256: str, filename: str) -> str:
    """The PEP 658 metadata beside the wheel."""
    return wheel_key(sha256, filename) + METADATA


def parse_wheel_key(key: str) -> WheelKey | None:
    """``wheels/<sha256>/<file>[.metadata]`` → its parts; ``None`` for anything else
    (including the hidden temporary and lock files of a folder store)."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != WHEELS[:-1] or parts[2].startswith("."):
        return None
    meta = parts[2].endswith(METADATA)
    return WheelKey(parts[1], parts[2].removesuffix(METADATA) if meta else parts[2], meta)


def provenance_key(sha256: str, filename: str) -> str:
    """The PEP 740 provenance object beside the wheel (served as the index links it)."""
    return wheel_key(sha256, filename) + PROVENANCE


def project_key(name: str) -> str:
    return f"{PROJECTS}{normalize_name(name)}{JSON}"


def parse_project_key(key: str) -> str | None:
    """``projects/<name>.json`` → ``name``."""
    if not key.startswith(PROJECTS) or not key.endswith(JSON) or "/" in key[len(PROJECTS) :]:
        return None
    return key[len(PROJECTS) : -len(JSON)]


def plan_key(plan_id: str) -> str:
    return f"{PLANS}{plan_id}{JSON}"


def parse_plan_key(key: str) -> str | None:
    """``plans/<plan_id>.json`` → ``plan_id``."""
    if not key.startswith(PLANS) or not key.endswith(JSON):
        return None
    return key[len(PLANS) : -len(JSON)]


def input_key(input_id: str) -> str:
    return f"{INPUTS}{input_id}{JSON}"


def index_key(rel: str) -> str:
    """An index file uploaded into the store: ``rel`` below ``simple/`` (``index.html``,
    ``<project>/index.json``, ``manifest.json``)."""
    return f"{SIMPLE}{rel}"


def pack_key(name: str, identity: str) -> str:
    """A library pack's tarball, named by its identity (the hash of its inputs)."""
    return f"{PACKS}{identity}/{name}.tar.gz"
