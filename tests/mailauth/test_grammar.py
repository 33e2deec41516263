"""mailauth/grammar.py: SPF terms and DKIM tag lists as the parsers read them. No DNS."""

from __future__ import annotations

import pytest

from provisioner.mailauth.grammar import (
    DmarcRecord,
    DnsblCode,
    Invalid,
    MxValue,
    SpfRecord,
    classify_dnsbl_answer,
    is_dmarc,
    is_spf,
    mailto_domain,
    parse_dkim,
    parse_dmarc,
    parse_mx,
    parse_spf,
    parse_tags,
)


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


def test_dkim_parse() -> None:
    assert isinstance(parse_dkim("k=rsa; v=DKIM1; p=AAAA"), Invalid)
    assert isinstance(parse_dkim("v=DKIM1; k=rsa"), Invalid)
    assert isinstance(parse_dkim("v=DKIM1; p=not base64!"), Invalid)
    parsed = parse_dkim("v=DKIM1; p=")
    assert not isinstance(parsed, Invalid) and parsed.revoked


# ---------------------------------------------------------------------------- added with the move to mailauth


@pytest.mark.parametrize(("text", "reason"), [("v=DKIM1; k=rsa; k=ed25519", "appears twice"), ("v=DKIM1; novalue", "is not tag=value"), ("1x=y", "is not tag=value")])
def test_a_tag_list_with_a_tag_twice_or_a_bad_tag_is_invalid(text: str, reason: str) -> None:
    parsed = parse_tags(text)
    assert isinstance(parsed, Invalid) and reason in parsed.reason
    assert parse_tags(" v = DKIM1 ;; p= ") == {"v": "DKIM1", "p": ""}


@pytest.mark.parametrize("text", ["v=spf1", "V=SPF1 -all", "v=spf1 ip4:192.0.2.1"])
def test_is_spf(text: str) -> None:
    assert is_spf(text)


@pytest.mark.parametrize("text", ["v=spf10", "v=spf1-all", " v=spf1 -all", "spf1"])
def test_is_not_spf(text: str) -> None:
    assert not is_spf(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("v=DMARC1; p=block", "p=block is not none, quarantine or reject"),
        ("v=DMARC1; p=none; sp=maybe", "sp=maybe"),
        ("v=DMARC1; p=none; np=x", "np=x"),
        ("v=DMARC1; p=none; adkim=x", "adkim=x is not r or s"),
        ("v=DMARC1; p=none; pct=101", "pct=101"),
        ("v=DMARC1; p=none; rua=d@example.org", "is not a URI"),
    ],
)
def test_dmarc_values_come_from_closed_sets(text: str, reason: str) -> None:
    parsed = parse_dmarc(text)
    assert isinstance(parsed, Invalid) and reason in parsed.reason


def test_dmarc_defaults_and_report_domains() -> None:
    parsed = parse_dmarc("v=DMARC1; rua=mailto:a@Reports.Example!10m, mailto:b@x.example; t=y")
    assert isinstance(parsed, DmarcRecord)
    assert (parsed.policy, parsed.policy_given, parsed.adkim, parsed.aspf, parsed.testing) == ("none", False, "r", "r", True)
    assert [mailto_domain(u) for u in parsed.rua] == ["reports.example", "x.example"]
    assert mailto_domain("https://x.example/") is None and mailto_domain("mailto:@x.example") is None
    assert is_dmarc("v=DMARC1; p=none") and is_dmarc("v = DMARC1") and not is_dmarc("v=DMARC10")


def test_mx_values() -> None:
    assert parse_mx("10 MX.Example") == MxValue(10, "mx.example.")
    assert str(parse_mx("0 .")) == "0 ."  # the null MX (RFC 7505)
    assert isinstance(parse_mx("mx.example"), Invalid) and isinstance(parse_mx("-1 mx.example."), Invalid)


@pytest.mark.parametrize(
    ("value", "code"),
    [("127.0.0.2", DnsblCode.LISTED), ("127.0.0.255", DnsblCode.LISTED), ("127.255.255.254", DnsblCode.ERROR), ("127.0.1.2", DnsblCode.UNEXPECTED), ("x", DnsblCode.UNEXPECTED)],
)
def test_dnsbl_answers_are_classified(value: str, code: DnsblCode) -> None:
    assert classify_dnsbl_answer(value) is code
