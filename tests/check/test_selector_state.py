"""check's per-selector rows: each DKIM selector the key state knows carries what the state says
it is (`state`), in every view; a selector withdrawn beyond its period is reported gone or stale.
The rows against a real nsd are in tests/dns/test_rotation_gate.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console

from provisioner.check import Report, report_json
from provisioner.check.findings import Category, Finding, Severity
from provisioner.check.judge import judge_stale_dkim
from provisioner.check.report import report_plain, report_table
from provisioner.check.run import selector_roles
from provisioner.keys.store import Generation, KeyState, KeyStatus
from provisioner.mailauth.resolver import Answer, Outcome

DOMAIN = "a.example"
TODAY = dt.date(2026, 12, 20)


def _state() -> KeyState:
    gens = [
        Generation("s202609a", KeyStatus.WITHDRAWN, "2026-10-01", ["rsa-2048"]),
        Generation("s202610a", KeyStatus.WITHDRAWN, "2026-12-01", ["rsa-2048"]),
        Generation("s202611a", KeyStatus.RETIRED, "2026-12-10", ["rsa-2048"]),
        Generation("s202611b", KeyStatus.ACTIVE, "2026-12-10", ["rsa-2048", "ed25519"]),
        Generation("s202612a", KeyStatus.STANDBY, "2026-12-10", ["rsa-2048", "ed25519"]),
    ]
    return KeyState(Path("/nonexistent"), {DOMAIN: gens})


def test_every_selector_of_the_state_has_its_role() -> None:
    roles = {name.split("._domainkey.")[0]: role for name, role in selector_roles(_state(), DOMAIN, TODAY).items()}
    assert roles == {
        "s202609a": "withdrawn 2026-10-01: removed since 2026-10-31",
        "s202610a": "withdrawn 2026-12-01: published revoked until 2026-12-31",
        "s202611a": "retired 2026-12-10: kept for verification until 2026-12-24",
        "s202611b": "active: signing since 2026-12-10",
        "s202611b-ed": "active: signing since 2026-12-10",
        "s202612a": "standby since 2026-12-10: the next rotation signs with it",
        "s202612a-ed": "standby since 2026-12-10: the next rotation signs with it",
    }


def test_a_withdrawn_selector_gone_from_dns_is_a_pass_and_still_served_a_warning() -> None:
    name = f"s202609a._domainkey.{DOMAIN}."
    gone = judge_stale_dkim(DOMAIN, "s202609a", Answer(name, "TXT", Outcome.NXDOMAIN), "withdrawn")
    assert [(f.id, f.severity, f.state) for f in gone] == [("dkim.removed", Severity.PASS, "withdrawn")]
    stale = judge_stale_dkim(DOMAIN, "s202609a", Answer(name, "TXT", Outcome.ANSWER, ("v=DKIM1; p=AAAA",)), "withdrawn")
    assert [(f.id, f.severity, f.state) for f in stale] == [("dkim.stale", Severity.WARNING, "withdrawn")]
    # a failed lookup proves nothing either way: no pass
    assert judge_stale_dkim(DOMAIN, "s202609a", Answer(name, "TXT", Outcome.SERVFAIL), "withdrawn") == []


def test_the_state_shows_in_plain_json_and_one_table_row_escaped() -> None:
    hostile = "standby \x1b[8m\nforged"
    row = Finding("dkim.missing", DOMAIN, Category.DKIM, Severity.WARNING, f"s1._domainkey.{DOMAIN}", "v=DKIM1; p=X", "NXDOMAIN", "add", state=hostile)
    plain = Finding("mx.match", DOMAIN, Category.MX, Severity.PASS, DOMAIN, "10 mx.", "10 mx.", "")
    report = Report((plain, row), (DOMAIN,), ())
    text = report_plain(report)
    assert "  state:    standby \\x1b[8m\\nforged" in text.splitlines()
    assert "state:" not in text.split("== ")[1].split("warning dkim.missing")[0]  # not on rows without one
    doc = report_json(report)
    findings = doc["domains"][0]["findings"]
    assert findings[1]["state"] == hostile and "state" not in findings[0]  # JSON carries the exact text
    console = Console(width=400, record=True, color_system=None)
    console.print(report_table(report))
    shown = console.export_text()
    assert "\x1b" not in shown and f"s1._domainkey.{DOMAIN} (standby \\x1b[8m\\nforged)" in shown
    assert len([line for line in shown.splitlines() if line.startswith("│")]) == 2
