"""inspect/analyze.py: what decides a verdict, the notes on odd headers, the site's trust, and that no header
makes it raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.inspect import MessageUnreadable, Trust, Verdict, inspect_message, inspection_json, parse_message
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES
from tests.inspect.conftest import DATE, message, table


def test_trusted_results_decide_without_verify() -> None:
    raw = message(
        "Authentication-Results: mx.example.com; spf=softfail smtp.mailfrom=x.test; dkim=pass header.d=example.org header.s=s1",
        "Received: from x.test (x.test [192.0.2.9]) by mx.example.com with ESMTP; " + DATE,
        "From: a@example.org",
    )
    got = inspect_message(parse_message("m", raw), Trust.of(["mx.example.com"]))
    assert got.verdict is Verdict.PASS and "valid signature of example.org" in got.summary[0].en


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
