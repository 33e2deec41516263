"""DNS in `provision plan` and `provision apply` against a real Knot: plan names drift at the
provider and exits 2; apply adds records before the hosts and removes withdrawn ones after.

The hosts' part is a stand-in here (Ansible check mode needs hosts; tests/apply runs the real
one): what is under test is the DNS part and how it is combined with the hosts' result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import provisioner.apply.flow as flow
import provisioner.cli as cli
from provisioner.apply.plan import ApplyResult, FileChange, HostPlan, PlanResult
from provisioner.apply.report import plan_json, plan_markdown
from tests.dns.test_push import Pushed, pushed_fixture  # noqa: F401 - the fixture `pushed`

CLEAN = PlanResult(hosts=(HostPlan("mx1"),))
CHANGED = PlanResult(hosts=(HostPlan("mx1", files=(FileChange("etc/postfix/main.cf", "content"),)),))


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pushed: Pushed, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("TSIG_SECRET", pushed.knot.secret)
    monkeypatch.setenv("SMARTHOST_PASSWORD", "example-only")
    monkeypatch.setattr(sys, "argv", ["provision", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    return int(exited.value.code or 0), captured.out


def test_plan_shows_dns_drift_beside_the_hosts(pushed: Pushed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert pushed.push().returncode == 0
    monkeypatch.setattr(flow, "plan", lambda *args, **kwargs: CLEAN)
    build = str(tmp_path / "build")
    code, text = run_cli(monkeypatch, capsys, pushed, "plan", str(pushed.site), "--build", build)
    assert code == 0, text
    assert "## mx1: no changes" in text and "DNS: 0 of 5 zone(s) would change." in text
    pushed.knot.knsupdate("zone acme.example.\nupdate delete mx2.acme.example. A")
    for fmt in ("text", "markdown"):
        code, text = run_cli(monkeypatch, capsys, pushed, "plan", str(pushed.site), "--build", build, "--format", fmt)
        assert code == 2 and "## DNS acme.example (target knot): changes" in text and "- + mx2.acme.example A 192.0.2.20" in text, text
    code, text = run_cli(monkeypatch, capsys, pushed, "plan", str(pushed.site), "--build", build, "--format", "json")
    doc = json.loads(text)
    assert code == 2 and doc["exit_code"] == 2 and doc["changed"] is True
    assert {"action": "create", "name": "mx2.acme.example", "type": "A"}.items() <= doc["dns"]["zones"][0]["changes"][0].items()
    monkeypatch.setattr(flow, "plan", lambda *args, **kwargs: CHANGED)
    pushed.push()
    code, _ = run_cli(monkeypatch, capsys, pushed, "plan", str(pushed.site), "--build", build, "--format", "json")
    assert code == 2  # hosts change, DNS clean


def test_without_dns_targets_the_plan_is_as_before(tmp_path: Path) -> None:
    for result in (CLEAN, CHANGED):
        assert plan_markdown(result) == plan_markdown(result, dns=None)
        assert plan_json(result) == plan_json(result, dns=None)
        assert set(json.loads(plan_json(result))) == {"changed", "ok", "exit_code", "hosts"}


def test_a_hostile_value_at_the_provider_stays_on_its_line(pushed: Pushed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Values come from the provider: escapes and Markdown in them are shown, not obeyed."""
    assert pushed.push().returncode == 0
    pushed.knot.update("acme.example", "replace", "_dmarc.acme.example.", "TXT", '"v=DMARC1; p=none\x1b[8m | # `x`"')
    monkeypatch.setattr(flow, "plan", lambda *args, **kwargs: CLEAN)
    code, text = run_cli(monkeypatch, capsys, pushed, "plan", str(pushed.site), "--build", str(tmp_path / "build"))
    assert code == 2 and "\x1b" not in text
    assert "- ~ \\_dmarc.acme.example TXT + v=DMARC1; p=reject;" in text, text  # ours goes back; theirs is not removed


def test_markdown_shows_others_values_inert() -> None:
    """Markdown and terminal controls in a provider's value are shown, not obeyed."""
    from provisioner.apply.report import dns_markdown
    from provisioner.dns.push import PushResult, RecordChange, ZonePlan

    change = RecordChange("update", "_dmarc.acme.example", "TXT", ("v=DMARC1; p=none\x1b[8m | # `x` [a](b)",), ("v=DMARC1; p=reject",))
    text = dns_markdown(PushResult([ZonePlan("acme.example", "knot", [change])], ["acme.example"], [], True))
    line = next(line for line in text.splitlines() if "p=none" in line)
    assert "\x1b" not in line and "\\x1b" in line
    assert "\\|" in line and "\\`x\\`" in line and "\\[a\\](b)" in line and " -> v=DMARC1; p=reject" in line


