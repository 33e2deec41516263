"""`provision check` piped (a CI log, `| less`, a cron mail) prints a plain layout with every value
whole on one line; the rich table only on a terminal. Both as a user runs them, against real nsd."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.check import Category, Finding, Report, Severity
from provisioner.check.report import report_plain
from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.keys.store import ensure_keys
from provisioner.site.validate import load_site
from provisioner.textsafe import visible
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.dns.conftest import serve, stop
from tests.test_cli import PROVISION

ADDRESS = "127.0.0.158"  # a loopback address of this file's own: other check tests use .154


def _site(tmp_path: Path) -> tuple[Path, dict[str, str], list[str]]:
    site_dir = tmp_path / "site"
    shutil.copytree(EXAMPLES / "all-in-one", site_dir, ignore=shutil.ignore_patterns("state", "build"))
    site_file = site_dir / "site.yaml"
    site = load_site(site_file).site
    keys, _ = ensure_keys(site, site_dir / "state", today=FIXED_DAY, workers=1)
    records = site_records(site, keys, today=FIXED_DAY)
    zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
    dkim = [r.value for r in records.records if "._domainkey." in r.name and len(r.value) > 200]
    return site_file, zones, dkim


def _on_a_terminal(args: list[str], columns: int = 80) -> str:
    """Run with stdout on a pseudo-terminal of `columns` columns, as a user at a terminal sees it."""
    main, child = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"}
    proc = subprocess.Popen(args, stdout=child, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def test_piped_check_prints_whole_values_and_a_terminal_gets_the_table(tmp_path: Path) -> None:
    site_file, zones, dkim = _site(tmp_path)
    assert dkim, "the example has RSA DKIM keys longer than a table column"
    args = [*PROVISION, "check", str(site_file), "--nameserver", ADDRESS, "--timeout", "3"]
    proc = serve(zones, tmp_path / "nsd", ADDRESS, 53)
    try:
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
        piped = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        again = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        shown = _on_a_terminal(args)
    finally:
        stop(proc)
    assert piped.returncode == 0, piped.stdout + piped.stderr
    lines = piped.stdout.splitlines()
    for value in dkim:  # each key whole on its own field lines, not folded into columns
        assert f"  expected: {value}" in lines and f"  seen:     {value}" in lines
    assert "│" not in piped.stdout and "┃" not in piped.stdout and "\x1b" not in piped.stdout
    assert lines[0].startswith("provision check: ") and "== smallco.example" in lines
    assert any(line.startswith("pass dkim.") for line in lines)
    assert piped.stdout == again.stdout  # deterministic
    # At a terminal: the rich table, 80 columns wide, where the same key is folded.
    assert "│" in shown or "┃" in shown
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in shown.splitlines()) <= 80
    assert not any(value in shown for value in dkim)


def test_problems_only_leaves_out_passing_findings() -> None:
    findings = (
        Finding("dkim.published", "a.example", Category.DKIM, Severity.PASS, "s._domainkey.a.example", "v=DKIM1; p=A", "v=DKIM1; p=A", ""),
        Finding("dmarc.missing", "a.example", Category.DMARC, Severity.ERROR, "_dmarc.a.example", "v=DMARC1; p=none", "", "add it"),
    )
    report = Report(findings, ("a.example",), (), resolver="127.0.0.1")
    full, problems = report_plain(report), report_plain(report, problems_only=True)
    assert "pass dkim.published (DKIM)" in full and "dkim.published" not in problems
    assert "error dmarc.missing (DMARC)\n  name:     _dmarc.a.example\n  expected: v=DMARC1; p=none\n  advice:   add it\n" in problems
    assert "seen:" not in problems  # an empty field is left out
    assert full.splitlines()[0] == "provision check: 1 passed, 0 warnings, 1 error"


TEXT = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=200, deadline=None)
@given(subject=TEXT, expected=TEXT, seen=TEXT, advice=TEXT, domain=TEXT, severity=st.sampled_from(list(Severity)))
def test_every_value_whole_on_one_line_with_controls_escaped(subject: str, expected: str, seen: str, advice: str, domain: str, severity: Severity) -> None:
    """Whatever a DNS answer holds (newlines, ESC, bidi controls, 300 characters without a space),
    each field is one line holding exactly the escaped value, and nothing else adds a line."""
    finding = Finding("x.id", domain, Category.SPF, severity, subject, expected, seen, advice)
    text = report_plain(Report((finding,), (domain,), ()))
    lines = text.splitlines()
    assert text.endswith("\n") and "\r" not in text and "\x1b" not in text
    assert all(visible(line) == line for line in lines)  # nothing left for a terminal to obey
    fields = [(label, value) for label, value in (("name", subject), ("expected", expected), ("seen", seen), ("advice", advice)) if value]
    assert lines[4:] == [f"{severity.value} x.id (SPF)"] + [f"  {label + ':':<9} {visible(value)}" for label, value in fields]
    assert lines[3] == f"== {visible(domain)}"
    assert report_plain(Report((finding,), (domain,), ())) == text
