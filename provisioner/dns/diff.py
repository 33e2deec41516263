"""What changed in DNS since the previous build: records to add and to remove, from two
records.json documents (the previous build's and this one's). `render` prints it short, so a
rotation, a new domain or a changed policy says what to do at the DNS provider."""

from __future__ import annotations

import json
from dataclasses import dataclass

RecordKey = tuple[str, str, str]  # owner name, type, value
SHOWN = 20  # changed records listed on the terminal; the rest are counted
VALUE_SHOWN = 72  # a value longer than this is cut on the terminal (records.json has it whole)


@dataclass(frozen=True)
class RecordDiff:
    previous: bool  # False: no previous build (or its records.json unreadable): everything is new
    added: list[RecordKey]
    removed: list[RecordKey]


def _keys(document: bytes) -> set[RecordKey] | None:
    try:
        data = json.loads(document)
        return {(str(r["name"]), str(r["type"]), str(r["value"])) for r in data["records"]}
    except (ValueError, KeyError, TypeError):
        return None


def records_diff(previous: bytes | None, current: bytes) -> RecordDiff:
    """Records in `current` and not in `previous` (added), and the other way round (removed)."""
    now = _keys(current) or set()
    before = _keys(previous) if previous is not None else None
    if before is None:
        return RecordDiff(False, sorted(now), [])
    return RecordDiff(True, sorted(now - before), sorted(before - now))


def _short(value: str) -> str:
    return value if len(value) <= VALUE_SHOWN else f"{value[: VALUE_SHOWN - 12]}... ({len(value)} characters)"


def diff_lines(diff: RecordDiff, where: str) -> list[str]:
    """The diff for a terminal: a summary line, then up to SHOWN records as `+ NAME TYPE VALUE` / `- ...`."""
    if not diff.previous:
        return [f"DNS: no previous build to compare with: publish every record in {where}"]
    if not diff.added and not diff.removed:
        return ["DNS: no record changed since the previous build"]
    lines = [f"DNS changes since the previous build: {len(diff.added)} to add, {len(diff.removed)} to remove ({where}):"]
    changes = [("+", key) for key in diff.added] + [("-", key) for key in diff.removed]
    changes.sort(key=lambda change: (change[1][0], change[1][1], change[0]))
    lines += [f"  {sign} {name} {rtype} {_short(value)}" for sign, (name, rtype, value) in changes[:SHOWN]]
    if len(changes) > SHOWN:
        lines.append(f"  ... and {len(changes) - SHOWN} more")
    return lines
