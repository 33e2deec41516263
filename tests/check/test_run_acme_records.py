"""`check` judges the records tls.source acme adds (issue 14) as what they are: CAA on each host's
name (RFC 8659) under TLS, the mta-sts.<domain> CNAME (RFC 8461 §3.3) under MTA-STS, the
autoconfig.<domain> CNAME under autoconfig; a missing or wrong one is named as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.check import run_check
from provisioner.check.findings import Category, Finding, Severity
from provisioner.dns.records import site_records
from provisioner.keys.store import ensure_keys
from provisioner.mailauth.resolver import StaticResolver
from provisioner.site.validate import load_site
from tests.conftest import ALICE_HASH, FIXED_DAY

SITE = f"""\
version: 1
name: acmecheck
hosts:
  mx1: {{fqdn: mx1.acme.test, os: debian-13, ipv4: [192.0.2.10], services: [mx, submission, imap], mx_priority: 10}}
  mx2: {{fqdn: mx2.acme.test, os: debian-13, ipv4: [192.0.2.20], services: [backup-mx], mx_priority: 20}}
policy:
  dnsbl: []
  mta_sts: {{mode: enforce}}
tls:
  source: acme
  acme: {{email: hostmaster@acme.test, account_uri: "https://acme-v02.api.letsencrypt.org/acme/acct/42"}}
domains:
  acme.test:
    mailboxes:
      alice: {{password: "{ALICE_HASH}"}}
    aliases: {{postmaster: alice}}
"""
CAA = '0 issue "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/42"'
KIND = {"CAA": (Category.TLS, "caa"), "mta-sts.acme.test": (Category.MTA_STS, "mta-sts-host"), "autoconfig.acme.test": (Category.AUTOCONFIG, "autoconfig")}


def _check(tmp_path: Path, change: dict[tuple[str, str], list[str] | None] | None = None) -> list[Finding]:
    (tmp_path / "site.yaml").write_text(SITE)
    site = load_site(tmp_path / "site.yaml").site
    keys, _ = ensure_keys(site, tmp_path / "state", today=FIXED_DAY, workers=1)
    table: dict[tuple[str, str], list[str]] = {}
    for record in site_records(site, keys, today=FIXED_DAY).records:
        table.setdefault((record.name, record.type), []).append(record.value)
    for key, values in (change or {}).items():
        if values is None:
            table.pop(key)
        else:
            table[key] = values
    # The site sets no DMARC rua: its warning is not about these records.
    return [f for f in run_check(site, keys, StaticResolver(table), concurrency=2, today=FIXED_DAY).findings if f.id != "dmarc.no-rua"]


def _about(findings: list[Finding], subject: str, rtype: str) -> list[Finding]:
    category, prefix = KIND[rtype if rtype == "CAA" else subject]
    return [f for f in findings if f.subject == subject and f.id.startswith(prefix + ".") and f.category is category]


def test_published_as_rendered_every_acme_record_passes_under_its_own_category(tmp_path: Path) -> None:
    findings = _check(tmp_path)
    assert [f for f in findings if not f.passed] == []
    for subject, rtype in [("mx1.acme.test", "CAA"), ("mx2.acme.test", "CAA"), ("mta-sts.acme.test", "CNAME"), ("autoconfig.acme.test", "CNAME")]:
        [finding] = _about(findings, subject, rtype)
        assert finding.severity is Severity.PASS and finding.id.endswith(".match")
    # Nothing about CAA is reported as SPF, nothing about mta-sts. as autoconfig.
    assert not [f for f in findings if f.category is Category.SPF and "issue" in f.expected]
    assert not [f for f in findings if f.category is Category.AUTOCONFIG and f.subject.startswith("mta-sts.")]


@pytest.mark.parametrize(
    ("subject", "rtype", "answer", "outcome"),
    [
        ("mx1.acme.test", "CAA", None, "missing"),
        ("mx2.acme.test", "CAA", ['0 issue "sectigo.com"'], "mismatch"),
        ("mx1.acme.test", "CAA", [CAA, '0 issue "pki.goog"'], "unexpected"),
        ("mta-sts.acme.test", "CNAME", None, "missing"),
        ("mta-sts.acme.test", "CNAME", ["mx2.acme.test."], "mismatch"),
        ("autoconfig.acme.test", "CNAME", ["elsewhere.test."], "mismatch"),
    ],
)
def test_a_wrong_acme_record_is_named_under_its_category(tmp_path: Path, subject: str, rtype: str, answer: list[str] | None, outcome: str) -> None:
    findings = _check(tmp_path, {(subject, rtype): answer})
    [finding] = [f for f in _about(findings, subject, rtype) if not f.passed]
    assert finding.id.endswith("." + outcome)
    assert [f for f in findings if not f.passed] == [finding]
