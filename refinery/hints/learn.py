"""Learning from retries that worked: per-package entries written back to the catalog.

A build record whose final attempt was ``built`` after a failed one, with hint ids on
the successful attempt, is package-level evidence that those hints fix that package.
:func:`learned_from_records` turns such records into :class:`Learned` entries (one per
package, hints and evidence merged, skipping what the catalog already knows), and
:func:`add_entries` appends them to a catalog file's ``packages:`` list with ruamel.yaml
round-trip, so comments, key order, quoting and formatting of everything else stay as
they were. The next build of such a package gets the fixes before its first attempt.
The CLI proposes the change as a pull request on GitHub Actions; nothing here trusts
it silently.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refinery.core.models import BuildRecord, NodeStatus
from refinery.hints.models import DERIVED_PREFIX, Catalog, Evidence, HintFix, fix_lines

MAX_EVIDENCE = 5
HEADER = """\
# Learned per-package entries, written by `refinery hints learn` from builds whose retry
# succeeded thanks to a hint or a fix derived from the distribution's file index: the
# listed hints' fixes (and an entry's own fix) apply before the package's first attempt.
# Proposed as pull requests; review them like code.
"""


@dataclass(frozen=True, slots=True)
class Learned:
    """A package's new entry: catalog ``hints`` and/or a ``fix`` of its own (what
    derived fixes installed), with the builds that prove it."""

    package: str
    hints: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    fix: HintFix | None = None

    @property
    def note(self) -> str:
        what = [*self.hints, *(fix_lines(self.fix) if self.fix else ())]
        fixed = f"{', '.join(what)} fixed the build"
        builds = ", ".join(e.build for e in self.evidence)
        return f"learned from {builds}: {fixed}" if builds else f"learned: {fixed}"


def evidence_of(record: BuildRecord) -> tuple[tuple[str, ...], Evidence] | None:
    """``(hint ids, evidence)`` when ``record`` is a build a hint fixed on a retry."""
    if record.status is not NodeStatus.BUILT or len(record.attempts) < 2:
        return None
    last = record.attempts[-1]
    if last.status != str(NodeStatus.BUILT) or not last.hint_ids:
        return None
    failed = [a for a in record.attempts[:-1] if a.status and a.status != str(NodeStatus.BUILT)]
    if not failed:
        return None
    # hints already applied to the first attempt were learned before: not new evidence
    new = tuple(h for h in last.hint_ids if h not in record.attempts[0].hint_ids)
    if not new:
        return None
    return new, Evidence(
        build=record.key,
        backend=last.backend,
        image=last.image,
        attempt=last.n,
        at=last.ended or last.started,
        log=failed[-1].log or "",
    )


def derived_fix(record: BuildRecord, ids: Sequence[str]) -> HintFix | None:
    """What the derived fixes among ``ids`` installed on the record's last attempt:
    Debian packages (derived from Debian's file index) and build requirements."""
    wanted = {i.removeprefix(DERIVED_PREFIX) for i in ids if i.startswith(DERIVED_PREFIX)}
    used = [d for d in record.attempts[-1].derived if (d.package or d.requirement) in wanted]
    if not used:
        return None
    return HintFix(
        apt=tuple(dict.fromkeys(d.package for d in used if d.package)),
        build_requires=tuple(dict.fromkeys(d.requirement for d in used if d.requirement)),
    )


def _merged(a: HintFix | None, b: HintFix | None) -> HintFix | None:
    if a is None or b is None:
        return a or b
    return HintFix(
        apt=tuple(dict.fromkeys((*a.apt, *b.apt))),
        build_requires=tuple(dict.fromkeys((*a.build_requires, *b.build_requires))),
    )


def learned_from_records(records: Iterable[BuildRecord], catalog: Catalog) -> list[Learned]:
    """New per-package entries, one per package, sorted by name: the catalog hints and
    the derived fixes that made a retry build."""
    hints: dict[str, dict[str, None]] = {}
    fixes: dict[str, HintFix | None] = {}
    evidence: dict[str, list[Evidence]] = {}
    for record in records:
        found = evidence_of(record)
        if found is None:
            continue
        ids, proof = found
        known = {h for entry in catalog.for_package(record.name) for h in entry.hints}
        fresh = [h for h in ids if h not in known and catalog.get(h) is not None]
        derived = derived_fix(record, ids)
        if not fresh and derived is None:
            continue
        hints.setdefault(record.name, {}).update(dict.fromkeys(fresh))
        fixes[record.name] = _merged(fixes.get(record.name), derived)
        evidence.setdefault(record.name, []).append(proof)
    return [
        Learned(name, tuple(hints[name]), tuple(evidence[name][:MAX_EVIDENCE]), fixes[name])
        for name in sorted(hints)
    ]


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _entry(learned: Learned) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    entry = CommentedMap()
    entry["package"] = learned.package
    if learned.hints:
        hints = CommentedSeq(learned.hints)
        hints.fa.set_flow_style()
        entry["hints"] = hints
    if learned.fix is not None:
        fix = CommentedMap()
        for key in ("apt", "build_requires"):
            values = getattr(learned.fix, key)
            if values:
                seq = CommentedSeq(values)
                seq.fa.set_flow_style()
                fix[key] = seq
        entry["fix"] = fix
    entry["note"] = learned.note
    proofs = CommentedSeq()
    for e in learned.evidence:
        item = CommentedMap()
        item["build"] = e.build
        for key in ("backend", "image", "attempt", "at", "log"):
            value = getattr(e, key)
            if value not in ("", None):
                item[key] = value
        proofs.append(item)
    entry["evidence"] = proofs
    return entry


def add_entries(text: str, learned: Sequence[Learned]) -> str:
    """``text`` (a catalog file, possibly empty) with ``learned`` appended to ``packages``.

    Round-trip: everything already in the file keeps its comments, order and formatting.
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml = _yaml()
    doc = yaml.load(text) if text.strip() else None
    header = "" if text.strip() else HEADER
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ValueError("a catalog file must be a mapping at the top level")
    packages = doc.get("packages")
    if packages is None:
        packages = CommentedSeq()
        doc["packages"] = packages
    if not isinstance(packages, CommentedSeq):
        raise ValueError("'packages' must be a list")
    if packages.fa.flow_style():
        packages.fa.set_block_style()
    for item in learned:
        packages.append(_entry(item))
    out = io.StringIO()
    yaml.dump(doc, out)
    return header + out.getvalue()


def write_entries(path: Path, learned: Sequence[Learned]) -> tuple[str, str]:
    """Append ``learned`` to ``path`` (created when missing); ``(old text, new text)``."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    new = add_entries(old, learned)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
    return old, new
