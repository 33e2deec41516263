"""Messages crafted to fool a reader (and found to fool an earlier inspect in review): each must
end in the verdict a careful postmaster would give, never a false PASS, and never a traceback.
DNS is a table (StaticResolver); keys are made here."""

from __future__ import annotations

import base64

import dkim
import nacl.signing
import pytest

from provisioner.inspect import Trust, Verdict, inspect_message, inspection_json, inspection_text, parse_message
from provisioner.inspect.message import decode_value
from provisioner.inspect.verify import DkimReason
from tests.inspect.conftest import DATE, message, table

TRUST = Trust.of(["mx.me.test"])
BORDER = "Received: from out.example.org (out.example.org [192.0.2.1]) by mx.me.test (Postfix) with ESMTPS id A1; " + DATE
SIGNER = nacl.signing.SigningKey(bytes(range(32)))
KEY = {"ed._domainkey.example.org|TXT": [f"v=DKIM1; k=ed25519; p={base64.b64encode(SIGNER.verify_key.encode()).decode()}"]}


def run(raw: bytes, trust: Trust = TRUST, verify: bool = False):  # type: ignore[no-untyped-def]
    return inspect_message(parse_message("m", raw), trust, table(**KEY) if verify else None)


def signed(*headers: str, body: str = "hello\r\n", include: tuple[bytes, ...] = (b"from", b"subject", b"date"), length: bool = False) -> bytes:
    raw = message(*headers, body=body)
    signature = dkim.sign(
        raw,
        b"ed",
        b"example.org",
        base64.b64encode(SIGNER.encode()),
        signature_algorithm=b"ed25519-sha256",
        include_headers=list(include),
        length=length,
    )
    return signature + raw


def genuine_signed() -> bytes:
    return signed("From: Bank <info@example.org>", "Subject: your statement", f"Date: {DATE}")


def test_a_genuine_signature_passes_on_the_table() -> None:  # the baseline the cases below change one thing of
    got = run(genuine_signed(), Trust(), verify=True)
    assert got.verdict is Verdict.PASS and got.signatures[0].check is not None and got.signatures[0].check.reason is DkimReason.VERIFIED


# -- From: addresses come from the raw field; an encoded word is never syntax


def test_encoded_at_and_angle_in_the_display_name_do_not_become_the_address() -> None:
    raw = message(
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=attacker@evil.test; dmarc=pass header.from=evil.test",
        BORDER,
        "From: =?utf-8?q?info=40example=2Eorg_=3Cinfo=40example=2Eorg=3E?= <attacker@evil.test>",
    )
    got = run(raw)
    assert [m.address for m in got.from_] == ["attacker@evil.test"] and got.from_[0].display == "info@example.org <info@example.org>"
    assert got.from_domain == "evil.test"


def test_encoded_comma_keeps_one_mailbox() -> None:
    got = run(message("From: =?utf-8?q?Doe=2C_John_=3B_x=40y?= <john@example.org>"))
    assert [(m.display, m.address) for m in got.from_] == [("Doe, John ; x@y", "john@example.org")]
    assert not any("several domains" in n.en for n in got.notes)


def test_trusted_dmarc_pass_for_another_from_domain_is_not_used() -> None:
    raw = message("Authentication-Results: mx.me.test; dmarc=pass header.from=evil.test", BORDER, "From: info@example.org")
    got = run(raw)
    assert got.verdict is not Verdict.PASS and any("not for example.org" in n.en for n in got.notes)


@pytest.mark.parametrize(
    "froms",
    [("From: info@example.org", "From: attacker@evil.test"), ("From: info@example.org, attacker@evil.test",)],
)
def test_several_from_fields_or_domains_are_never_a_pass(froms: tuple[str, ...]) -> None:
    raw = message("Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=info@example.org; dmarc=pass header.from=example.org", BORDER, *froms)
    got = run(raw)
    assert got.verdict is Verdict.UNKNOWN and "several From" in got.summary[0].en


# -- the border: only addresses make a hop ours, and results count only above the border


