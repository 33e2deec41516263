"""Put the readings together: who the message claims to be from, what trusted servers recorded,
what re-verification finds, and a verdict in plain words.

The verdict follows DMARC's rule (RFC 7489 §3.1, §4.2): a message is what its From says when
SPF passed for an aligned envelope sender, or a DKIM signature with an aligned d= verifies.
Evidence comes from --verify (fresh) or else from Authentication-Results added by servers the
user trusts; without either, the verdict is 'unknown' and only the facts are shown.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from provisioner.check.query import Resolver
from provisioner.check.spf import SpfResult
from provisioner.inspect.authresults import AuthResults, MethodResult, read_authentication_results
from provisioner.inspect.identity import Alignment, Mailbox, aligned, alignment, domain_of, mailboxes, normal_domain, return_path
from provisioner.inspect.message import Message
from provisioner.inspect.received import Hop, read_chain
from provisioner.inspect.text import Text, say

if TYPE_CHECKING:
    from provisioner.site.model import Site
from provisioner.inspect.verify import (
    ArcCheck,
    DkimCheck,
    DkimOutcome,
    DkimReason,
    DmarcCheck,
    DmarcOutcome,
    ReverseCheck,
    Signature,
    SpfCheck,
    evaluate_dmarc,
    read_signatures,
    verify_arc,
    verify_dkim,
    verify_reverse,
    verify_spf,
)


class Verdict(StrEnum):
    PASS = "pass"  # authenticated as its From domain
    FAIL = "fail"  # not authenticated as its From domain
    UNKNOWN = "unknown"  # no evidence to decide, or DNS failed


class Evidence(StrEnum):
    VERIFY = "verify"  # re-verified now (--verify)
    AUTHENTICATION_RESULTS = "authentication-results"  # recorded by a trusted server at delivery
    NONE = "none"


@dataclass(frozen=True)
class Trust:
    """Whom the reader trusts: authserv-ids and host names (compared lower case), addresses."""

    names: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()
    own_domains: frozenset[str] = frozenset()  # the site's mail domains, to spot spoofing of them

    @classmethod
    def of(cls, names: Iterable[str] = (), addresses: Iterable[str] = (), own_domains: Iterable[str] = ()) -> Trust:
        return cls(
            frozenset(normal_domain(n) for n in names if n.strip()),
            frozenset(str(ipaddress.ip_address(a)) for a in addresses),
            frozenset(normal_domain(d) for d in own_domains),
        )

    @classmethod
    def from_site(cls, site: Site, names: Iterable[str] = ()) -> Trust:
        """The site's hosts are the recipient's own servers: their names are the authserv-ids
        OpenDKIM writes (AuthservID = the host's fqdn) and the `by` of their Received lines."""
        hosts = site.hosts.values()
        return cls.of(
            [*names, *(h.fqdn for h in hosts)],
            [str(a) for h in hosts for a in (*h.ipv4, *h.ipv6)],
            site.domains.keys(),
        )


@dataclass(frozen=True)
class SignatureView:
    signature: Signature
    alignment: Alignment  # of d= with the From domain
    check: DkimCheck | None  # with --verify


@dataclass
class Inspection:
    message: Message
    subject: str
    date: str
    message_id: str
    from_: list[Mailbox]
    sender: Mailbox | None
    return_path: Mailbox | None
    envelope_alignment: Alignment  # Return-Path domain with the From domain
    signatures: list[SignatureView]
    authentication_results: list[AuthResults]
    hops: list[Hop]
    border: Hop | None  # the hop where the message entered the trusted servers (or the assumed one)
    border_assumed: bool
    spf: SpfCheck | None = None
    reverse: ReverseCheck | None = None
    arc: ArcCheck | None = None
    dmarc: DmarcCheck | None = None
    verified: bool = False
    evidence: Evidence = Evidence.NONE
    verdict: Verdict = Verdict.UNKNOWN
    summary: list[Text] = field(default_factory=list)
    notes: list[Text] = field(default_factory=list)

    @property
    def from_domain(self) -> str:
        return self.from_[0].domain if len(self.from_) >= 1 else ""


def _find_border(hops: list[Hop], trust: Trust) -> tuple[Hop | None, bool]:
    """The hop whose receiver is ours and whose sender is not (RFC 8601 §5's border MTA).
    Walks from the newest hop down while the receiving server is trusted. Without trust (or
    when the newest hop is not by a trusted server), the newest hop that names an outside
    address is assumed to be the receiving server's own."""
    if trust.names:
        border: Hop | None = None
        for hop in reversed(hops):
            if hop.by not in trust.names:
                break
            ours = hop.local or hop.ip in trust.addresses or hop.reverse_name in trust.names or (not hop.ip and hop.helo in trust.names)
            if not ours:
                border = hop
                break
        if border is not None:
            return border, False
    for hop in reversed(hops):
        if not hop.local:
            return hop, True
    return None, True


def inspect_message(message: Message, trust: Trust = Trust(), resolver: Resolver | None = None) -> Inspection:
    """Read everything; with a resolver, also re-verify (--verify). Never raises."""
    subject = message.first("subject")
    date = message.first("date")
    message_id = message.first("message-id")
    from_fields = message.all("from")
    from_ = mailboxes(from_fields[0].value) if from_fields else []
    sender_field = message.first("sender")
    sender_boxes = mailboxes(sender_field.value) if sender_field else []
    rp_field = message.first("return-path")
    rp = return_path(rp_field.raw) if rp_field else None
    hops = read_chain(message.all("received"))
    border, assumed = _find_border(hops, trust)
    results = read_authentication_results(message, trust.names, border.field.index if border and not assumed else None)
    from_domain = from_[0].domain if from_ else ""
    signatures = read_signatures(message)
    inspection = Inspection(
        message,
        subject.value if subject else "",
        date.value if date else "",
        message_id.value if message_id else "",
        from_,
        sender_boxes[0] if sender_boxes else None,
        rp,
        alignment(rp.domain, from_domain) if rp and rp.address else Alignment.UNKNOWN,
        [SignatureView(s, alignment(s.domain, from_domain), None) for s in signatures],
        results,
        hops,
        border,
        assumed,
    )
    _header_notes(inspection, from_fields)
    if resolver is not None:
        _verify(inspection, resolver)
    _judge(inspection, trust)
    return inspection


def _header_notes(inspection: Inspection, from_fields: list) -> None:  # type: ignore[type-arg]
    notes = inspection.notes
    for note in inspection.message.notes:
        notes.append(note)
    if not from_fields:
        notes.append(say("no-from"))
    elif len(from_fields) > 1:
        notes.append(say("several-from-fields", count=len(from_fields)))  # RFC 5322 §3.6: exactly one
    elif len({m.domain for m in inspection.from_}) > 1:
        notes.append(say("several-from-domains", domains=", ".join(sorted({m.domain for m in inspection.from_}))))  # RFC 7489 §6.6.1
    if inspection.return_path is None:
        notes.append(say("no-return-path"))
    if inspection.sender and alignment(inspection.sender.domain, inspection.from_domain) is Alignment.NONE:
        notes.append(say("sender-differs", sender=inspection.sender.address, domain=inspection.from_domain))
    if inspection.border is not None and inspection.border_assumed and inspection.hops:
        notes.append(say("border-assumed", by=inspection.border.by or "?"))


def _recorded_envelope(inspection: Inspection) -> str | None:
    """Without Return-Path: the envelope sender as a hop recorded it (`envelope-from`, Dovecot
    LMTP and Exim write it), else as a trusted Authentication-Results recorded it (smtp.mailfrom).
    None when nothing did: then SPF cannot be checked as the receiver checked it."""
    for hop in reversed(inspection.hops):
        if hop.envelope_from:
            return hop.envelope_from
    for header in inspection.authentication_results:
        if header.trusted:
            for result in header.results:
                if result.method == "spf" and result.prop("smtp", "mailfrom"):
                    return result.prop("smtp", "mailfrom")
    return None


def _verify(inspection: Inspection, resolver: Resolver) -> None:
    inspection.verified = True
    checks = verify_dkim(inspection.message, resolver)
    inspection.signatures = [SignatureView(v.signature, v.alignment, c) for v, c in zip(inspection.signatures, checks, strict=True)]
    inspection.arc = verify_arc(inspection.message, resolver)
    if inspection.arc is not None and inspection.arc.sealers:
        arc = inspection.arc
        # RFC 8617 §7.2: ARC results are information for a receiver's local policy, never a pass by themselves.
        if arc.result == "pass":
            inspection.notes.append(say("arc-pass", sealers=" -> ".join(arc.sealers), first=arc.sealers[0], results=arc.first_results or "-"))
        else:
            inspection.notes.append(say("arc-fail", sealers=" -> ".join(arc.sealers), reason=arc.reason or arc.result))
    border = inspection.border
    rp = inspection.return_path
    if border is not None and border.ip:
        mail_from = rp.address if rp else _recorded_envelope(inspection)
        if mail_from is None:
            inspection.notes.append(say("spf-without-return-path"))
        else:
            inspection.spf = verify_spf(border.ip, border.helo or border.from_name, mail_from, resolver)
        reverse = verify_reverse(border.ip, resolver)
        inspection.reverse = reverse
        if not reverse.failed and not reverse.names and not border.reverse_unknown:
            border.problems.append(say("hop-no-ptr-now", ip=border.ip))
        elif reverse.names and not reverse.confirmed:
            border.problems.append(say("hop-not-confirmed", ip=border.ip, names=", ".join(reverse.names)))
    if inspection.from_domain:
        inspection.dmarc = evaluate_dmarc(inspection.from_domain, inspection.spf, [v.check for v in inspection.signatures if v.check], resolver)


# ---------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class _Facts:
    """What the verdict is decided on, from whichever evidence there is."""

    spf: str  # pass / fail / softfail / neutral / none / temperror / permerror / "" (unknown)
    spf_domain: str
    spf_aligned: bool
    signed_by: tuple[str, ...]  # d= of every signature
    dkim_pass_aligned: tuple[str, ...]
    dkim_failed_aligned: tuple[tuple[str, str], ...]  # (d=, reason) of aligned signatures that fail
    dmarc: str  # pass / fail / none / temperror / permerror / "" (unknown)
    policy: str
    dns_failed: str


def _trusted_results(inspection: Inspection) -> list[MethodResult] | None:
    """Results of the newest trusted Authentication-Results field that says anything about
    spf, dkim or dmarc (the final receiver's view), or None."""
    for header in inspection.authentication_results:
        if header.trusted and header.arc_instance is None and any(r.method in ("spf", "dkim", "dmarc") for r in header.results):
            return list(header.results)
    return None


def _facts_from_results(inspection: Inspection, results: list[MethodResult]) -> _Facts:
    from_domain = inspection.from_domain
    spf = next((r for r in results if r.method == "spf"), None)
    spf_domain = ""
    if spf:
        spf_domain = domain_of(spf.prop("smtp", "mailfrom")) or normal_domain(spf.prop("smtp", "mailfrom")) or normal_domain(spf.prop("smtp", "helo"))
    dkims = [r for r in results if r.method == "dkim"]

    def d_of(r: MethodResult) -> str:
        return normal_domain(r.prop("header", "d")) or domain_of(r.prop("header", "i"))

    dmarc = next((r for r in results if r.method == "dmarc"), None)
    spf_aligned = bool(spf and spf.result == "pass" and aligned(spf_domain, from_domain))
    passing = tuple(d_of(r) for r in dkims if r.result == "pass" and aligned(d_of(r), from_domain))
    failing = tuple(
        (d_of(r), f"dkim={r.result}" + (f" ({r.reason})" if r.reason else "")) for r in dkims if r.result != "pass" and aligned(d_of(r), from_domain)
    )
    signed = tuple(d_of(r) for r in dkims if d_of(r)) or tuple(v.signature.domain for v in inspection.signatures)
    if dmarc:
        dmarc_result = dmarc.result
    elif spf or dkims:
        dmarc_result = "pass" if spf_aligned or passing else "fail"
    else:
        dmarc_result = ""
    return _Facts(
        spf.result if spf else "", spf_domain, spf_aligned, signed, passing, failing, dmarc_result, dmarc.prop("policy", "dmarc") if dmarc else "", ""
    )


def _facts_from_verify(inspection: Inspection) -> _Facts:
    from_domain = inspection.from_domain
    dmarc = inspection.dmarc
    spf = inspection.spf
    checks = [v.check for v in inspection.signatures if v.check is not None]
    adkim = dmarc.record.adkim if dmarc and dmarc.record else "r"
    passing = tuple(c.signature.domain for c in checks if c.outcome is DkimOutcome.PASS and aligned(c.signature.domain, from_domain, adkim))
    failing = tuple(
        (c.signature.domain, c.reason.value) for c in checks if c.outcome is not DkimOutcome.PASS and aligned(c.signature.domain, from_domain, adkim)
    )
    dns_failed = ""
    if dmarc and dmarc.outcome is DmarcOutcome.TEMPERROR:
        dns_failed = dmarc.detail
    if spf and spf.result is SpfResult.TEMPERROR and not passing:
        dns_failed = dns_failed or f"SPF: {spf.explanation}"
    if any(c.reason is DkimReason.DNS_FAILED for c in checks) and not passing and not (dmarc and dmarc.spf_aligned):
        dns_failed = dns_failed or next(c.detail for c in checks if c.reason is DkimReason.DNS_FAILED)
    return _Facts(
        spf.result.value if spf else "",
        spf.domain if spf else "",
        bool(dmarc and dmarc.spf_aligned),
        tuple(c.signature.domain for c in checks),
        passing,
        failing,
        dmarc.outcome.value if dmarc else "",
        dmarc.policy if dmarc else "",
        dns_failed,
    )


def _judge(inspection: Inspection, trust: Trust) -> None:
    from_domain = inspection.from_domain
    trusted = _trusted_results(inspection)
    if inspection.verified:
        facts = _facts_from_verify(inspection)
        inspection.evidence = Evidence.VERIFY
        if trusted is not None:
            _compare(inspection, _facts_from_results(inspection, trusted), facts)
    elif trusted is not None:
        facts = _facts_from_results(inspection, trusted)
        inspection.evidence = Evidence.AUTHENTICATION_RESULTS
    else:
        inspection.verdict = Verdict.UNKNOWN
        inspection.summary.append(say("unverified"))
        inspection.summary.extend(_alignment_facts(inspection))
        return
    summary = inspection.summary
    if not from_domain:
        inspection.verdict = Verdict.UNKNOWN
        summary.append(say("no-from-domain"))
        return
    passed = facts.dmarc == "pass" or (facts.dmarc in ("none", "") and (facts.spf_aligned or bool(facts.dkim_pass_aligned)))
    if facts.dns_failed and not passed:
        inspection.verdict = Verdict.UNKNOWN
        summary.append(say("dns-failed", domain=from_domain, detail=facts.dns_failed))
        return
    if passed:
        inspection.verdict = Verdict.PASS
        if facts.dkim_pass_aligned:
            summary.append(say("pass-dkim", domain=from_domain, signer=facts.dkim_pass_aligned[0]))
        else:
            summary.append(say("pass-spf", domain=from_domain, envelope=facts.spf_domain))
        border = inspection.border
        if border is not None and border.authenticated:
            summary.append(say("submitted-with-login", by=border.by or "?"))
        return
    inspection.verdict = Verdict.FAIL
    if facts.spf == "pass" and facts.spf_domain:
        sent = say("sent-by-other-org", envelope=facts.spf_domain, domain=from_domain)
    elif facts.spf:
        sent = say("sent-by-unrelated", address=_sending_address(inspection))
    else:
        sent = say("sent-by-unknown", domain=from_domain)
    if facts.dkim_failed_aligned:
        d, reason = facts.dkim_failed_aligned[0]
        signed = say("signature-broken", signer=d, reason=say(f"reason-{reason}") if reason in _REASONS else say("reason-recorded", result=reason))
        if reason == DkimReason.BODY_CHANGED.value and inspection.border is not None and inspection.border.ip:
            inspection.notes.append(say("forwarder-changed-body", signer=d))
    elif facts.signed_by:
        signed = say("signed-by-others", signers=", ".join(sorted(set(facts.signed_by))))
    else:
        signed = say("no-signature")
    summary.append(say("fail", domain=from_domain, sent=sent, signed=signed))
    if facts.policy:
        summary.append(say(f"policy-{facts.policy}", domain=from_domain))
    elif facts.dmarc == "none":
        summary.append(say("no-dmarc-record", domain=from_domain))
    if from_domain in trust.own_domains:
        summary.append(say("own-domain", domain=from_domain))
        if facts.dkim_failed_aligned and facts.dkim_failed_aligned[0][1] in (DkimReason.NO_KEY.value, DkimReason.REVOKED.value):
            inspection.notes.append(say("own-domain-key-missing", domain=from_domain))
        elif facts.policy in ("none", "quarantine") or facts.dmarc == "none":
            inspection.notes.append(say("own-domain-tighten", domain=from_domain))


_REASONS = {r.value for r in DkimReason}


def _sending_address(inspection: Inspection) -> str:
    border = inspection.border
    if border is None or not border.ip:
        return "?"
    return f"{border.ip}, {border.reverse_name}" if border.reverse_name else border.ip


def _compare(inspection: Inspection, recorded: _Facts, now: _Facts) -> None:
    """Tell when delivery-time results and today's re-verification disagree."""
    if recorded.dmarc and now.dmarc and recorded.dmarc != now.dmarc:
        inspection.notes.append(say("results-changed", then=recorded.dmarc, now=now.dmarc))


def _alignment_facts(inspection: Inspection) -> list[Text]:
    facts: list[Text] = []
    from_domain = inspection.from_domain
    rp = inspection.return_path
    if rp is not None and from_domain:
        if not rp.address:
            facts.append(say("null-sender"))
        elif inspection.envelope_alignment in (Alignment.STRICT, Alignment.RELAXED):
            facts.append(say("envelope-aligned", envelope=rp.domain, domain=from_domain))
        else:
            facts.append(say("envelope-not-aligned", envelope=rp.domain, domain=from_domain))
    aligned_sigs = [v.signature.domain for v in inspection.signatures if v.alignment in (Alignment.STRICT, Alignment.RELAXED)]
    if aligned_sigs:
        facts.append(say("signature-aligned-unverified", signer=aligned_sigs[0]))
    elif inspection.signatures:
        facts.append(say("signed-by-others-unverified", signers=", ".join(sorted({v.signature.domain for v in inspection.signatures})), domain=from_domain))
    elif from_domain:
        facts.append(say("no-signature-at-all"))
    return facts
