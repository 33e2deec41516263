"""Crafted messages, each a case a postmaster meets, judged with --verify against a real nsd
serving the example site's zones (the keys `provision keys` made) and a foreign sender's."""

from __future__ import annotations

import pytest

from provisioner.inspect import Trust, Verdict, inspect_message, inspection_text, parse_message
from provisioner.inspect.analyze import Evidence, Inspection
from provisioner.inspect.verify import DkimOutcome, DkimReason, DmarcOutcome
from tests.inspect.conftest import (
    BARE,
    DOMAIN,
    EVIL,
    EVIL_IP,
    EVIL_SELECTOR,
    LIST_IP,
    OUR_IP,
    OUR_MX,
    RECIPIENT_MX,
    World,
    compose,
    deliver,
    received,
    sign,
)

TRUST = Trust.of([RECIPIENT_MX])
T1 = "Mon, 23 Nov 2026 10:00:02 +0000"
T2 = "Mon, 23 Nov 2026 10:00:05 +0000"


def run(world: World, raw: bytes, trust: Trust = TRUST, verify: bool = True) -> Inspection:
    return inspect_message(parse_message("sample.eml", raw), trust, world.resolver() if verify else None)


def genuine(world: World) -> bytes:
    signed = sign(compose(f"Alice <alice@{DOMAIN}>"), DOMAIN, world.our_selector, world.our_key)
    return deliver(signed, received(OUR_MX, OUR_IP, OUR_MX, RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}")


def test_genuine_signed_mail_passes_aligned(served: World) -> None:
    got = run(served, genuine(served))
    assert got.verdict is Verdict.PASS and got.evidence is Evidence.VERIFY
    (view,) = got.signatures
    assert view.check is not None and view.check.outcome is DkimOutcome.PASS
    assert (view.signature.domain, view.signature.selector) == (DOMAIN, served.our_selector)
    assert got.spf is not None and got.spf.result.value == "pass" and got.spf.address == OUR_IP
    assert got.dmarc is not None and got.dmarc.outcome is DmarcOutcome.PASS and got.dmarc.policy == "quarantine"
    assert got.dmarc.spf_aligned and got.dmarc.dkim_aligned_pass == (DOMAIN,)
    assert got.border is not None and got.border.ip == OUR_IP and not got.border_assumed and got.border.problems == []
    assert got.reverse is not None and got.reverse.confirmed == OUR_MX  # forward-confirmed reverse DNS
    assert f"valid signature of {DOMAIN}" in got.summary[0].en and "本物です" in got.summary[0].ja


def test_ed25519_and_rsa_signatures_both_verify(served: World) -> None:
    message = compose(f"alice@{DOMAIN}")
    both = sign(sign(message, DOMAIN, served.our_selector, served.our_key), DOMAIN, served.ed_selector, served.ed_key, b"ed25519-sha256")
    got = run(served, deliver(both, received(OUR_MX, OUR_IP, OUR_MX, RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}"))
    assert [(v.signature.algorithm, v.check.outcome if v.check else None) for v in got.signatures] == [
        ("ed25519-sha256", DkimOutcome.PASS),
        ("rsa-sha256", DkimOutcome.PASS),
    ]
    assert got.verdict is Verdict.PASS


def test_forged_from_with_foreign_return_path(served: World) -> None:
    """The classic: From says our domain, the envelope and the server are somebody else's."""
    raw = deliver(
        compose(f"Smallco Billing <billing@{DOMAIN}>"), received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1), mail_from=f"bounce@{EVIL}"
    )
    got = run(served, raw, Trust.from_site(served.site, [RECIPIENT_MX]))
    assert got.verdict is Verdict.FAIL
    assert got.spf is not None and got.spf.result.value == "pass" and got.spf.domain == EVIL  # SPF passes, for the wrong domain
    assert got.dmarc is not None and got.dmarc.outcome is DmarcOutcome.FAIL and not got.dmarc.spf_aligned
    text = got.summary[0].en
    assert text == f"From says {DOMAIN}, but the mail was sent by a server of {EVIL}, which is not {DOMAIN}, and no aligned signature exists."
    assert f"{DOMAIN} asks receivers to treat such mail as spam (DMARC p=quarantine)." in [s.en for s in got.summary]
    assert any("one of your own domains" in s.en for s in got.summary)
    assert any("set policy.dmarc.p: reject" in n.en for n in got.notes)  # what to do next: it is quarantine now


def test_unrelated_server_without_spf(served: World) -> None:
    raw = deliver(compose(f"billing@{DOMAIN}"), received("bank-secure.example", "203.0.113.99", "unknown", RECIPIENT_MX, T1), mail_from=f"x@{BARE}")
    got = run(served, raw)
    assert got.verdict is Verdict.FAIL
    assert got.spf is not None and got.spf.result.value == "none"
    assert got.summary[0].en.startswith(f"From says {DOMAIN}, but the mail was sent by an unrelated server (203.0.113.99) and no aligned signature exists")
    assert any("no reverse DNS" in p.en for p in got.border.problems)  # type: ignore[union-attr]


def test_broken_body_hash_is_named(served: World) -> None:
    """A forwarder changed the body (a list footer): the signature breaks and, since the
    forwarder is in nobody's SPF, nothing else vouches for the From domain."""
    signed = sign(compose(f"alice@{DOMAIN}"), DOMAIN, served.our_selector, served.our_key)
    changed = signed + b"--\r\nlist footer\r\n"
    raw = deliver(changed, received("lists.other.test", LIST_IP, "lists.other.test", RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}")
    got = run(served, raw)
    (view,) = got.signatures
    assert view.check is not None and (view.check.outcome, view.check.reason) == (DkimOutcome.FAIL, DkimReason.BODY_CHANGED)
    assert got.verdict is Verdict.FAIL
    assert f"the signature of {DOMAIN} does not verify: the body was changed after signing" in got.summary[0].en
    assert "署名の後で本文が変更されています" in got.summary[0].ja
    assert any(n.en.startswith("Mailing lists and forwarders") for n in got.notes)


def test_mailing_list_with_arc_is_explained_not_passed(served: World) -> None:
    """A list verifies the author's signature, adds a footer (breaking it) and ARC-seals what it
    saw (RFC 8617). --verify checks the chain and says what the list recorded; the verdict stays
    a fail, because ARC is for a receiver's local policy, not a pass."""
    import dkim

    signed = sign(compose(f"alice@{DOMAIN}"), DOMAIN, served.our_selector, served.our_key)
    at_list = (
        f"Authentication-Results: lists.{EVIL}; dkim=pass header.d={DOMAIN}; spf=pass smtp.mailfrom={DOMAIN}; dmarc=pass header.from={DOMAIN}\r\n".encode()
        + received(OUR_MX, OUR_IP, OUR_MX, f"lists.{EVIL}", "Mon, 23 Nov 2026 10:00:01 +0000")
        + signed
        + b"-- \r\nlist footer\r\n"
    )
    sealed = b"".join(dkim.arc_sign(at_list, EVIL_SELECTOR.encode(), EVIL.encode(), served.evil_key, f"lists.{EVIL}".encode())) + at_list
    got = run(served, deliver(sealed, received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1), mail_from=f"list-bounces@{EVIL}"))
    (view,) = got.signatures
    assert view.check is not None and view.check.reason is DkimReason.BODY_CHANGED
    assert got.arc is not None and (got.arc.result, got.arc.sealers) == ("pass", (EVIL,)) and f"dkim=pass header.d={DOMAIN}" in got.arc.first_results
    assert any(n.en.startswith(f"The ARC chain verifies (sealed by {EVIL})") for n in got.notes)
    assert got.verdict is Verdict.FAIL

    tampered = sealed.replace(b"list footer", b"list footer, changed after sealing")
    got = run(served, deliver(tampered, received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1), mail_from=f"list-bounces@{EVIL}"))
    assert got.arc is not None and got.arc.result == "fail" and any("does not verify" in n.en for n in got.notes)


@pytest.mark.parametrize(("selector", "reason"), [("gone1", DkimReason.REVOKED), ("never1", DkimReason.NO_KEY)])
def test_revoked_and_missing_keys(served: World, selector: str, reason: DkimReason) -> None:
    signed = sign(compose(f"alice@{DOMAIN}"), DOMAIN, selector, served.evil_key)
    got = run(served, deliver(signed, received("lists.other.test", LIST_IP, "lists.other.test", RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}"))
    (view,) = got.signatures
    assert view.check is not None and (view.check.outcome, view.check.reason) == (DkimOutcome.PERMERROR, reason)
    assert got.verdict is Verdict.FAIL


def test_changed_signed_header_is_named(served: World) -> None:
    signed = sign(compose(f"alice@{DOMAIN}"), DOMAIN, served.our_selector, served.our_key)
    changed = signed.replace(b"Subject: Quarterly report", b"Subject: Quarterly report - URGENT")
    got = run(served, deliver(changed, received("lists.other.test", LIST_IP, "lists.other.test", RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}"))
    (view,) = got.signatures
    assert view.check is not None and view.check.reason is DkimReason.HEADERS_CHANGED
    assert got.verdict is Verdict.FAIL


def test_signature_for_another_domain_does_not_count(served: World) -> None:
    signed = sign(compose(f"ceo@{DOMAIN}"), EVIL, EVIL_SELECTOR, served.evil_key)
    got = run(served, deliver(signed, received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1), mail_from=f"ceo@{EVIL}"))
    (view,) = got.signatures
    assert view.check is not None and view.check.outcome is DkimOutcome.PASS  # a valid signature...
    assert view.alignment.value == "none"  # ...of the wrong domain
    assert got.verdict is Verdict.FAIL
    assert f"no aligned signature exists (it is signed only by {EVIL})" in got.summary[0].en


def test_several_authentication_results_only_trusted_count(served: World) -> None:
    """Without --verify the trusted server's record decides; the sender's own claims and a
    field forged with the trusted name below an older hop are shown and never counted."""
    message = compose(f"billing@{DOMAIN}", extra=[f"Authentication-Results: {RECIPIENT_MX}; dkim=pass header.d={DOMAIN}; dmarc=pass header.from={DOMAIN}"])
    raw = deliver(
        message,
        received("pc.evil.test", "203.0.113.77", "pc.evil.test", f"mail.{EVIL}", "Mon, 23 Nov 2026 09:59:58 +0000"),
        received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1),
        mail_from=f"bounce@{EVIL}",
        auth_results=[
            f"{RECIPIENT_MX}; spf=pass smtp.mailfrom={EVIL}; dkim=none; dmarc=fail (p=quarantine) header.from={DOMAIN}",
            f"mail.{EVIL}; dkim=pass header.d={DOMAIN}; dmarc=pass header.from={DOMAIN}",
        ],
    )
    got = run(served, raw, verify=False)
    trusted = [(h.authserv_id, h.trusted) for h in got.authentication_results]
    assert trusted == [(RECIPIENT_MX, True), (f"mail.{EVIL}", False), (RECIPIENT_MX, False)]
    assert "forged" in got.authentication_results[2].trust_note.en
    assert got.evidence is Evidence.AUTHENTICATION_RESULTS and got.verdict is Verdict.FAIL
    text = inspection_text(got)
    assert "[not trusted] mail.evil.test" in text and "[trusted] mx.recipient.test" in text


def test_results_forged_under_the_trusted_name_just_below_its_received_line(served: World) -> None:
    """Sent straight to the MX with a made-up field in the trusted server's name (OpenDKIM only
    removes those with a dkim result): it ends up right below the border's Received line."""
    message = compose(f"ceo@{DOMAIN}", extra=[])
    forged = f"Authentication-Results: {RECIPIENT_MX}; spf=pass smtp.mailfrom={DOMAIN}; dmarc=pass header.from={DOMAIN}\r\n".encode()
    raw = deliver(forged + message, received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1), mail_from=f"x@{EVIL}")
    got = run(served, raw, verify=False)
    (header,) = got.authentication_results
    assert header.authserv_id == RECIPIENT_MX and not header.trusted and "forged" in header.trust_note.en
    assert got.verdict is Verdict.UNKNOWN  # never PASS on a field the sender wrote


def test_without_trust_or_verify_the_verdict_is_unknown_but_facts_are_given(served: World) -> None:
    raw = deliver(
        compose(f"billing@{DOMAIN}"),
        received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1),
        mail_from=f"bounce@{EVIL}",
        auth_results=[f"{RECIPIENT_MX}; dmarc=pass header.from={DOMAIN}"],
    )
    got = run(served, raw, Trust(), verify=False)
    assert got.verdict is Verdict.UNKNOWN and got.evidence is Evidence.NONE
    assert [s.en for s in got.summary][1:] == [
        f"The envelope sender's domain {EVIL} is not the From domain {DOMAIN}: SPF cannot vouch for the From address.",
        "The message carries no DKIM signature.",
    ]
    assert got.border_assumed and any("Assumed" in n.en for n in got.notes)


def test_received_chain_out_of_order(served: World) -> None:
    raw = deliver(
        genuine(served),
        received(RECIPIENT_MX, "192.0.2.200", RECIPIENT_MX, "store.recipient.test", "Sun, 22 Nov 2026 08:00:00 +0000", protocol="ESMTP"),
    )
    got = run(served, raw, verify=False)
    hops = got.hops
    assert [h.by for h in hops] == [RECIPIENT_MX, "store.recipient.test"]
    assert hops[1].delay is not None and hops[1].delay.total_seconds() == -(26 * 3600 + 2)
    assert any(p.en.startswith("breaks chronology: 26 h earlier") for p in hops[1].problems)
    assert any(p.ja.startswith("時刻の順序が逆です: 前の中継より 26 h 前") for p in hops[1].problems)
    assert hops[0].tls.startswith("TLSv1.3") and hops[1].tls == ""


def test_helo_that_does_not_match_the_address(served: World) -> None:
    raw = deliver(compose(f"alice@{DOMAIN}"), received(OUR_MX, EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}")
    got = run(served, raw)
    assert got.border is not None
    assert f"said HELO {OUR_MX}, but {EVIL_IP} is mail.{EVIL}" in got.border.problems[0].en
    assert got.verdict is Verdict.FAIL and got.spf is not None and got.spf.result.value == "fail"


def test_reverse_dns_that_does_not_resolve_back_is_named(served: World) -> None:
    raw = deliver(compose(f"alice@{EVIL}"), received(f"bank-login.{EVIL}", "203.0.113.77", f"bank-login.{EVIL}", RECIPIENT_MX, T1), mail_from=f"alice@{EVIL}")
    got = run(served, raw)
    assert got.reverse is not None and got.reverse.names == (f"bank-login.{EVIL}",) and got.reverse.confirmed == ""
    assert [p.en for p in got.border.problems] == [  # type: ignore[union-attr]
        f"203.0.113.77 reverse-resolves to bank-login.{EVIL}, but no such name resolves back to 203.0.113.77 (not forward-confirmed)"
    ]
    ok = run(served, deliver(compose(f"alice@{EVIL}"), received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", RECIPIENT_MX, T1), mail_from=f"alice@{EVIL}"))
    assert ok.reverse is not None and ok.reverse.confirmed == f"mail.{EVIL}" and ok.border.problems == []  # type: ignore[union-attr]


def test_iso_2022_jp_subject_and_name_are_decoded(served: World) -> None:
    subject = "=?ISO-2022-JP?B?GyRCJDQwRkZiJE4bKEI=?=\r\n =?ISO-2022-JP?B?GyRCJCpDTiRpJDsbKEI=?="  # folded over two lines, two encoded words
    name = "=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?="
    signed = sign(compose(f"{name} <alice@{DOMAIN}>", subject=subject), DOMAIN, served.our_selector, served.our_key)
    got = run(served, deliver(signed, received(OUR_MX, OUR_IP, OUR_MX, RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}"))
    assert got.subject == "ご案内のお知らせ"
    assert got.from_[0].display == "山田" and got.from_[0].address == f"alice@{DOMAIN}"
    assert got.verdict is Verdict.PASS  # encoded words are signed as written


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_text_report_in_both_languages(served: World, lang: str) -> None:
    text = inspection_text(run(served, genuine(served)), lang)
    assert ("Verdict: PASS" if lang == "en" else "判定: 合格") in text
    assert f"DKIM d={DOMAIN} s={served.our_selector}: pass" in text
