"""What render, dns, validate and keys tell the site author on the terminal: notes and warnings
on stderr, a DNS diff against the previous build, rotation instructions; and what a failed
render leaves behind (no new key). As a user runs them: the CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.site.advice import site_warnings
from provisioner.site.validate import validate_data
from tests.conftest import EXAMPLES
from tests.test_cli import PROVISION

SMARTHOST_ENV = {"SMARTHOST_PASSWORD": "s3cret"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "SMARTHOST_PASSWORD"}
    full.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    return subprocess.run([*PROVISION, *args], capture_output=True, text=True, env=full, check=False, timeout=300)


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site", ignore=shutil.ignore_patterns("state", "build"))
    return tmp_path / "site" / "site.yaml"


def state_files(site_file: Path) -> dict[str, bytes]:
    state = site_file.parent / "state"
    return {str(p.relative_to(state)): p.read_bytes() for p in sorted(state.rglob("*")) if p.is_file()} if state.exists() else {}


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_render_prints_notes_and_warnings_on_stderr_and_a_dns_diff(site_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    first = run("render", str(site_file), "-o", str(out), env=SMARTHOST_ENV)
    assert first.returncode == 0, first.stderr
    found = warnings(first.stderr)
    assert "warning: acme.example, legacy.acme.example, xn--r8jz45g.jp: Outbound mail leaves through the smarthost smtp.provider.example: add its SPF include under policy.spf.include." in found
    assert any(w.startswith("warning: acme.example: Serve build/dns/mta-sts/") for w in found)
    assert any(w.startswith("warning: tls.source is self-signed: every mail program will warn") and "docs/certificates.md" in w for w in found)
    assert any(w.startswith("warning: relay.transports.partner.example: smtp:[mx.partner.example]:25 connects directly to port 25") for w in found)
    assert "warning" not in first.stdout and "policy.spf.include" not in first.stdout
    assert f"DNS: no previous build to compare with: publish every record in {out / 'dns'}/" in first.stdout
    # the notes are in records.json for programs
    assert "policy.spf.include" in (out / "dns/records.json").read_text()

    again = run("render", str(site_file), "-o", str(out), env=SMARTHOST_ENV)
    assert "DNS: no record changed since the previous build" in again.stdout
    assert warnings(again.stderr) == found  # deterministic

    rotated = run("keys", str(site_file), "--rotate", "acme.example", "--force")
    assert rotated.returncode == 0, rotated.stderr
    diff = run("render", str(site_file), "-o", str(out), env=SMARTHOST_ENV)
    lines = diff.stdout.splitlines()
    head = lines.index(f"DNS changes since the previous build: 2 to add, 0 to remove ({out / 'dns'}/):")
    added = lines[head + 1 : head + 3]
    assert added[0].startswith("  + s202611c-ed._domainkey.acme.example TXT v=DKIM1; k=ed25519; p=")
    assert added[1].startswith("  + s202611c._domainkey.acme.example TXT v=DKIM1; k=rsa; p=") and added[1].endswith(" characters)")


def test_dns_prints_notes_on_stderr_and_only_records_on_stdout(site_file: Path) -> None:
    result = run("dns", str(site_file))
    assert result.returncode == 0, result.stderr
    assert any("add its SPF include under policy.spf.include" in w for w in warnings(result.stderr))
    assert "warning" not in result.stdout and "policy.spf.include" not in result.stdout
    sheet = run("dns", str(site_file), "--format", "sheet")
    assert "policy.spf.include" not in sheet.stdout and "add its SPF include" in sheet.stderr


@pytest.mark.parametrize("failure", ["env unset", "file missing", "build dir not ours"])
def test_a_failed_render_leaves_no_new_key_behind(site_file: Path, tmp_path: Path, failure: str) -> None:
    out = tmp_path / "build"
    env = SMARTHOST_ENV
    if failure == "env unset":
        env = {}
    elif failure == "file missing":
        (site_file.parent / "secrets/bob.hash").unlink()
    else:
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
    fresh = run("render", str(site_file), "-o", str(out), env=env)
    assert fresh.returncode == 1 and "Traceback" not in fresh.stderr, fresh.stderr
    assert state_files(site_file) == {}  # no key, no dkim.yaml, no certificate
    # With keys already there, a new domain's keys go again and the rest stays byte for byte.
    assert run("keys", str(site_file)).returncode == 0
    before = state_files(site_file)
    text = site_file.read_text()
    site_file.write_text(text + "  new.example:\n    relay_to: \"smtp:[10.0.0.5]:25\"\n")
    failed = run("render", str(site_file), "-o", str(out), env=env)
    assert failed.returncode == 1, failed.stdout
    assert state_files(site_file) == before
    assert not (site_file.parent / "state/dkim/new.example").exists()


def test_validate_checks_what_render_would_refuse(site_file: Path, write_site) -> None:
    unset = run("validate", str(site_file))
    assert unset.returncode == 1
    assert "site.yaml:52:15: relay.smarthost.password: environment variable SMARTHOST_PASSWORD is not set" in unset.stderr
    ok = run("validate", str(site_file), env=SMARTHOST_ENV)
    assert ok.returncode == 0, ok.stderr
    assert any("smtp:[mx.partner.example]:25 connects directly to port 25" in w for w in warnings(ok.stderr))
    acme = site_file.read_text().replace("  source: self-signed\n", "  source: acme\n  acme: {email: a@acme.example, directory: 'https://acme.test/dir'}\n")
    site_file.write_text(acme)
    accepted = run("validate", str(site_file), env=SMARTHOST_ENV)  # issue 14: acme is rendered
    assert accepted.returncode == 0, accepted.stderr
    assert not (site_file.parent / "state").exists()


def _relay_site(transport: str, smarthost: bool = True) -> dict:
    data = {
        "version": 1,
        "name": "t",
        "hosts": {"out": {"fqdn": "out.t.example", "ipv4": ["192.0.2.11"], "services": ["relay", "mx"], "mx_priority": 10}},
        "relay": {"networks": ["192.168.10.0/24"], "transports": {"partner.example": transport}},
        "tls": {"source": "files", "files": {"cert": "/etc/ssl/c.pem", "key": "/etc/ssl/k.pem"}},
        "domains": {"t.example": {"aliases": {"postmaster": "a@partner.example"}}},
    }
    if smarthost:
        data["relay"]["smarthost"] = {"host": "smtp.isp.example", "username": "u", "password": {"env": "X"}}
    return data


@pytest.mark.parametrize(
    ("transport", "smarthost", "warned"),
    [
        ("smtp:[mx.partner.example]:25", True, True),
        ("smtp:[mx.partner.example]", True, True),  # smtp's default port is 25
        ("smtp:mx.partner.example", True, True),  # by MX: port 25 too
        ("relay:[mx.partner.example]:25", True, True),
        ("smtp:[mx.partner.example]:587", True, False),
        ("smtp:[192.168.1.5]:25", True, False),  # on the LAN: OP25B blocks only the way out
        ("lmtp:[mx.partner.example]:25", True, False),
        ("smtp:[mx.partner.example]:25", False, False),  # no smarthost: port 25 is the way out
    ],
)
def test_op25b_warning_for_direct_port_25_routes_beside_a_smarthost(transport: str, smarthost: bool, warned: bool) -> None:
    site, issues = validate_data(_relay_site(transport, smarthost))
    assert site is not None, issues
    found = [w for w in site_warnings(site) if "OP25B" in w]
    assert bool(found) is warned, found
    if warned:
        assert found[0].startswith(f"relay.transports.partner.example: {transport} connects directly to port 25 of mx.partner.example")


def test_keys_rotate_refuses_a_fresh_standby_and_prints_what_to_publish(site_file: Path) -> None:
    assert run("keys", str(site_file)).returncode == 0
    before = state_files(site_file)
    refused = run("keys", str(site_file), "--rotate", "acme.example")
    assert refused.returncode == 1
    assert "the standby s202611b was made on" in refused.stderr and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert state_files(site_file) == before
    forced = run("keys", str(site_file), "--rotate", "acme.example", "--force")
    assert forced.returncode == 0, forced.stderr
    lines = forced.stdout.splitlines()
    assert lines[0] == "acme.example:"
    assert any(line.startswith("  publish now (the new standby, not signing; the next rotation is allowed from ") for line in lines)
    assert any(line.startswith("    s202611c._domainkey.acme.example TXT v=DKIM1; k=rsa; p=") for line in lines)
    assert any(line.startswith("  keep until ") and "then remove it:" in line for line in lines)
    again = run("keys", str(site_file), "--rotate", "acme.example")
    assert again.returncode == 1 and "the standby s202611c was made on" in again.stderr  # no third rotation in a minute
