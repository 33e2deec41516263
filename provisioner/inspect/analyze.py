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
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from provisioner.inspect.authresults import AuthResults, MethodResult, read_authentication_results
from provisioner.inspect.identity import AlignmentResult, HeaderAddress, aligned, alignment, domain_of, mailboxes, normal_domain, return_path
from provisioner.inspect.message import Message
from provisioner.inspect.received import Hop, read_chain
from provisioner.inspect.text import Text, say
from provisioner.mailauth.resolver import Resolver
from provisioner.mailauth.spf import SpfResult

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
    coverage,
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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A declared network this wide would make nearly every sender "ours" and every line below it believed.
_WIDEST_PREFIX = {4: 8, 6: 16}


def declared_network(text: str) -> Network:
    """An address or network a user declares as their own mail servers (`--trust-address`).
    Raises ValueError with a message and a hint."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            raise ValueError(f"{text!r} has host bits set (did you mean {ipaddress.ip_network(text.strip(), strict=False)}?)") from None
        raise ValueError(f"{text!r} is not an IP address or network (write 10.0.0.5 or 10.0.0.0/24)") from None
    if network.prefixlen < _WIDEST_PREFIX[network.version]:
        raise ValueError(f"{text} is far too wide: every sender in it would be believed (declare only your own servers' addresses)")
    return network


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # RFC 4291 §2.5.5.2: ::ffff:10.0.0.5 is 10.0.0.5
    return address


def _within(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


@dataclass(frozen=True)
class Trust:
    """Whom the reader trusts (style rule 15: declared, never inferred): authserv-ids and host
    names (compared lower case), and the addresses of their own mail servers (the site's hosts,
    `--trust-address`), as networks. Nothing is trusted for being private or for its name."""

    names: frozenset[str] = frozenset()
    addresses: tuple[Network, ...] = ()
    own_domains: frozenset[str] = frozenset()  # the site's mail domains, to spot spoofing of them
    # Servers that remove every Authentication-Results a message arrives with before adding their
    # own (the site's MX hosts: rspamd, docs/inbound.md). Where one is the border, a field with its
    # authserv-id below its Received line is its own: nothing the sender wrote survived there.
    stripping: frozenset[str] = frozenset()

    @classmethod
    def of(cls, names: Iterable[str] = (), addresses: Iterable[str] = (), own_domains: Iterable[str] = (), stripping: Iterable[str] = ()) -> Trust:
        """`addresses`: IPs or CIDR networks; ValueError for one that is not (see declared_network)."""
        networks = {declared_network(a) for a in addresses}
        return cls(
            frozenset(normal_domain(n) for n in names if n.strip()),
            tuple(sorted(networks, key=lambda n: (n.version, n.network_address.packed, n.prefixlen))),
            frozenset(normal_domain(d) for d in own_domains),
            frozenset(normal_domain(n) for n in stripping),
        )

    @classmethod
    def from_site(cls, site: Site, names: Iterable[str] = (), addresses: Iterable[str] = ()) -> Trust:
        """The site's hosts are the recipient's own servers: their names are the authserv-ids
        OpenDKIM writes (AuthservID = the host's fqdn) and the `by` of their Received lines.
        relay.networks are NOT trusted: a client allowed to relay can still write any line."""
        hosts = site.hosts.values()
        return cls.of(
            [*names, *(h.fqdn for h in hosts)],
            [*(str(a) for h in hosts for a in (*h.ipv4, *h.ipv6)), *addresses],
            site.domains.keys(),
            [h.fqdn for h in hosts if h.receives_internet_mail],  # rspamd on port 25 (provisioner/render/rspamd.py)
        )

    def declares(self, ip: str) -> bool:
        """The address is one of the user's own servers: loopback (this machine), or declared."""
        address = _address(ip)
        if address is None:
            return False
        return address.is_loopback or _within(address, self.addresses)


@dataclass(frozen=True)
class SignatureView:
    signature: Signature
    alignment: AlignmentResult  # of d= with the From domain
    check: DkimCheck | None  # with --verify


@dataclass
class Inspection:
    message: Message
    subject: str
    date: str
    message_id: str
    from_: list[HeaderAddress]
    sender: HeaderAddress | None
    return_path: HeaderAddress | None
    envelope_alignment: AlignmentResult  # Return-Path domain with the From domain
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


# Used only to explain a border, never to trust one: RFC 1918, RFC 6598 (carrier NAT), RFC 3927 and
# RFC 4291 §2.5.6 (link-local), RFC 4193 (ULA).
_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10")
)


