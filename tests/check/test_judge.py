"""check/judge.py: DKIM, DMARC and DNSBL answers judged into findings (pure, no network)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioner.check import Severity
from provisioner.check.judge import ListHealth, ReportTarget, judge_dkim, judge_dmarc, judge_dnsbl
from provisioner.dns.records import Level, Purpose, Record
from provisioner.mailauth.grammar import Invalid, dnsbl_meaning, parse_dmarc
from provisioner.mailauth.resolver import Answer, Outcome, dnsbl_name


def _record(name: str, value: str, level: Level = Level.REQUIRED) -> Record:
    return Record("a.example", name, "TXT", value, 3600, level, Purpose("", ""))


def _rsa_p(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return base64.b64encode(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def _answer(name: str, *values: str) -> Answer:
    return Answer(name + ".", "TXT", Outcome.ANSWER if values else Outcome.NXDOMAIN, values)


def test_dkim_small_keys() -> None:
    name = "s1._domainkey.a.example"
    p1024 = _rsa_p(1024)
    findings = judge_dkim("a.example", _record(name, f"v=DKIM1; k=rsa; p={p1024}"), _answer(name, f"v=DKIM1; k=rsa; p={p1024}"))
    assert {(f.id, f.severity) for f in findings} == {("dkim.match", Severity.PASS), ("dkim.key-small", Severity.WARNING)}
    # a 512-bit modulus (cryptography will not generate one): < 1024 is an error (RFC 8301 §3.2)
    tiny = rsa.RSAPublicNumbers(65537, (1 << 511) | 1).public_key()
    p512 = base64.b64encode(tiny.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    findings = judge_dkim("a.example", _record(name, f"v=DKIM1; k=rsa; p={p1024}"), _answer(name, f"v=DKIM1; k=rsa; p={p512}"))
    assert {f.id for f in findings} == {"dkim.mismatch", "dkim.key-too-small"}


def test_dmarc_policy_none_is_a_warning_and_rua_needs_mail() -> None:
    name = "_dmarc.a.example"
    expected = _record(name, "v=DMARC1; p=quarantine; rua=mailto:d@reports.example")
    seen = _answer(name, "v=DMARC1; p=none; rua=mailto:d@reports.example")
    void = Answer("reports.example.", "MX", Outcome.NXDOMAIN)
    targets = {
        "reports.example": ReportTarget("reports.example", void, void, void, Answer("a.example._report._dmarc.reports.example.", "TXT", Outcome.NXDOMAIN))
    }
    got = {(f.id, f.severity) for f in judge_dmarc("a.example", expected, seen, targets)}
    assert ("dmarc.policy-none", Severity.WARNING) in got
    assert ("dmarc.mismatch", Severity.ERROR) in got
    assert ("dmarc.rua-no-mail", Severity.ERROR) in got
    assert ("dmarc.report-unauthorized", Severity.ERROR) in got


def test_dmarc_two_records() -> None:
    name = "_dmarc.a.example"
    got = judge_dmarc("a.example", _record(name, "v=DMARC1; p=reject"), _answer(name, "v=DMARC1; p=reject", "v=DMARC1; p=none"), {})
    assert [f.id for f in got] == ["dmarc.multiple"]
    assert isinstance(parse_dmarc("p=reject; v=DMARC1"), Invalid)
    parsed = parse_dmarc("v=DMARC1; p=reject; pct=50")
    assert not isinstance(parsed, Invalid) and parsed.removed_tags == ("pct",)


def _health(zone: str, listed: tuple[str, ...] = ("127.0.0.2",), clean: bool = True) -> ListHealth:
    return ListHealth(
        zone,
        Answer(dnsbl_name("127.0.0.2", zone), "A", Outcome.ANSWER if listed else Outcome.NXDOMAIN, listed),
        Answer(dnsbl_name("127.0.0.1", zone), "A", Outcome.NXDOMAIN if clean else Outcome.ANSWER, () if clean else ("127.0.0.2",)),
    )


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("127.0.0.2", "SBL"),
        ("127.0.0.3", "SBL CSS"),
        ("127.0.0.4", "XBL"),
        ("127.0.0.7", "XBL"),
        ("127.0.0.9", "DROP"),
        ("127.0.0.10", "PBL, ISP maintained"),
        ("127.0.0.11", "PBL, Spamhaus maintained"),
    ],
)
def test_zen_codes_in_words(code: str, words: str) -> None:
    answer = Answer(dnsbl_name("192.0.2.10", "zen.spamhaus.org"), "A", Outcome.ANSWER, (code,))
    [finding] = judge_dnsbl("mail.a.example", "192.0.2.10", _health("zen.spamhaus.org"), answer)
    assert (finding.id, finding.severity) == ("dnsbl.listed", Severity.ERROR)
    assert words in finding.seen


@pytest.mark.parametrize("code", ["127.255.255.252", "127.255.255.254", "127.255.255.255"])
def test_spamhaus_error_codes_are_unknown_not_listed(code: str) -> None:
    answer = Answer(dnsbl_name("192.0.2.10", "zen.spamhaus.org"), "A", Outcome.ANSWER, (code,))
    [finding] = judge_dnsbl("mail.a.example", "192.0.2.10", _health("zen.spamhaus.org"), answer)
    assert (finding.id, finding.severity) == ("dnsbl.unknown", Severity.WARNING)
    assert "could not determine (public resolver or query limit)" in finding.seen
    # a public resolver answering the test entry with an error code: nothing is judged
    [finding] = judge_dnsbl("mail.a.example", "192.0.2.10", _health("zen.spamhaus.org", listed=(code,)), None)
    assert finding.id == "dnsbl.unknown"


def test_broken_list_is_not_trusted() -> None:
    for health in (_health("bl.example", listed=()), _health("bl.example", clean=False)):
        [finding] = judge_dnsbl("h.a.example", "192.0.2.10", health, None)
        assert (finding.id, finding.severity) == ("dnsbl.unknown", Severity.WARNING)
    assert "listed with return code 127.0.0.2" == dnsbl_meaning("bl.example", "127.0.0.2")


def test_stale_dkim_selector_is_flagged() -> None:
    from provisioner.check.judge import judge_stale_dkim

    name = "s202601a._domainkey.a.example"
    [finding] = judge_stale_dkim("a.example", "s202601a", _answer(name, "v=DKIM1; k=rsa; p=AAAA"))
    assert (finding.id, finding.severity, finding.advice) == ("dkim.stale", Severity.WARNING, f"delete the TXT record at {name}")
    assert judge_stale_dkim("a.example", "s202601a", _answer(name)) == []
