"""The DNS diff render prints: exactly the records added and removed since the previous build."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.dns.diff import SHOWN, VALUE_SHOWN, RecordDiff, diff_lines, records_diff
from provisioner.dns.formats import json_lines

KEYS = st.sets(st.tuples(st.sampled_from(["a.example", "_dmarc.a.example", "s1._domainkey.a.example"]), st.sampled_from(["TXT", "MX", "A"]), st.text(max_size=120)), max_size=40)


def records_json(keys: set[tuple[str, str, str]], purpose: str = "p") -> bytes:
    """A records.json as render writes it (one record a line)."""
    records = [{"name": n, "type": t, "value": v, "ttl": 3600, "purpose": {"en": purpose}} for n, t, v in sorted(keys)]
    return json_lines({"version": 1, "records": records, "notes": [{"domain": "a.example", "en": "x"}]}, "records").encode()


@settings(max_examples=200, deadline=None)
@given(before=KEYS, now=KEYS)
def test_added_and_removed_are_the_set_differences(before: set[tuple[str, str, str]], now: set[tuple[str, str, str]]) -> None:
    diff = records_diff(records_json(before), records_json(now, purpose="a new wording"))  # only the purpose differs
    assert diff.previous
    assert set(diff.added) == now - before and set(diff.removed) == before - now
    assert diff.added == sorted(diff.added) and diff.removed == sorted(diff.removed)
    lines = diff_lines(diff, "build/dns/")
    changes = len(diff.added) + len(diff.removed)
    if changes == 0:
        assert lines == ["DNS: no record changed since the previous build"]
    else:
        assert lines[0] == f"DNS changes since the previous build: {len(diff.added)} to add, {len(diff.removed)} to remove (build/dns/):"
        shown = [line for line in lines[1:] if line.startswith(("  + ", "  - "))]
        assert len(shown) == min(changes, SHOWN)
        assert (lines[-1] == f"  ... and {changes - SHOWN} more") is (changes > SHOWN)


def test_no_or_damaged_previous_build_means_publish_everything() -> None:
    now = {("a.example", "TXT", "v=spf1 -all")}
    for previous in (None, b"", b"{not json\n{also not}", b'{"records": [\n{"name": 1}\n]}', b"[]", json.dumps({"records": []}).encode()):
        diff = records_diff(previous, records_json(now))
        assert diff == RecordDiff(False, sorted(now), [])
        assert diff_lines(diff, "out/dns/") == ["DNS: no previous build to compare with: publish every record in out/dns/"]


def test_long_values_are_cut_on_the_terminal() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 392
    line = diff_lines(RecordDiff(True, [("s._domainkey.a.example", "TXT", value)], []), "b/")[1]
    assert line == f"  + s._domainkey.a.example TXT {value[: VALUE_SHOWN - 12]}... (410 characters)"


@settings(max_examples=50, deadline=None)
@given(now=KEYS)
def test_keys_given_by_the_caller_change_nothing(now: set[tuple[str, str, str]]) -> None:
    """build passes the record list's keys so a first render parses nothing: the same diff."""
    for previous in (None, b"[]", records_json(set())):
        assert records_diff(previous, records_json(now), current_keys=now) == records_diff(previous, records_json(now))
    assert records_diff(records_json(now), records_json(now)) == RecordDiff(True, [], [])  # a re-render, nothing changed