def private_address(ip: str) -> bool:
    """An address behind NAT or inside a site: the real sender may be hidden behind it."""
    address = _address(ip)
    return address is not None and _within(address, _PRIVATE_NETS)


def _local_receiver(hop: Hop) -> bool:
    """A hop inside one machine: a content filter or LMTP on loopback (`by localhost`), or a
    line without a connecting address (local submission, Gmail's `by 2002:...` internal hop)."""
    return hop.local or hop.by in ("localhost", "localhost.localdomain")


@dataclass(frozen=True)
class _Border:
    hop: Hop | None  # where the message entered the trusted servers (or the assumed one)
    assumed: bool
    trusted_above: int | None  # field index: trusted results must stand above it; None: no trusted servers in the chain


def _find_border(hops: list[Hop], trust: Trust) -> _Border:
    """RFC 8601 §5's border MTA: walking from the newest Received line down, the first hop whose
    receiver is a trusted server (or a hop inside it) and whose sending address is not declared.

    Only what a trusted server wrote can be believed, and it wrote only the lines above the one
    it added when it took the message: the walk starts at the top, needs a line `by` a trusted
    name, and goes on only while the connecting ADDRESS is declared ours (loopback, the site's
    hosts, `--trust-address`): then the line below was written by that server of ours. A line
    below a hop from any other address was written by that sender, whatever its `by` says: a
    client in relay.networks, or anybody when the MX sees a NAT or load balancer's private
    address, can write `by mx1.ours` there. Private-ness is never trust (style rule 15), and
    names in comments are never used either: a HELO, a qmail `(HELO x)` or an unconfirmed
    reverse name can be anything.

    Without a trusted line, the newest hop from an undeclared address is assumed to be the
    border, for display and for SPF; no Authentication-Results is trusted then."""
    started = False
    newest_first = list(reversed(hops))
    for i, hop in enumerate(newest_first):
        if not started:
            if hop.by in trust.names:
                started = True
            elif _local_receiver(hop):
                continue
            else:
                break
        if not _declared_sender(hop, trust):
            return _Border(hop, False, hop.field.index)
        if i + 1 == len(newest_first):
            return _Border(None, False, hop.field.index)  # every hop is ours: mail written on our own servers
    for hop in newest_first:
        if not _declared_sender(hop, trust):
            return _Border(hop, True, None)
    return _Border(None, True, None)


def _declared_sender(hop: Hop, trust: Trust) -> bool:
    """The hop's sender is one of the user's servers: no connection at all (a line written inside
    one machine), loopback, or a declared address. A `from` clause without a readable address
    is a line we could not read, not one of ours (Dovecot LMTP over a socket writes none: that
    one is local delivery)."""
    if not hop.ip:
        return not hop.from_name or hop.with_protocol.upper().startswith("LMTP")
    return trust.declares(hop.ip)


def inspect_message(message: Message, trust: Trust = Trust(), resolver: Resolver | None = None) -> Inspection:
    """Read everything; with a resolver, also re-verify (--verify). Never raises."""
    subject = message.first("subject")
    date = message.first("date")
    message_id = message.first("message-id")
    from_fields = message.all("from")
    from_ = mailboxes(from_fields[0].raw) if from_fields else []  # addresses from the raw text: an encoded word is never syntax
    sender_field = message.first("sender")
    sender_boxes = mailboxes(sender_field.raw) if sender_field else []
    hops = read_chain(message.all("received"))
    found = _find_border(hops, trust)
    border = found.hop
    rp_field = message.first("return-path")
    rp_below = rp_field is not None and border is not None and rp_field.index > border.field.index
    rp = return_path(rp_field.raw) if rp_field and not rp_below else None  # one written below the border came with the message
    border_strips = found.hop.by if found.hop is not None and not found.assumed and found.hop.by in trust.stripping else None
    results = read_authentication_results(message, trust.names, found.trusted_above, border_strips)
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
        alignment(rp.domain, from_domain) if rp and rp.address else AlignmentResult.UNKNOWN,
        [SignatureView(s, alignment(s.domain, from_domain), None) for s in signatures],
        results,
        hops,
        border,
        found.assumed,
    )
    if rp_below:
        inspection.notes.append(say("return-path-below-border"))
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
    if inspection.return_path is None and not any(f.key == "return-path" for f in inspection.message.fields):
        notes.append(say("no-return-path"))
    duplicated = sorted({f.key for f in inspection.message.fields if f.key in _SINGLE_FIELDS and f.key != "from" and len(inspection.message.all(f.key)) > 1})
    if duplicated:
        notes.append(say("duplicate-fields", fields=", ".join(inspection.message.all(key)[0].name for key in duplicated)))
    if inspection.sender and alignment(inspection.sender.domain, inspection.from_domain) is AlignmentResult.NONE:
        notes.append(say("sender-differs", sender=inspection.sender.address, domain=inspection.from_domain))
    if inspection.border is not None and inspection.border_assumed and inspection.hops:
        notes.append(say("border-assumed", by=inspection.border.by or "?"))
    if inspection.border is not None and private_address(inspection.border.ip):
        notes.append(say("border-private", ip=inspection.border.ip))


