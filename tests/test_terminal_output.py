"""Every command's text output shows others' controls as escapes: plan and apply (host names,
task names and messages from Ansible and the hosts), error lines quoting user input, and the DNS
sheet (HTML, escaped by Jinja). JSON output keeps the exact text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.apply import ApplyResult, FileChange, HostPlan, PlanResult, TaskEvent, plan_json, plan_markdown

HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}
EVIL = "\x1b[2J\r\n## mx9: no changes \u202e\x85\u2028"
SHOWN = "\\x1b[2J\\r\\n## mx9: no changes <U+202E>\\x85<U+2028>"


def hidden_in(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in HIDDEN and c != "\n"]


def hostile_host() -> HostPlan:
    failure = TaskEvent(f"mx1{EVIL}", f"Install{EVIL}", "failed", message=f"stderr says{EVIL}")
    return HostPlan(
        host=f"mx1{EVIL}",
        files=(FileChange(f"/etc/postfix/main.cf{EVIL}", f"content{EVIL}"),),
        tables=(f"/etc/postfix/virtual{EVIL}",),
        reload=(f"postfix{EVIL}",),
        changed_tasks=(f"Write the thing{EVIL}",),
        failures=(failure,),
    )


def test_plan_markdown_keeps_every_value_on_its_line() -> None:
    plan = PlanResult(hosts=(hostile_host(),), returncode=2)
    text = plan_markdown(plan)
    assert hidden_in(text) == []
    assert [line for line in text.splitlines() if line.startswith("## ")] == [f"## mx1{SHOWN}: failed"]
    assert f"- **failed** at `Install{SHOWN}`: stderr says{SHOWN}" in text.splitlines()
    assert json.loads(plan_json(plan))["hosts"][0]["host"] == f"mx1{EVIL}"  # JSON: exact


def test_apply_progress_and_failure_lines_are_escaped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`provision apply --yes` prints each task event and each failure on one line of stderr."""
    from provisioner import cli
    from provisioner.apply import flow

    host = hostile_host()

    def fake_apply(site, build_dir, inventory, limit, progress=None, **_):  # type: ignore[no-untyped-def]
        for event in host.failures:
            progress(event)
        return ApplyResult(hosts=(host,), returncode=2)

    monkeypatch.setattr(flow, "build", lambda *args, **kwargs: None)
    monkeypatch.setattr(flow, "apply", fake_apply)
    monkeypatch.setattr(cli.err, "_file", err := _Buffer())  # not `file`: restoring it would pin the stream of the moment
    result = CliRunner().invoke(cli.app, ["apply", str(tmp_path / "site.yaml"), "--yes"])
    assert result.exit_code == 1
    printed = err.getvalue()
    assert hidden_in(printed) == []
    assert printed.splitlines() == [
        f"mx1{SHOWN}: Install{SHOWN}: failed: stderr says{SHOWN}",
        f"failed on mx1{SHOWN} at task 'Install{SHOWN}': stderr says{SHOWN}",
    ]


class _Buffer:
    """A text file for rich that keeps what was written (StringIO, without isatty surprises)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)


def test_an_error_quoting_a_path_is_one_escaped_line(tmp_path: Path) -> None:
    missing = tmp_path / "in\x1b[8mbox\r\nVerdict: PASS.eml"
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "provisioner.cli", "inspect", str(missing)], capture_output=True, env=env, check=False, timeout=60)
    assert done.returncode == 1
    assert b"\x1b" not in done.stderr and b"\r" not in done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "in\\x1b[8mbox\\r\\nVerdict: PASS.eml" in lines[0], lines


def test_the_dns_sheet_escapes_html_in_every_value(tmp_path: Path) -> None:
    """The sheet is HTML: values are escaped by Jinja's autoescape, so a record or a site name
    cannot add markup or script to the page."""
    import html

    from provisioner.dns.records import Level, Purpose, Record, site_records
    from provisioner.dns.sheet import sheet_html
    from provisioner.keys.store import ensure_keys
    from provisioner.site.validate import load_site
    from tests.conftest import EXAMPLES, FIXED_DAY

    site = load_site(EXAMPLES / "all-in-one" / "site.yaml").site
    keys, _ = ensure_keys(site, tmp_path / "state", today=FIXED_DAY, workers=1)
    records = site_records(site, keys, today=FIXED_DAY)
    payload = '"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;'
    first = records.records[0]
    records.records.append(Record(first.zone, f"x.{first.zone}", "TXT", payload, 300, Level.OPTIONAL, Purpose(payload, payload)))
    records.by_zone.setdefault(first.zone, []).append(records.records[-1])
    site = site.model_copy(update={"name": f"corp{payload}"})
    for lang in ("en", "ja"):
        page = sheet_html(site, records, lang)
        assert "<script" not in page and "<img" not in page
        assert html.unescape(page).count(payload) >= 2  # the site name and the record, whole


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii:strict"}])
def test_a_terminal_that_cannot_encode_japanese_gets_escapes_not_an_internal_error(env: dict[str, str], tmp_path: Path) -> None:
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@example.com\r\nSubject: =?utf-8?b?5pel5pys?=\r\n\r\nhi\r\n")
    done = subprocess.run(
        [sys.executable, "-m", "provisioner.cli", "inspect", "--lang", "ja", str(message)],
        capture_output=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert done.returncode == 3, done.stderr  # unknown: no evidence either way
    assert b"internal error" not in done.stderr
    assert b"\\u65e5\\u672c" in done.stdout  # the Subject, escaped by the stream
