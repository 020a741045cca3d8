"""Project summaries (``projects/<name>.json``): what the index serves for a project,
derived from its build records, one entry per servable wheel."""

from __future__ import annotations

from dataclasses import dataclass, replace

from refinery.core.errors import StoreError
from refinery.core.models import BuildRecord, NodeStatus
from refinery.store.files import metadata_requires_python, sha256_bytes

SUMMARY_SCHEMA = 1


def usable_record(record: BuildRecord | None) -> bool:
    """Whether ``record`` names a built wheel (the index may serve it)."""
    return record is not None and record.status is NodeStatus.BUILT and record.wheel is not None


def yanked(record: BuildRecord) -> str | None:
    """A record is yanked by its last ``yanked``/``unyanked`` event."""
    state: str | None = None
    for event in record.events:
        if event.kind == "yanked":
            state = event.message or "yanked"
        elif event.kind == "unyanked":
            state = None
    return state


def entry_key(version: str, python: str) -> str:
    """The key of a summary entry: ``<version>/<python>``."""
    return f"{version}/{python}"


def parse_entry_key(key: str) -> tuple[str, str]:
    version, _, python = key.rpartition("/")
    return version, python


@dataclass(frozen=True, slots=True)
class SummaryEntry:
    """One servable wheel of a project, as the index lists it."""

    version: str
    filename: str
    sha256: str
    size: int | None
    metadata_sha256: str
    requires_python: str | None = None
    yanked: str | None = None

    @classmethod
    def make(cls, record: BuildRecord, metadata: bytes) -> SummaryEntry:
        assert record.wheel is not None
        return cls(
            version=record.version,
            filename=record.wheel.filename,
            sha256=record.wheel.sha256,
            size=record.wheel.size,
            metadata_sha256=sha256_bytes(metadata),
            requires_python=metadata_requires_python(metadata),
            yanked=yanked(record),
        )

    def reusable_for(self, record: BuildRecord | None) -> bool:
        """The one reuse rule: a record still naming this entry's wheel (same sha256)
        keeps the entry; only its yanked state is re-read (:meth:`evolve_from`)."""
        return (
            usable_record(record)
            and record is not None
            and record.wheel is not None
            and record.wheel.sha256 == self.sha256
        )

    def evolve_from(self, record: BuildRecord) -> SummaryEntry:
        """Same wheel, record changed: only the yanked state can differ."""
        return replace(self, yanked=yanked(record))

    def to_json(self) -> list[object]:
        return [
            self.version,
            self.filename,
            self.sha256,
            self.size,
            self.metadata_sha256,
            self.requires_python,
            self.yanked,
        ]

    @classmethod
    def from_json(cls, row: list[object]) -> SummaryEntry:
        return cls(*row)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    """``projects/<name>.json``: servable wheels keyed by ``<version>/<python>``."""

    name: str
    files: dict[str, SummaryEntry]
    schema: int = SUMMARY_SCHEMA

    def to_json(self) -> dict[str, object]:
        return {
            "schema": self.schema,
            "name": self.name,
            "files": {k: v.to_json() for k, v in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProjectSummary:
        if data.get("schema") != SUMMARY_SCHEMA:
            raise StoreError(f"project summary: unsupported schema {data.get('schema')!r}")
        files = data["files"]
        assert isinstance(files, dict)
        return cls(str(data["name"]), {k: SummaryEntry.from_json(v) for k, v in files.items()})