# RFC 5322 §3.6: fields a message has at most once
_SINGLE_FIELDS = frozenset(("from", "sender", "reply-to", "to", "cc", "bcc", "message-id", "in-reply-to", "references", "subject", "date"))


def _recorded_envelope(inspection: Inspection) -> str | None:
    """Without Return-Path: the envelope sender as a hop recorded it (`envelope-from`, Dovecot
    LMTP and Exim write it), else as a trusted Authentication-Results recorded it (smtp.mailfrom).
    None when nothing did: then SPF cannot be checked as the receiver checked it."""
    first = inspection.border.number if inspection.border is not None else 1
    for hop in reversed(inspection.hops):
        if hop.number >= first and hop.envelope_from:  # lines below the border came with the message
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
    for view in inspection.signatures:
        check = view.check
        if check is not None and check.outcome is DkimOutcome.PASS and (check.unsigned or check.appended):
            uncovered = ", ".join(inspection.message.all(n)[0].name for n in check.unsigned)
            if check.appended:
                inspection.notes.append(say("dkim-appended", signer=check.signature.domain, count=check.appended))
            if uncovered:
                inspection.notes.append(say("dkim-unsigned", signer=check.signature.domain, fields=uncovered))
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
    dmarc: str  # pass / fail / none / temperror / permerror / bestguesspass ... / "" (unknown)
    policy: str
    dns_failed: str
    undecided: Text | None = None  # why the evidence cannot decide (missing, contradictory)
    recorded_by: str = ""  # the authserv-id whose results these are


_POLICIES = ("none", "quarantine", "reject")


def _trusted_results(inspection: Inspection) -> AuthResults | None:
    """The newest trusted Authentication-Results field that says anything about spf, dkim or
    dmarc (the final receiver's view), or None."""
    for header in inspection.authentication_results:
        if header.trusted and header.arc_instance is None and any(r.method in ("spf", "dkim", "dmarc") for r in header.results):
            return header
    return None