def test_content_filter_hops_on_loopback_do_not_hide_the_border() -> None:
    raw = message(
        "Authentication-Results: mx.me.test; spf=fail smtp.mailfrom=a@example.org; dmarc=fail header.from=example.org",
        "Received: from localhost (localhost [127.0.0.1]) by mx.me.test (Postfix) with ESMTP id B2; " + DATE,
        "Received: from mx.me.test ([127.0.0.1]) by localhost (amavisd-new, port 10024) with ESMTP id C3; " + DATE,
        "Received: from bad.test (bad.test [192.0.2.66]) by mx.me.test (Postfix) with ESMTP id A1; " + DATE,
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=a@example.org; dmarc=pass header.from=example.org",
        "Received: from out.example.org (out.example.org [192.0.2.1]) by mx.me.test (Postfix) with ESMTPS id Z9; " + DATE,
        "From: a@example.org",
    )
    got = run(raw)
    assert got.border is not None and got.border.ip == "192.0.2.66" and not got.border_assumed
    assert [h.trusted for h in got.authentication_results] == [True, False]
    assert "below the Received line" in got.authentication_results[1].trust_note.en
    assert got.verdict is Verdict.FAIL


def test_results_in_a_trusted_name_without_any_trusted_received_line_are_not_trusted() -> None:
    raw = message(
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=a@example.org; dmarc=pass header.from=example.org",
        "Received: from out.example.org (out.example.org [192.0.2.1]) by mail.elsewhere.test with ESMTPS id Z9; " + DATE,
        "From: a@example.org",
    )
    got = run(raw)
    (header,) = got.authentication_results
    assert not header.trusted and "no Received line of a server you trust" in header.trust_note.en
    assert got.verdict is Verdict.UNKNOWN


@pytest.mark.parametrize(
    "line",
    [
        "from mx.me.test (mx.me.test [192.0.2.66] (may be forged)) by mx.me.test with ESMTP id S1",  # Sendmail
        "from unknown (HELO mx.me.test) (192.0.2.66) by mx.me.test with SMTP",  # qmail
        "from [192.0.2.66] (helo=mx.me.test) by mx.me.test with esmtp id E1",  # Exim without reverse name
        "from mx.me.test ([192.0.2.66]:4321 helo=mx.me.test) by mx.me.test with esmtp id E2",  # Exim with the port
    ],
)
def test_a_sender_naming_itself_like_our_server_is_still_the_border(line: str) -> None:
    raw = message(
        "Authentication-Results: mx.me.test; spf=fail smtp.mailfrom=a@example.org; dmarc=fail header.from=example.org",
        f"Received: {line}; {DATE}",
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=a@example.org; dmarc=pass header.from=example.org",
        "From: a@example.org",
    )
    got = run(raw)
    assert got.border is not None and got.border.ip == "192.0.2.66"
    assert [h.trusted for h in got.authentication_results] == [True, False] and got.verdict is Verdict.FAIL


@pytest.mark.parametrize("helo", ["by", "with", "for", "id", "via", "a["])
def test_a_helo_that_reads_like_a_clause_does_not_hide_the_address(helo: str) -> None:
    """`EHLO by` is a valid name; read as the start of the `by` clause it hid the MX's own
    `(unknown [ip])` comment, the hop looked local, and the forged lines below it were trusted."""
    raw = message(
        f"Received: from {helo} (unknown [203.0.113.5]) by mx.me.test (Postfix) with ESMTP id 4AbC for <victim@me.test>; " + DATE,
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=info@example.org; dmarc=pass header.from=example.org",
        "Received: from out.example.org (out.example.org [192.0.2.1]) by mx.me.test (Postfix) with ESMTPS id A1 (envelope-from <info@example.org>); " + DATE,
        "From: Bank <info@example.org>",
    )
    for got in (run(raw), run(raw, verify=True)):
        assert got.border is not None and got.border.ip == "203.0.113.5" and got.border.helo == helo
        assert not got.authentication_results[0].trusted and got.verdict is not Verdict.PASS


def test_a_from_clause_without_a_readable_address_ends_the_walk() -> None:
    raw = message(
        "Received: from mystery.test (some text the parser cannot place) by mx.me.test with ESMTP id Q; " + DATE,
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=info@example.org; dmarc=pass header.from=example.org",
        BORDER,
        "From: info@example.org",
    )
    got = run(raw)
    assert got.border is not None and got.border.from_name == "mystery.test" and not got.authentication_results[0].trusted


def test_our_own_lmtp_line_without_an_address_is_local_delivery() -> None:
    raw = message(
        "Received: from mx.me.test by mx.me.test (Dovecot) with LMTP id L1 (envelope-from <info@example.org>) for <b@me.test>; " + DATE,
        "Authentication-Results: mx.me.test; spf=pass smtp.mailfrom=info@example.org; dmarc=pass header.from=example.org",
        BORDER,
        "From: info@example.org",
    )
    got = run(raw)
    assert got.border is not None and got.border.ip == "192.0.2.1" and got.verdict is Verdict.PASS


