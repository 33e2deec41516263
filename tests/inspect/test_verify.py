"""inspect/verify.py (--verify): DMARC lookup and SPF on a table resolver (StaticResolver): the cases a live
DNS cannot easily stage, such as a failing lookup."""

from __future__ import annotations

from provisioner.inspect import Trust, Verdict, inspect_message, parse_message
from provisioner.inspect.verify import DmarcOutcome, find_dmarc
from provisioner.mailauth.resolver import Outcome
from tests.inspect.conftest import DATE, message, table


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


def test_without_return_path_the_recorded_envelope_sender_is_used_or_spf_is_skipped() -> None:
    border = "Received: from x (x [192.0.2.1]) by mx.me.test with ESMTP; " + DATE
    lmtp = "Received: from mx.me.test by mx.me.test with LMTP id q (envelope-from <a@example.org>) for <b@me.test>; " + DATE
    got = inspect_message(parse_message("m", message(lmtp, border, "From: a@example.org")), Trust.of(["mx.me.test"]), table())
    assert got.spf is not None and (got.spf.mail_from, got.spf.result.value) == ("a@example.org", "pass")
    bare = inspect_message(parse_message("m", message(border, "From: a@example.org")), Trust.of(["mx.me.test"]), table())
    assert bare.spf is None and any("SPF was not checked" in n.en for n in bare.notes)
    assert bare.verdict is Verdict.UNKNOWN  # no signature, and SPF unknown: nothing decides either way
    assert "SPF could not be checked" in bare.summary[0].en