def _facts_from_results(inspection: Inspection, header: AuthResults) -> _Facts:
    from_domain = inspection.from_domain
    results = header.results
    spf = next((r for r in results if r.method == "spf"), None)
    spf_domain = ""
    if spf:
        spf_domain = domain_of(spf.prop("smtp", "mailfrom")) or normal_domain(spf.prop("smtp", "mailfrom")) or normal_domain(spf.prop("smtp", "helo"))
    dkims = [r for r in results if r.method == "dkim"]

    def d_of(r: MethodResult) -> str:
        return normal_domain(r.prop("header", "d")) or domain_of(r.prop("header", "i"))

    dmarc = next((r for r in results if r.method == "dmarc"), None)
    if dmarc is not None and dmarc.prop("header", "from") and normal_domain(dmarc.prop("header", "from")) != from_domain:
        # The result is about another From (a field added or replaced after delivery): not this one's.
        inspection.notes.append(say("ar-dmarc-other-from", recorded=normal_domain(dmarc.prop("header", "from")), domain=from_domain))
        dmarc = None
    spf_aligned = bool(spf and spf.result == "pass" and aligned(spf_domain, from_domain))
    recorded_pass = [r for r in dkims if r.result == "pass" and aligned(d_of(r), from_domain)]
    gaps = {id(r): _partial(inspection, _matching(inspection, d_of(r), r.prop("header", "s"))) for r in recorded_pass}
    passing = tuple(d_of(r) for r in recorded_pass if gaps[id(r)] is None)
    partial = next((gap for gap in gaps.values() if gap is not None), None)
    if partial is None and not recorded_pass and not spf_aligned:
        # dmarc=pass recorded without saying why: only the aligned signatures in the message can be why
        partial = _partial(inspection, [v.signature for v in inspection.signatures if aligned(v.signature.domain, from_domain)])
    failing = tuple(
        (d_of(r), f"dkim={r.result}" + (f" ({r.reason})" if r.reason else "")) for r in dkims if r.result != "pass" and aligned(d_of(r), from_domain)
    )
    signed = tuple(d_of(r) for r in dkims if d_of(r)) or tuple(v.signature.domain for v in inspection.signatures)
    dns_failed, undecided = "", None
    if dmarc and dmarc.result == "pass" and partial is not None and not passing and not spf_aligned:
        dmarc_result, undecided = "", partial  # the receiver's DMARC passed on a signature that does not cover what is shown
    elif dmarc:
        dmarc_result = dmarc.result
    elif spf_aligned or passing:
        dmarc_result = "pass"
    elif (spf and spf.result == "temperror") or any(r.result == "temperror" for r in dkims):
        dmarc_result, dns_failed = "temperror", f"{header.authserv_id} recorded a temporary error"
    elif partial is not None and recorded_pass:
        dmarc_result, undecided = "", partial
    elif spf and spf.result and (dkims or not inspection.signatures):
        dmarc_result = "fail"
    else:  # a result is missing: SPF not recorded, or signatures the server said nothing about
        dmarc_result = ""
        undecided = say("undecided-recorded", authserv=header.authserv_id, missing="SPF" if not spf else "DKIM")
    policy = dmarc.prop("policy", "dmarc").lower() if dmarc else ""
    return _Facts(
        spf.result if spf else "",
        spf_domain,
        spf_aligned,
        signed,
        passing,
        failing,
        dmarc_result,
        policy if policy in _POLICIES else "",
        dns_failed,
        undecided,
        header.authserv_id,
    )


def _matching(inspection: Inspection, domain: str, selector: str = "") -> list[Signature]:
    return [v.signature for v in inspection.signatures if v.signature.domain == domain and (not selector or v.signature.selector == selector.lower())]


def _covers_what_is_shown(unsigned: tuple[str, ...], appended: int) -> bool:
    """A signature that vouches for the message as shown: From and Subject signed, no body appended."""
    return not (set(unsigned) & {"from", "subject"}) and not appended


def _uncovered(unsigned: tuple[str, ...], appended: int) -> str:
    return ", ".join([*(n.title() for n in unsigned if n in ("from", "subject")), *([f"{appended} bytes of the body"] if appended else [])])


def _partial(inspection: Inspection, signatures: list[Signature]) -> Text | None:
    """Why a dkim=pass recorded for these signatures does not vouch for the message as shown,
    or None when one of them covers it (checked on the signature itself: h= against the fields,
    l= against the body). No signature at all: the recorded result is taken as it stands."""
    gaps = [coverage(s, inspection.message) for s in signatures]
    if not gaps or any(_covers_what_is_shown(*gap) for gap in gaps):
        return None
    return say("undecided-partial", signer=signatures[0].domain, what=_uncovered(*gaps[0]))