def test_without_trusted_names_the_assumed_border_skips_only_declared_addresses() -> None:
    """A private address is not skipped for being private (style rule 15): only when declared."""
    raw = message(
        "Received: from gw.corp.test (gw.corp.test [10.1.2.3]) by store.corp.test with ESMTP id Q; " + DATE,
        "Received: from out.example.org (out.example.org [192.0.2.1]) by gw.corp.test with ESMTPS id P; " + DATE,
        "From: a@example.org",
    )
    got = run(raw, Trust.of(addresses=["10.1.2.3"]))
    assert got.border is not None and got.border.ip == "192.0.2.1" and got.border_assumed
    undeclared = run(raw, Trust())
    assert undeclared.border is not None and undeclared.border.ip == "10.1.2.3" and undeclared.border_assumed
    assert any("--trust-address 10.1.2.3" in n.en for n in undeclared.notes)


def test_return_path_and_envelope_from_below_the_border_are_ignored() -> None:
    raw = message(
        BORDER,
        "Return-Path: <a@example.org>",
        "Received: from x by mx.me.test with LMTP (envelope-from <a@example.org>); " + DATE,
        "From: a@example.org",
    )
    got = run(raw, verify=True)
    assert got.return_path is None and any("Return-Path field stands below" in n.en for n in got.notes)
    assert got.spf is None and got.verdict is Verdict.UNKNOWN  # 192.0.2.1 is example.org's, but nothing says it sent as example.org


# -- a valid signature that does not cover what the reader sees


def test_a_second_subject_added_to_a_signed_message_is_not_a_pass() -> None:
    raw = b"Subject: URGENT: wire the money today\r\n" + genuine_signed()
    got = run(raw, Trust(), verify=True)
    assert got.verdict is Verdict.UNKNOWN and "Subject" in got.summary[0].en
    assert any("does not cover Subject" in n.en for n in got.notes)


def test_an_unsigned_subject_is_not_a_pass_but_an_unsigned_reply_to_is_a_note() -> None:
    unsigned_subject = signed("From: info@example.org", "Subject: hi", f"Date: {DATE}", include=(b"from", b"date"))
    got = run(unsigned_subject, Trust(), verify=True)
    assert got.verdict is Verdict.UNKNOWN and "does not cover Subject" in got.summary[0].en
    reply_to = b"Reply-To: attacker@evil.test\r\n" + genuine_signed()
    got = run(reply_to, Trust(), verify=True)
    assert got.verdict is Verdict.PASS and any("does not cover Reply-To" in n.en for n in got.notes)


def test_body_appended_after_an_l_tag_is_not_a_pass() -> None:
    raw = signed("From: info@example.org", "Subject: hi", f"Date: {DATE}", length=True) + b"Click here: http://evil.test/\r\n"
    got = run(raw, Trust(), verify=True)
    check = got.signatures[0].check
    assert check is not None and check.reason is DkimReason.VERIFIED and check.appended == len(b"Click here: http://evil.test/\r\n")
    assert got.verdict is Verdict.UNKNOWN and any("covers only part of the body" in n.en for n in got.notes)


@pytest.mark.parametrize(
    "recorded",
    [
        "dkim=pass header.d=example.org header.s=ed; spf=pass smtp.mailfrom=bounce@evil.test",
        "dkim=pass header.d=example.org header.s=ed; spf=pass smtp.mailfrom=bounce@evil.test; dmarc=pass header.from=example.org",
        "dmarc=pass header.from=example.org",  # the receiver's DMARC passed on that signature, without saying so
    ],
)
@pytest.mark.parametrize("label", ["unsigned Subject added", "body appended after l="])
def test_a_recorded_dkim_pass_for_a_partial_signature_is_not_a_pass(label: str, recorded: str) -> None:
    if label == "unsigned Subject added":
        replay = b"Subject: URGENT: wire the money today\r\n" + signed("From: info@example.org", f"Date: {DATE}", include=(b"from", b"date"))
    else:
        replay = signed("From: info@example.org", "Subject: hi", f"Date: {DATE}", length=True) + b"Click here: http://evil.test/\r\n"
    raw = (f"Authentication-Results: mx.me.test; {recorded}\r\n{BORDER}\r\n").encode() + replay
    for got in (run(raw), run(raw, verify=True)):
        assert got.verdict is Verdict.UNKNOWN and "does not cover" in got.summary[0].en