def test_apply_adds_before_the_hosts_and_removes_after(pushed: Pushed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    knot = pushed.knot
    assert pushed.push().returncode == 0
    # mx2 moves (a change: first), mx1 gives up IPv6 (its AAAA set is withdrawn: last)
    site = pushed.site.read_text().replace("ipv4: [192.0.2.20]", "ipv4: [192.0.2.21]").replace("    ipv6: [2001:db8::10]\n", "", 1)
    pushed.site.write_text(site)
    seen: dict[str, list[str]] = {}

    def hosts_apply(*args: object, **kwargs: object) -> ApplyResult:
        seen["during"] = knot.query("mx2.acme.example", "A")
        seen["spf"] = [v for v in knot.txt("acme.example") if v.startswith("v=spf1")]
        seen["aaaa"] = knot.query("mx1.acme.example", "AAAA")
        return ApplyResult(hosts=(HostPlan("mx1"),))

    monkeypatch.setattr(flow, "plan", lambda *args, **kwargs: CHANGED)
    monkeypatch.setattr(flow, "apply", hosts_apply)
    code, text = run_cli(monkeypatch, capsys, pushed, "apply", str(pushed.site), "--build", str(tmp_path / "build"), "--yes")
    assert code == 0, text
    assert seen["during"] == ["192.0.2.21"]  # changed before any host uses it
    assert len(seen["spf"]) == 1 and "ip4:192.0.2.21" in seen["spf"][0]  # one SPF record at any time
    assert seen["aaaa"] == ["2001:db8::10"]  # withdrawn only after the hosts
    assert knot.query("mx1.acme.example", "AAAA") == []
    assert pushed.push("--dry-run").returncode == 0


def test_apply_keeps_withdrawn_records_when_a_host_fails(pushed: Pushed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    knot = pushed.knot
    assert pushed.push().returncode == 0
    pushed.site.write_text(pushed.site.read_text().replace("    ipv6: [2001:db8::10]\n", "", 1))
    monkeypatch.setattr(flow, "apply", lambda *args, **kwargs: ApplyResult(hosts=(HostPlan("mx1"),), returncode=2))
    code, _ = run_cli(monkeypatch, capsys, pushed, "apply", str(pushed.site), "--build", str(tmp_path / "build"), "--yes")
    assert code != 0
    assert knot.query("mx1.acme.example", "AAAA") == ["2001:db8::10"]  # not withdrawn: a host may still use it
    assert "ip6:" not in [v for v in knot.txt("acme.example") if v.startswith("v=spf1")][0]  # the change went out


def test_a_removed_domain_is_named_by_plan_and_withdrawn_by_apply_after_the_hosts(
    pushed: Pushed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    knot = pushed.knot
    assert pushed.push().returncode == 0
    legacy = '  legacy.acme.example:\n    relay_to: "smtp:[mail.legacy.acme.example]:25"\n'
    pushed.site.write_text(pushed.site.read_text().replace(legacy, ""))
    monkeypatch.setattr(flow, "plan", lambda *args, **kwargs: CLEAN)
    build = str(tmp_path / "build")
    code, text = run_cli(monkeypatch, capsys, pushed, "plan", str(pushed.site), "--build", build, "--format", "markdown")
    assert code == 2 and "## DNS legacy.acme.example (target knot): changes; withdrawn: domain no longer in the site" in text, text
    assert "- - legacy.acme.example MX" in text
    seen: dict[str, list[str]] = {}

    def hosts_apply(*args: object, **kwargs: object) -> ApplyResult:
        seen["mx"] = knot.query("legacy.acme.example", "MX")
        return ApplyResult(hosts=(HostPlan("mx1"),))

    monkeypatch.setattr(flow, "apply", hosts_apply)
    code, text = run_cli(monkeypatch, capsys, pushed, "apply", str(pushed.site), "--build", build, "--yes")
    assert code == 0, text
    assert seen["mx"]  # still served while the hosts are configured: withdrawn last
    assert knot.query("legacy.acme.example", "MX") == [] and knot.txt("_provision.legacy.acme.example") == []
    assert pushed.push("--dry-run").returncode == 0
