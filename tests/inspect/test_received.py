"""Received lines as the MTAs people meet write them, read into hops."""

from __future__ import annotations

import pytest

from provisioner.inspect.message import Field
from provisioner.inspect.received import parse_received, read_chain, tokenize


def hop(value: str):  # type: ignore[no-untyped-def]
    return parse_received(Field(0, 1, "Received", value, value))


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (  # Postfix, TLS
            "from mail.example.org (mail.example.org [192.0.2.10]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) "
            "key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256) (No client certificate requested) "
            "by mx1.example.com (Postfix) with ESMTPS id 4ABC123 for <b@example.com>; Mon, 23 Nov 2026 10:00:04 +0000 (UTC)",
            dict(
                helo="mail.example.org",
                reverse_name="mail.example.org",
                ip="192.0.2.10",
                by="mx1.example.com",
                with_protocol="ESMTPS",
                tls="TLSv1.3 TLS_AES_256_GCM_SHA384",
                queue_id="4ABC123",
                recipient="b@example.com",
            ),
        ),
        (  # Postfix, no reverse name, submission with login
            "from [192.168.1.20] (unknown [198.51.100.7]) (Authenticated sender: alice@example.com) by mail.example.com (Postfix) with ESMTPSA id X1; Mon, 23 Nov 2026 10:00:00 +0900",
            dict(helo="[192.168.1.20]", reverse_name="", reverse_unknown=True, ip="198.51.100.7", with_protocol="ESMTPSA", tls="yes"),
        ),
        (  # Exim: reverse name first, HELO in the comment
            "from mail.example.net ([203.0.113.5] helo=bank.example) by relay.example.com with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) "
            "(envelope-from <x@example.net>) id 1tAbCd-000123-4E for b@example.com; Tue, 24 Nov 2026 10:00:00 +0000",
            dict(
                helo="bank.example",
                reverse_name="mail.example.net",
                ip="203.0.113.5",
                by="relay.example.com",
                with_protocol="esmtps",
                envelope_from="x@example.net",
            ),
        ),
        (  # Sendmail, "may be forged"
            "from helo.example (rdns.example [192.0.2.44] (may be forged)) by mx.example.com (8.17.1/8.17.1) with ESMTP id 2ANA0; Mon, 23 Nov 2026 10:00:00 GMT",
            dict(helo="helo.example", reverse_name="rdns.example", reverse_forged=True, ip="192.0.2.44", with_protocol="ESMTP", queue_id="2ANA0"),
        ),
        (  # Exim, no reverse name: the address as a literal after `from`, the client's port after it
            "from [192.0.2.7] (port=43210 helo=mail.evil.test) by mx.example.com with esmtp (Exim 4.96) id 1t-0A; Mon, 23 Nov 2026 10:00:00 +0000",
            dict(ip="192.0.2.7", helo="mail.evil.test", reverse_name="", with_protocol="esmtp"),
        ),
        (  # Exim with received_header_text showing the port
            "from host.example ([192.0.2.8]:1234 helo=x.example) by mx.example.com with esmtp id 1t-0B; Mon, 23 Nov 2026 10:00:00 +0000",
            dict(ip="192.0.2.8", helo="x.example", reverse_name="host.example"),
        ),
        (  # qmail: the HELO in its own comment, never a reverse name
            "from unknown (HELO mx.example.com) (192.0.2.66) by mail.example.net with SMTP; 23 Nov 2026 10:00:00 -0000",
            dict(ip="192.0.2.66", helo="mx.example.com", reverse_name="", with_protocol="SMTP"),
        ),
        (  # Gmail: trailing dot on the reverse name, implicit TLS
            "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com with SMTPS id x9sor; Mon, 23 Nov 2026 09:00:00 -0800 (PST)",
            dict(helo="mail-sor-f41.google.com", reverse_name="mail-sor-f41.google.com", ip="209.85.220.41", tls="yes"),
        ),
        (  # Microsoft 365: IPv6 in the comment, TLS in a version= comment
            "from TYAPR01MB1234.jpnprd01.prod.outlook.com (2603:1096:404:8000::12) by OS3PR01MB5678.jpnprd01.prod.outlook.com (2603:1096:604:1::9) "
            "with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8158.10; Mon, 23 Nov 2026 01:00:00 +0000",
            dict(
                helo="tyapr01mb1234.jpnprd01.prod.outlook.com",
                ip="2603:1096:404:8000::12",
                by="os3pr01mb5678.jpnprd01.prod.outlook.com",
                with_protocol="Microsoft SMTP Server",
                tls="TLS1.2 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            ),
        ),
        (  # Dovecot LMTP: no address at all
            "from mx1.example.com by mx1.example.com with LMTP id kB3x (envelope-from <a@example.org>) for <b@example.com>; Mon, 23 Nov 2026 10:00:05 +0000",
            dict(helo="mx1.example.com", ip="", with_protocol="LMTP", envelope_from="a@example.org", recipient="b@example.com"),
        ),
        (  # an IPv6 address literal
            "from client.example (client.example [IPv6:2001:db8::25]) by mx.example.com (Postfix) with ESMTP id A; Mon, 23 Nov 2026 10:00:00 +0000",
            dict(ip="2001:db8::25", reverse_name="client.example"),
        ),
    ],
)
def test_mta_layouts(value: str, want: dict[str, object]) -> None:
    got = hop(value)
    assert {k: getattr(got, k) for k in want} == want
    assert got.time is not None


def test_comment_with_semicolon_does_not_end_the_clauses() -> None:
    got = hop("from a.example (a.example [192.0.2.1]) (note; with semicolon) by b.example with ESMTP; Mon, 23 Nov 2026 10:00:00 +0000")
    assert got.by == "b.example" and got.time is not None


def test_tokenizer_handles_nesting_quotes_and_unbalanced_input() -> None:
    assert [t.text for t in tokenize('a (b (c) d) "e f" [g h] <i j>; k')] == ["a", "b (c) d", '"e f"', "[g h]", "<i j>", ";", "k"]
    assert [t.text for t in tokenize("from x (unclosed comment")] == ["from", "x", "unclosed comment"]


def test_chain_order_delays_and_problems() -> None:
    lines = [  # as in a message: newest first
        "from b.example (b.example [192.0.2.2]) by c.example with ESMTP; Mon, 23 Nov 2026 10:00:03 +0000",
        "from a.example (a.example [192.0.2.1]) by b.example with ESMTP; Mon, 23 Nov 2026 10:00:05 +0000",
        "from pc (unknown [203.0.113.9]) by a.example with ESMTP; Mon, 23 Nov 2026 10:00:00 +0000",
    ]
    chain = read_chain([Field(i, i + 1, "Received", v, v) for i, v in enumerate(lines)])
    assert [h.by for h in chain] == ["a.example", "b.example", "c.example"]
    assert [h.delay.total_seconds() if h.delay is not None else None for h in chain] == [None, 5.0, -2.0]
    assert [p.en for p in chain[0].problems] == ["203.0.113.9 has no reverse DNS name (PTR): mail from it is often refused"]
    assert [p.en for p in chain[2].problems] == ["2 s earlier than the hop before it: the two clocks differ slightly"]


def test_unreadable_date_is_a_problem_not_a_crash() -> None:
    (only,) = read_chain([Field(0, 1, "Received", "from x by y; yesterday-ish", "")])
    assert only.time is None and [p.en for p in only.problems] == ["no readable time ('yesterday-ish')"]
    (none,) = read_chain([Field(0, 1, "Received", "from x by y", "")])
    assert [p.en for p in none.problems] == ["no time"]