@pytest.mark.parametrize(
    "recorded",
    [
        "spf=pass smtp.mailfrom=x@bounce.example.org; dkim=none; dmarc=fail policy.dmarc=reject header.from=example.org",  # aspf=s
        "spf=fail smtp.mailfrom=x@evil.test; dkim=pass header.d=mail.example.org; dmarc=fail policy.dmarc=reject header.from=example.org",
    ],
)
def test_a_recorded_dmarc_fail_stands(recorded: str) -> None:
    got = run(message(f"Authentication-Results: mx.me.test; {recorded}", BORDER, "From: info@example.org"))
    assert got.verdict is Verdict.FAIL and any("reject" in t.en for t in got.summary)


# -- missing or doubtful evidence is unknown, not fail


@pytest.mark.parametrize(
    ("results", "verdict", "says"),
    [
        ("dkim=fail header.d=example.org", Verdict.UNKNOWN, "recorded no SPF result"),  # SPF may have passed
        ("spf=temperror smtp.mailfrom=a@example.org; dkim=fail header.d=example.org", Verdict.UNKNOWN, "DNS lookup failed"),
        ("spf=fail smtp.mailfrom=a@example.org; dmarc=permerror header.from=example.org", Verdict.UNKNOWN, "is permerror"),
        ("spf=pass smtp.mailfrom=a@example.org; dmarc=bestguesspass header.from=example.org", Verdict.PASS, "authorises (SPF)"),
        ("spf=fail smtp.mailfrom=a@example.org; dmarc=fail policy.dmarc=REJECT header.from=example.org", Verdict.FAIL, "reject"),
        ("dmarc=pass header.from=example.org", Verdict.PASS, "recorded that the message passed DMARC"),
    ],
)
def test_recorded_results(results: str, verdict: Verdict, says: str) -> None:
    got = run(message(f"Authentication-Results: mx.me.test; {results}", BORDER, "From: a@example.org"))
    assert got.verdict is verdict and says in " ".join(t.en for t in got.summary)


def test_headers_only_with_verify_is_unknown_not_fail() -> None:
    head = genuine_signed().split(b"\r\n\r\n", 1)[0] + b"\r\n"
    got = run(head, Trust(), verify=True)
    assert got.verdict is Verdict.UNKNOWN and "only the header section" in got.summary[0].en


# -- input that used to raise


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: =?utf-8?b?A?=\r\nFrom: a@example.org\r\n\r\nx\r\n",
        b"Subject: \x1b$B\x80\x80\x1b(B\r\nFrom: a@example.org\r\n\r\nx\r\n",
        b"Subject: \x1b(I\xc3\xa9\r\nFrom: a@example.org\r\n\r\nx\r\n",  # half-width kana mode, then a non-ASCII byte
        message("Received: from a (a [192.0.2.9]) by mx.me.test; Mon, 1 Jan 99999999999999999999 10:00:00 +0000", "From: a@example.org"),
        message("Received: from a (a [192.0.2.9]) by mx.me.test; Mon, 23 Nov 2026 10:00:00 +99999999999999", "From: a@example.org"),
        b"Subject : hi\r\n" + genuine_signed(),  # dkimpy refuses the header section
        genuine_signed().replace(b"\r\n", b"\r\r\n", 1),
        message("Authentication-Results: mx.me.test; dmarc=fail policy.dmarc=REJECT", BORDER, "From: a@example.org"),
    ],
)
def test_input_that_used_to_raise(raw: bytes) -> None:
    got = run(raw, verify=True)
    assert got.verdict in Verdict
    inspection_json(got)
    assert inspection_text(got, "en") and inspection_text(got, "ja")


def test_binary_body_with_crlf_line_ends_is_a_message() -> None:
    got = parse_message("m", b"From: a@example.org\r\nSubject: x\r\n\r\n\x00\x01binary\r\n")
    assert [f.key for f in got.fields] == ["from", "subject"]


def test_raw_euc_jp_and_shift_jis_subjects_are_readable() -> None:
    for codec in ("euc_jp", "cp932"):
        got = parse_message("m", b"Subject: " + "請求書の送付について".encode(codec) + b"\r\nFrom: a@example.org\r\n\r\nx\r\n")
        assert got.first("subject") is not None and got.first("subject").value == "請求書の送付について"  # type: ignore[union-attr]
    assert decode_value("=?utf-8?b?A?=") == "=?utf-8?b?A?="
