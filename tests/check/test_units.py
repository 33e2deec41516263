"""query / parse / spf / judge on a fake resolver: no network at all."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioner.check import Report, Severity, report_json, run_check
from provisioner.check.findings import Category, Finding
from provisioner.check.judge import ListHealth, ReportTarget, judge_dkim, judge_dmarc, judge_dnsbl
from provisioner.dns.records import Level, Purpose, Record, site_records
from provisioner.keys.store import ensure_keys
from provisioner.mailauth.grammar import Invalid, SpfRecord, dnsbl_meaning, parse_dkim, parse_dmarc, parse_spf
from provisioner.mailauth.resolver import Answer, Nameserver, Outcome, StaticResolver, dnsbl_name, reverse_name
from provisioner.mailauth.spf import SpfProblemKind, SpfResult, check_host, walk_spf
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY

# ---------------------------------------------------------------------------- query names


def test_dnsbl_names_are_absolute_and_ipv6_is_nibbles() -> None:
    assert dnsbl_name("192.0.2.10", "zen.spamhaus.org") == "10.2.0.192.zen.spamhaus.org."
    assert dnsbl_name("127.0.0.2", "zen.spamhaus.org.") == "2.0.0.127.zen.spamhaus.org."
    v6 = dnsbl_name("2001:db8::10", "zen.spamhaus.org")
    assert v6 == "0.1.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.zen.spamhaus.org."
    assert len(v6.removesuffix("zen.spamhaus.org.").strip(".").split(".")) == 32  # nibbles, not 16-bit groups
    assert reverse_name("192.0.2.10") == "10.2.0.192.in-addr.arpa."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", Nameserver("127.0.0.1", 53)),
        ("127.0.0.1:5353", Nameserver("127.0.0.1", 5353)),
        ("::1", Nameserver("::1", 53)),
        ("[::1]:5300", Nameserver("::1", 5300)),
    ],
)
def test_nameserver_parse(text: str, expected: Nameserver) -> None:
    assert Nameserver.parse(text) == expected


@pytest.mark.parametrize("text", ["ns.example", "1.2.3.4:0", "1.2.3.4:x", "[::1]x"])
def test_nameserver_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        Nameserver.parse(text)


def test_static_resolver_outcomes() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["x"], ("t.example", "A"): Outcome.TIMEOUT})
    assert fake.resolve("a.example", "TXT").records == ("x",)
    assert fake.resolve("a.example", "MX").outcome is Outcome.NODATA
    assert fake.resolve("b.example", "A").outcome is Outcome.NXDOMAIN
    assert fake.resolve("t.example", "A").failed
    assert all(name.endswith(".") for name, _ in fake.asked)


# ---------------------------------------------------------------------------- SPF


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("v=spf1 ip4:192.0.2.1~all", "not an IP address"),
        ("v=spf1 ip4:192.0.2.1/33 -all", "prefix"),
        ("v=spf1 include -all", "needs a domain"),
        ("v=spf1 redirect=a.example redirect=b.example", "more than once"),
        ("v=spf1 foo:bar -all", "not an SPF mechanism"),
        ("v=spf10 -all", "v=spf1"),
    ],
)
def test_spf_syntax_errors(text: str, reason: str) -> None:
    parsed = parse_spf(text)
    assert isinstance(parsed, Invalid) and reason in parsed.reason


def test_spf_redirect_ignored_with_all() -> None:
    parsed = parse_spf("v=spf1 a -all redirect=x.example")
    assert isinstance(parsed, SpfRecord) and parsed.redirect is None


def test_spf_walk_counts_through_includes_and_redirect() -> None:
    fake = StaticResolver(
        {
            ("d.example", "TXT"): ["v=spf1 mx include:i.example redirect=r.example"],
            ("d.example", "MX"): ["10 mx.d.example."],
            ("mx.d.example", "A"): ["192.0.2.1"],
            ("i.example", "TXT"): ["v=spf1 a:h.example exists:e.example ~all"],
            ("h.example", "A"): ["192.0.2.2"],
            ("e.example", "A"): ["127.0.0.2"],
            ("r.example", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"],
        }
    )
    walk = walk_spf("d.example", fake)
    assert (walk.lookups, walk.void_lookups, walk.problems) == (5, 0, [])
    assert walk.chain == ["d.example", "i.example", "r.example"]


def test_spf_loop_is_detected() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 include:b.example -all"], ("b.example", "TXT"): ["v=spf1 redirect=a.example"]})
    walk = walk_spf("a.example", fake)
    loops = [p for p in walk.problems if p.kind is SpfProblemKind.LOOP]
    assert [p.detail for p in loops] == ["a.example -> b.example -> a.example"]


def test_spf_void_lookups_counted() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 a:gone1.example a:gone2.example exists:gone3.example mx:a.example -all"]})
    walk = walk_spf("a.example", fake)
    assert walk.void_lookups == 4  # three NXDOMAIN names and an MX NODATA
    assert walk.lookups == 4


def test_spf_include_without_record_and_temperror() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 include:none.example include:slow.example -all"], ("slow.example", "TXT"): Outcome.TIMEOUT})
    kinds = [p.kind for p in walk_spf("a.example", fake).problems]
    assert kinds == [SpfProblemKind.NO_RECORD, SpfProblemKind.TEMPERROR]


def test_pyspf_check_host_runs_on_our_resolver() -> None:
    fake = StaticResolver(
        {("a.example", "TXT"): ["v=spf1 ip4:192.0.2.10 ip6:2001:db8::/64 include:b.example -all"], ("b.example", "TXT"): ["v=spf1 ip4:198.51.100.7 -all"]}
    )
    assert check_host("192.0.2.10", "a.example", "mail.a.example", fake).result is SpfResult.PASS
    assert check_host("2001:db8::10", "a.example", "mail.a.example", fake).result is SpfResult.PASS
    assert check_host("198.51.100.7", "a.example", "mail.a.example", fake).result is SpfResult.PASS
    assert check_host("203.0.113.1", "a.example", "mail.a.example", fake).result is SpfResult.FAIL
    assert ("b.example.", "TXT") in fake.asked


def test_pyspf_enforces_void_limit_on_our_resolver() -> None:
    fake = StaticResolver({("a.example", "TXT"): ["v=spf1 a:x1.example a:x2.example a:x3.example ip4:192.0.2.10 -all"]})
    assert check_host("192.0.2.10", "a.example", "h.a.example", fake).result is SpfResult.PERMERROR


# ---------------------------------------------------------------------------- DKIM, DMARC


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


def test_dkim_parse() -> None:
    assert isinstance(parse_dkim("k=rsa; v=DKIM1; p=AAAA"), Invalid)
    assert isinstance(parse_dkim("v=DKIM1; k=rsa"), Invalid)
    assert isinstance(parse_dkim("v=DKIM1; p=not base64!"), Invalid)
    parsed = parse_dkim("v=DKIM1; p=")
    assert not isinstance(parsed, Invalid) and parsed.revoked


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


# ---------------------------------------------------------------------------- DNSBL


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


def test_run_check_walks_dnsbl_test_entry_first() -> None:
    """End to end on a fake resolver built from the generated records: everything passes."""
    import tempfile
    from pathlib import Path

    from provisioner.site.model import DnsblSite

    site = load_site(EXAMPLES / "all-in-one" / "site.yaml").site
    site = site.model_copy(update={"policy": site.policy.model_copy(update={"dnsbl": (DnsblSite(zone="bl.example"),)})})
    with tempfile.TemporaryDirectory() as tmp:
        keys, _ = ensure_keys(site, Path(tmp) / "state", today=FIXED_DAY, workers=1)
        records = site_records(site, keys, today=FIXED_DAY)
        table: dict[tuple[str, str], list[str]] = {}
        for r in records.records:
            table.setdefault((r.name, r.type), []).append(r.value)
        table[("2.0.0.127.bl.example", "A")] = ["127.0.0.2"]
        fake = StaticResolver(table)
        seen: list[tuple[int, int]] = []
        report = run_check(site, keys, fake, concurrency=4, today=FIXED_DAY, progress=lambda done, total: seen.append((done, total)))
    assert [f for f in report.findings if not f.passed] == []
    assert fake.asked[:2] == [(".", "NS"), ("2.0.0.127.bl.example.", "A")]  # the resolver replies, then the list's test entry
    assert seen[-1][0] == seen[-1][1] == len(site.domains) + len(site.hosts)
    assert all(name.endswith(".") for name, _ in fake.asked)


# ---------------------------------------------------------------------------- report


def test_exit_status_and_json_shape() -> None:
    warn = Finding("dmarc.policy-none", "a.example", Category.DMARC, Severity.WARNING, "_dmarc.a.example", "p=quarantine", "p=none", "fix")
    ok = Finding("mx.match", "a.example", Category.MX, Severity.PASS, "a.example", "10 mx.", "10 mx.", "")
    report = Report((ok, warn), ("a.example",), (), "127.0.0.1", "127.0.0.1")
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1
    doc = report_json(report)
    assert doc["summary"] == {"pass": 1, "warning": 1, "error": 0}
    assert doc["domains"][0]["status"] == "warning"
    assert doc["domains"][0]["findings"][1] == {
        "id": "dmarc.policy-none",
        "category": "DMARC",
        "severity": "warning",
        "subject": "_dmarc.a.example",
        "expected": "p=quarantine",
        "seen": "p=none",
        "advice": "fix",
    }


def test_stale_dkim_selector_is_flagged() -> None:
    from provisioner.check.judge import judge_stale_dkim

    name = "s202601a._domainkey.a.example"
    [finding] = judge_stale_dkim("a.example", "s202601a", _answer(name, "v=DKIM1; k=rsa; p=AAAA"))
    assert (finding.id, finding.severity, finding.advice) == ("dkim.stale", Severity.WARNING, f"delete the TXT record at {name}")
    assert judge_stale_dkim("a.example", "s202601a", _answer(name)) == []
