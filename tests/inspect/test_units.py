"""Authentication-Results trust, alignment, DMARC lookup and verdicts on a table resolver
(StaticResolver): the cases a live DNS cannot easily stage, such as a failing lookup."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.inspect import MessageUnreadable, Trust, Verdict, inspect_message, inspection_json, parse_message
from provisioner.inspect.authresults import parse_authres
from provisioner.inspect.identity import AlignmentResult, alignment, organizational_domain
from provisioner.inspect.text import CATALOGUE
from provisioner.inspect.verify import DmarcOutcome, find_dmarc
from provisioner.mailauth.resolver import Outcome, StaticResolver
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES

DATE = "Mon, 23 Nov 2026 10:00:00 +0000"


def message(*headers: str, body: str = "hi\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


@pytest.mark.parametrize(
    ("identifier", "from_domain", "want"),
    [
        ("example.com", "example.com", AlignmentResult.STRICT),
        ("Bounce.Example.COM.", "example.com", AlignmentResult.RELAXED),
        ("mail.example.co.uk", "news.example.co.uk", AlignmentResult.RELAXED),
        ("example.co.uk", "other.co.uk", AlignmentResult.NONE),  # co.uk is a public suffix
        ("evil.test", "example.com", AlignmentResult.NONE),
        ("", "example.com", AlignmentResult.UNKNOWN),
        ("xn--4dkua4c.jp", "メール.jp", AlignmentResult.STRICT),  # IDN compared as A-labels
    ],
)
def test_alignment(identifier: str, from_domain: str, want: AlignmentResult) -> None:
    assert alignment(identifier, from_domain) is want


def test_organizational_domain() -> None:
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organizational_domain("mx1.smallco.example") == "smallco.example"


def test_authres_parses_properties_comments_and_refuses_garbage() -> None:
    authserv, results, error = parse_authres(
        "mx.google.com; dkim=pass header.i=@example.com header.s=s1 header.b=abc; "
        "spf=pass (google.com: domain of a@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@example.com; "
        "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com; arc=none"
    )
    assert (authserv, error) == ("mx.google.com", "")
    assert [(r.method, r.result) for r in results] == [("dkim", "pass"), ("spf", "pass"), ("dmarc", "pass"), ("arc", "none")]
    assert results[1].prop("smtp", "mailfrom") == "a@example.com" and results[0].prop("header", "s") == "s1"
    authserv, results, error = parse_authres("mx.example.com; spf")
    assert authserv == "mx.example.com" and results == () and "Expected" in error


def test_arc_authentication_results_instance_and_no_counting() -> None:
    raw = message(
        "ARC-Authentication-Results: i=1; mx.example.com; dkim=pass header.d=example.org; dmarc=pass header.from=example.org",
        "Received: from x.test (x.test [192.0.2.9]) by mx.example.com with ESMTP; " + DATE,
        "From: a@example.org",
        f"Date: {DATE}",
    )
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.example.com"]))
    (header,) = got.authentication_results
    assert header.arc_instance == 1 and header.trusted and header.results[0].method == "dkim"
    assert got.verdict is Verdict.UNKNOWN  # ARC records what an earlier hop saw; it is not this receiver's result


def test_malformed_results_from_a_trusted_server_are_not_counted() -> None:
    raw = message("Authentication-Results: mx.example.com; dmarc", "From: a@example.org")
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.example.com"]))
    (header,) = got.authentication_results
    assert not header.trusted and header.error and got.verdict is Verdict.UNKNOWN


def test_trusted_results_decide_without_verify() -> None:
    raw = message(
        "Authentication-Results: mx.example.com; spf=softfail smtp.mailfrom=x.test; dkim=pass header.d=example.org header.s=s1",
        "Received: from x.test (x.test [192.0.2.9]) by mx.example.com with ESMTP; " + DATE,
        "From: a@example.org",
    )
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.example.com"]))
    assert got.verdict is Verdict.PASS and "valid signature of example.org" in got.summary[0].en


def table(**extra: object) -> StaticResolver:
    rows: dict[tuple[str, str], object] = {
        ("example.org", "TXT"): ["v=spf1 ip4:192.0.2.1 -all"],
        ("_dmarc.example.org", "TXT"): ["v=DMARC1; p=reject; sp=quarantine; adkim=s"],
        ("x.test", "TXT"): ["v=spf1 ip4:192.0.2.9 -all"],
    }
    rows.update({tuple(k.split("|")): v for k, v in extra.items()})  # type: ignore[misc]
    return StaticResolver(rows)  # type: ignore[arg-type]


def test_dmarc_found_at_the_organizational_domain_uses_sp_and_its_alignment_mode() -> None:
    domain, record, _, error = find_dmarc("news.example.org", table())
    assert (domain, error) == ("example.org", None) and record is not None and record.adkim == "s"
    raw = message("Return-Path: <a@example.org>", "Received: from x (x [192.0.2.1]) by mx.me.test with ESMTP; " + DATE, "From: a@news.example.org")
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.me.test"]), table())
    assert got.dmarc is not None and got.dmarc.outcome is DmarcOutcome.PASS and got.dmarc.policy == "quarantine"  # aspf=r: relaxed SPF aligns


def test_two_dmarc_records_are_a_permerror() -> None:
    resolver = table(**{"_dmarc.example.org|TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]})
    _, record, detail, error = find_dmarc("example.org", resolver)
    assert record is None and error is DmarcOutcome.PERMERROR and "2 DMARC records" in detail


def test_a_failing_lookup_gives_unknown_not_fail() -> None:
    resolver = table(**{"_dmarc.example.org|TXT": Outcome.SERVFAIL, "example.org|TXT": Outcome.TIMEOUT})
    raw = message("Return-Path: <a@example.org>", "Received: from x (x [192.0.2.7]) by mx.me.test with ESMTP; " + DATE, "From: a@example.org")
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.me.test"]), resolver)
    assert got.verdict is Verdict.UNKNOWN and "a DNS lookup failed" in got.summary[0].en


def test_null_sender_is_checked_by_helo() -> None:
    raw = message("Return-Path: <>", "Received: from x.test (x.test [192.0.2.9]) by mx.me.test with ESMTP; " + DATE, "From: MAILER-DAEMON@x.test")
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.me.test"]), table())
    assert got.spf is not None and (got.spf.mail_from, got.spf.domain, got.spf.result.value) == ("", "x.test", "pass")
    assert got.verdict is Verdict.PASS


def test_header_oddities_are_noted() -> None:
    raw = message("From: a@example.org, b@other.test", "Sender: list@lists.test", "Subject: x")
    notes = [n.en for n in inspect_message(parse_message("m", raw)).notes]
    assert any("several domains (example.org, other.test)" in n for n in notes)
    assert any("Sender list@lists.test" in n for n in notes)
    assert any("No Return-Path" in n for n in notes)
    two = inspect_message(parse_message("m", message("From: a@example.org", "From: b@example.org")))
    assert any("2 From fields" in n.en for n in two.notes)


def test_site_trust_names_hosts_addresses_and_domains() -> None:
    site = load_site(EXAMPLES / "multi-host" / "site.yaml").site
    trust = Trust.from_site(site, ["mx.google.com"])
    assert "mx.google.com" in trust.names and all(h.fqdn in trust.names for h in site.hosts.values())
    assert set(site.domains) <= trust.own_domains and trust.addresses


def test_json_is_complete_and_stable() -> None:
    raw = message("From: =?utf-8?b?5bGx55Sw?= <a@example.org>", "Subject: x")
    one = inspection_json(inspect_message(parse_message("m", raw)), "ja")
    assert one == inspection_json(inspect_message(parse_message("m", raw)), "ja")
    assert one["from"] == [{"display": "山田", "address": "a@example.org", "domain": "example.org"}]
    assert one["verdict"] == "unknown" and one["summary"][0].startswith("未検証")


def test_every_sentence_has_both_languages_and_the_same_placeholders() -> None:
    import string

    for key, (en, ja) in CATALOGUE.items():
        names = {f for _, f, _, _ in string.Formatter().parse(en) if f}
        assert ja.strip() and names - {"domain_hint"} == {f for _, f, _, _ in string.Formatter().parse(ja) if f} - {"domain_hint"}, key


_NAMES = st.sampled_from(
    ["Received", "Authentication-Results", "ARC-Authentication-Results", "DKIM-Signature", "From", "Return-Path", "Sender", "Subject", "Date"]
)
_VALUES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=120),
    st.sampled_from(
        [
            "from a (b [192.0.2.1]) by c with ESMTPS; Mon, 23 Nov 2026 10:00:00 +0000",
            "mx.me.test; dkim=pass header.d=example.org; spf=fail smtp.mailfrom=x",
            "v=1; a=rsa-sha256; d=example.org; s=s1; h=from; bh=AAAA; b=AAAA",
            "v=1; a=ed25519-sha256; d=example.org; s=s1; h=from:from; bh=; b=; x=1",
            "<>",
            "=?utf-8?b?broken",
            "i=1; mx.me.test; arc=pass",
        ]
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=12), st.text(max_size=200))
def test_random_headers_never_raise_even_with_verify(headers: list[tuple[str, str]], body: str) -> None:
    raw = ("\r\n".join(f"{n}: {' '.join(v.split())}" for n, v in headers) + "\r\n\r\n" + body).encode()
    try:
        parsed = parse_message("r", raw)
    except MessageUnreadable:
        return
    got = inspect_message(parsed, Trust.of(["mx.me.test"]), table())
    assert got.verdict in Verdict
    inspection_json(got)


def test_without_return_path_the_recorded_envelope_sender_is_used_or_spf_is_skipped() -> None:
    border = "Received: from x (x [192.0.2.1]) by mx.me.test with ESMTP; " + DATE
    lmtp = "Received: from mx.me.test by mx.me.test with LMTP id q (envelope-from <a@example.org>) for <b@me.test>; " + DATE
    got = inspect_message(parse_message("m", message(lmtp, border, "From: a@example.org")), Trust.of(["mx.me.test"]), table())
    assert got.spf is not None and (got.spf.mail_from, got.spf.result.value) == ("a@example.org", "pass")
    bare = inspect_message(parse_message("m", message(border, "From: a@example.org")), Trust.of(["mx.me.test"]), table())
    assert bare.spf is None and any("SPF was not checked" in n.en for n in bare.notes)
    assert bare.verdict is Verdict.UNKNOWN  # no signature, and SPF unknown: nothing decides either way
    assert "SPF could not be checked" in bare.summary[0].en
