"""`provision check` prints third parties' DNS data, never obeys it: TXT answers (an SPF include
target, a DMARC rua address) and host names in answers that carry ESC, CR, LF, C1, bidi controls
or rich markup show in the table as escapes and literal text. The JSON report keeps them exact."""

from __future__ import annotations

import io
import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from provisioner.check import Report, report_json, report_table, run_check
from provisioner.keys.store import KeyState, ensure_keys
from provisioner.mailauth.resolver import StaticResolver
from provisioner.site.model import Site
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}
EVIL = "\x1b[8m\r\nVerdict [bold]PASS[/bold] [link=https://evil.test]x[/link] :warning: \u202e\x85\u2028"
SHOWN = "\\x1b[8m\\r\\nVerdict [bold]PASS[/bold] [link=https://evil.test]x[/link] :warning: <U+202E>\\x85<U+2028>"
DOMAIN = "smallco.example"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Site, KeyState, dict[tuple[str, str], list[str]]]:
    """The all-in-one example, its keys, and its records as a DNS table (everything matches)."""
    from provisioner.dns.records import site_records

    site = load_site(EXAMPLES / "all-in-one" / "site.yaml").site
    keys, _ = ensure_keys(site, tmp_path_factory.mktemp("hostile") / "state", today=FIXED_DAY, workers=1)
    table: dict[tuple[str, str], list[str]] = {}
    for record in site_records(site, keys, today=FIXED_DAY).records:
        table.setdefault((record.name, record.type), []).append(record.value)
    return site, keys, table


def hostile_check(published: tuple[Site, KeyState, dict[tuple[str, str], list[str]]], evil: str) -> Report:
    site, keys, table = published
    answers = dict(table)
    answers[(DOMAIN, "TXT")] = ["v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 include:spf.evil.test -all"]
    answers[("spf.evil.test", "TXT")] = [f"v=spf1 include:x{evil}.evil.test -all"]
    answers[(f"_dmarc.{DOMAIN}", "TXT")] = [f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN},mailto:a@evil{evil}.test; adkim=r; aspf=r"]
    answers[(DOMAIN, "MX")] = [f"10 mail.{DOMAIN}.", f"20 mx{evil}.evil.test."]
    return run_check(site, keys, StaticResolver(answers), concurrency=4, today=FIXED_DAY)


def table_text(report: Report, markup: bool = True) -> str:
    """The table as a terminal shows it (rich with its defaults: markup and emoji on), wide
    enough that no cell wraps."""
    buffer = io.StringIO()
    Console(file=buffer, width=4000, markup=markup, color_system=None).print(report_table(report))
    return buffer.getvalue()


def hidden_in(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in HIDDEN and c != "\n"]


def test_third_party_txt_and_hostnames_show_as_escapes_not_as_controls_or_markup(published) -> None:
    report = hostile_check(published, EVIL)
    shown = table_text(report)
    assert hidden_in(shown) == []
    assert "\x1b" not in shown and "\r" not in shown and "\u202e" not in shown
    assert f"rua=mailto:dmarc@{DOMAIN},mailto:a@evil{SHOWN}.test" in shown  # the DMARC record as seen, literally
    assert "'include:x\\x1b[8m\\r\\nVerdict': 'x\\x1b[8m\\r\\nVerdict' is not a domain" in shown  # the SPF include target (terms split on SP only), via its repr once
    assert f"20 mx{SHOWN}".lower() in shown.lower()  # the undeclared MX host
    assert "⚠" not in shown  # :warning: stays text
    rows = [line for line in shown.splitlines() if line.startswith("│")]
    assert len(rows) == len(report.findings)  # no value broke into a row of its own

    data = json.loads(json.dumps(report_json(report)))
    seen = {f["id"]: f["seen"] for d in data["domains"] for f in d["findings"]}
    assert f"mailto:a@evil{EVIL}.test" in seen["dmarc.mismatch"]  # JSON: the exact characters


hostile = st.lists(
    st.one_of(st.sampled_from(["\x1b", "\r", "\n", "\t", "\x00", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u2066", "\u200b", "[b]", "[/]", ":x:"]), st.characters()),
    min_size=1,
    max_size=12,
).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(evil=hostile)
def test_no_answer_reaches_the_terminal_raw(published, evil: str) -> None:
    assert hidden_in(table_text(hostile_check(published, evil))) == []


def test_the_commands_consoles_print_strings_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """cli's consoles interpret no markup or emoji codes in any string they print."""
    from provisioner import cli

    for console in (cli.out, cli.err):
        buffer = io.StringIO()
        # rich's `file` is a property over `_file` (None: the sys.stdout/stderr of the moment);
        # restoring `file` would pin the stream pytest had then, so `_file` is what is patched.
        monkeypatch.setattr(console, "_file", buffer)
        console.print("[bold]x[/bold] [link=https://evil.test]y[/link] :warning:", soft_wrap=True)
        assert buffer.getvalue() == "[bold]x[/bold] [link=https://evil.test]y[/link] :warning:\n"