def _facts_from_verify(inspection: Inspection) -> _Facts:
    from_domain = inspection.from_domain
    dmarc = inspection.dmarc
    spf = inspection.spf
    checks = [v.check for v in inspection.signatures if v.check is not None]
    adkim = dmarc.record.adkim if dmarc and dmarc.record else "r"
    aligned_checks = [c for c in checks if aligned(c.signature.domain, from_domain, adkim)]
    passing = tuple(c.signature.domain for c in aligned_checks if c.outcome is DkimOutcome.PASS and _covers_what_is_shown(c.unsigned, c.appended))
    partial = [c for c in aligned_checks if c.outcome is DkimOutcome.PASS and not _covers_what_is_shown(c.unsigned, c.appended)]
    failing = tuple((c.signature.domain, c.reason.value) for c in aligned_checks if c.outcome is not DkimOutcome.PASS)
    spf_aligned = bool(dmarc and dmarc.spf_aligned)
    dns_failed = ""
    if dmarc and dmarc.outcome is DmarcOutcome.TEMPERROR:
        dns_failed = dmarc.detail
    if spf and spf.result is SpfResult.TEMPERROR and not passing:
        dns_failed = dns_failed or f"SPF: {spf.explanation}"
    if any(c.reason is DkimReason.DNS_FAILED for c in checks) and not passing and not spf_aligned:
        dns_failed = dns_failed or next(c.detail for c in checks if c.reason is DkimReason.DNS_FAILED)
    undecided: Text | None = None
    if not passing and not spf_aligned:
        if partial:
            c = partial[0]
            undecided = say("undecided-partial", signer=c.signature.domain, what=_uncovered(c.unsigned, c.appended))
        elif any(c.reason is DkimReason.NO_BODY for c in aligned_checks):
            undecided = say("undecided-no-body")
        elif spf is None:
            undecided = say("undecided-spf-skipped")
    outcome = dmarc.outcome.value if dmarc else ""
    if outcome in ("pass", "fail"):
        outcome = "pass" if passing or spf_aligned else "fail"  # a partial signature does not pass here
    return _Facts(
        spf.result.value if spf else "",
        spf.domain if spf else "",
        spf_aligned,
        tuple(c.signature.domain for c in checks),
        passing,
        failing,
        outcome,
        dmarc.policy if dmarc else "",
        dns_failed,
        undecided,
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
    from_fields = inspection.message.all("from")
    if len(from_fields) > 1 or len({m.domain for m in inspection.from_}) > 1:
        # RFC 7489 §6.6.1: which From a reader sees is up to the mail program; none can be vouched for.
        inspection.verdict = Verdict.UNKNOWN
        summary.append(say("undecided-several-from"))
        return
    aligned_pass = facts.spf_aligned or bool(facts.dkim_pass_aligned)
    if facts.dmarc == "pass":
        passed = True
    elif facts.dmarc == "fail":
        passed = False  # recorded by a server that knew the record's adkim/aspf; ours is recomputed the same way
    elif facts.dmarc in ("none", ""):
        passed = aligned_pass
    else:  # permerror, temperror, bestguesspass, ...: decide on SPF and DKIM themselves
        passed = aligned_pass
        if not passed and not facts.dns_failed and facts.dmarc != "temperror":
            facts = replace(facts, undecided=say("undecided-dmarc", result=facts.dmarc, domain=from_domain))
        elif not passed and not facts.dns_failed:
            facts = replace(facts, dns_failed=f"DMARC: {facts.dmarc}")
    if facts.dns_failed and not passed:
        inspection.verdict = Verdict.UNKNOWN
        summary.append(say("dns-failed", domain=from_domain, detail=facts.dns_failed))
        return
    if facts.undecided is not None and not passed:
        inspection.verdict = Verdict.UNKNOWN
        summary.append(facts.undecided)
        return
    if passed:
        doubled = [k for k in ("subject", "reply-to", "sender") if len(inspection.message.all(k)) > 1]
        if doubled:
            inspection.verdict = Verdict.UNKNOWN
            summary.append(say("undecided-doubled", fields=", ".join(inspection.message.all(k)[0].name for k in doubled), domain=from_domain))
            return
        inspection.verdict = Verdict.PASS
        if facts.dkim_pass_aligned:
            summary.append(say("pass-dkim", domain=from_domain, signer=facts.dkim_pass_aligned[0]))
        elif facts.spf_aligned:
            summary.append(say("pass-spf", domain=from_domain, envelope=facts.spf_domain))
        else:
            summary.append(say("pass-recorded", domain=from_domain, authserv=facts.recorded_by))
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
        elif inspection.envelope_alignment in (AlignmentResult.STRICT, AlignmentResult.RELAXED):
            facts.append(say("envelope-aligned", envelope=rp.domain, domain=from_domain))
        else:
            facts.append(say("envelope-not-aligned", envelope=rp.domain, domain=from_domain))
    aligned_sigs = [v.signature.domain for v in inspection.signatures if v.alignment in (AlignmentResult.STRICT, AlignmentResult.RELAXED)]
    if aligned_sigs:
        facts.append(say("signature-aligned-unverified", signer=aligned_sigs[0]))
    elif inspection.signatures:
        facts.append(say("signed-by-others-unverified", signers=", ".join(sorted({v.signature.domain for v in inspection.signatures})), domain=from_domain))
    elif from_domain:
        facts.append(say("no-signature-at-all"))
    return facts
