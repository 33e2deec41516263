"""--verify: DKIM re-verified by dkimpy, SPF by pyspf for the first hop outside the recipient's
servers, DMARC evaluated against the From domain's published record. Every DNS question goes
through the injected resolver (provisioner.mailauth.resolver), as in `provision check`.

Query, parse, judge: nothing here raises; failures become results with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from provisioner.inspect import canon
from provisioner.inspect.identity import aligned, normal_domain, organizational_domain
from provisioner.inspect.message import HEADER_END, Field, Message
from provisioner.mailauth.grammar import DmarcRecord, Invalid, is_dmarc, parse_dkim, parse_dmarc, parse_tags
from provisioner.mailauth.resolver import Answer, Resolver
from provisioner.mailauth.spf import SpfResult, check_host


@dataclass(frozen=True)
class Signature:
    """One DKIM-Signature field's tags (RFC 6376 §3.5), shown with or without --verify."""

    field: Field
    domain: str  # d=
    selector: str  # s=
    algorithm: str  # a=
    identity: str  # i=
    signed_headers: tuple[str, ...]  # h=
    error: str  # the field cannot be read
    body_length: int | None = None  # l=: the signature covers only this many canonical body bytes
    canonicalization: str = "simple/simple"  # c=


def read_signatures(message: Message) -> list[Signature]:
    out: list[Signature] = []
    for field in message.all("dkim-signature"):
        tags = parse_tags(field.raw)
        if isinstance(tags, Invalid):
            out.append(Signature(field, "", "", "", "", (), f"not a tag list: {tags.reason}"))
            continue
        missing = [t for t in ("v", "a", "b", "bh", "d", "h", "s") if t not in tags]  # RFC 6376 §3.5: required tags
        out.append(
            Signature(
                field,
                normal_domain(tags.get("d", "")),
                tags.get("s", "").strip().lower(),
                tags.get("a", "").strip().lower(),
                tags.get("i", "").strip(),
                tuple(h.strip().lower() for h in tags.get("h", "").split(":") if h.strip()),
                f"required tags missing: {', '.join(missing)}" if missing else "",
                int(tags["l"].strip()) if tags.get("l", "").strip().isdigit() else None,
                tags.get("c", "").strip() or "simple/simple",
            )
        )
    return out


class DkimOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # RFC 8601 §2.7.1: the signature did not verify
    NEUTRAL = "neutral"  # the signature cannot be read
    TEMPERROR = "temperror"
    PERMERROR = "permerror"  # no key, revoked key, a key that cannot be used


class DkimReason(StrEnum):
    VERIFIED = "verified"
    BODY_CHANGED = "body-changed"  # bh= does not match: the body was changed after signing
    HEADERS_CHANGED = "headers-changed"  # b= does not verify: a signed header was changed
    NO_KEY = "no-key"  # no TXT record at selector._domainkey.domain
    REVOKED = "revoked"  # p= empty (RFC 6376 §3.6.1)
    BAD_KEY = "bad-key"
    BAD_SIGNATURE = "bad-signature"  # the field breaks RFC 6376 §3.5 (tags, expiry, i= outside d=)
    NO_BODY = "no-body"  # only headers were given
    DNS_FAILED = "dns-failed"


@dataclass(frozen=True)
class DkimCheck:
    signature: Signature
    outcome: DkimOutcome
    reason: DkimReason
    detail: str
    unsigned: tuple[str, ...] = ()  # displayed fields the message has more of than the signature covers
    appended: int = 0  # body bytes after the l= length the signature covers (RFC 6376 §8.2)


# Fields a mail program shows (RFC 6376 §5.4 recommends signing them). A signature that passes
# but leaves one of them uncovered lets anybody add or replace it on a copy of the message.
DISPLAYED_FIELDS = ("from", "subject", "reply-to", "to", "cc", "sender", "date", "content-type")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.lines.append(record.getMessage())


class _KeyLookup:
    """dkimpy's `dnsfunc` on our resolver; remembers each answer so a failure can be explained."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.answers: dict[str, Answer] = {}

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes:
        qname = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        answer = self.resolver.resolve(qname, "TXT")
        self.answers[qname.rstrip(".").lower()] = answer
        return answer.records[0].encode() if answer.ok and answer.records else b""


def verify_dkim(message: Message, resolver: Resolver) -> list[DkimCheck]:
    """Each DKIM-Signature by dkimpy (RFC 6376 §6), keys asked through `resolver`."""
    import dkim

    canon.install()  # dkimpy's relaxed body canonicalization: 378 MB on a 9 MB body, once per signature
    signatures = read_signatures(message)
    dnsfunc = _KeyLookup(resolver)
    answers = dnsfunc.answers

    out: list[DkimCheck] = []
    capture = _Capture()
    logger = logging.getLogger("provisioner.inspect.dkim")
    logger.propagate = False  # dkimpy's complaints are our results, not log lines
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    try:
        try:
            verifier = dkim.DKIM(message.data, logger=logger) if message.has_body else None
        except dkim.DKIMException as exc:  # dkimpy refuses the header section itself (`Subject : x`, bare CR)
            detail = f"DKIM cannot read this message: {exc}"
            return [DkimCheck(s, DkimOutcome.PERMERROR, DkimReason.BAD_SIGNATURE, detail) for s in signatures]
        for idx, signature in enumerate(signatures):
            if verifier is None:
                out.append(DkimCheck(signature, DkimOutcome.NEUTRAL, DkimReason.NO_BODY, "only the header section was given; the body hash cannot be checked"))
                continue
            capture.lines.clear()
            key_name = f"{signature.selector}._domainkey.{signature.domain}"
            try:
                ok = bool(verifier.verify(idx=idx, dnsfunc=dnsfunc))
            except dkim.DKIMException as exc:  # a broken body hash, a malformed or expired signature
                checked = _classify(signature, False, str(exc), answers.get(key_name))
                if checked.reason is DkimReason.HEADERS_CHANGED:  # not one of the known failures: the field itself
                    checked = DkimCheck(signature, DkimOutcome.PERMERROR, DkimReason.BAD_SIGNATURE, str(exc))
                out.append(checked)
                continue
            except (ValueError, IndexError, KeyError, TypeError) as exc:  # dkimpy on input it did not foresee
                out.append(DkimCheck(signature, DkimOutcome.NEUTRAL, DkimReason.BAD_SIGNATURE, f"{type(exc).__name__}: {exc}"))
                continue
            checked = _classify(signature, ok, " ".join(capture.lines), answers.get(key_name))
            if checked.outcome is DkimOutcome.PASS:
                checked = _coverage(checked, message, verifier.body)
            out.append(checked)
    finally:
        logger.removeHandler(capture)
    return out


def _coverage(check: DkimCheck, message: Message, body: bytes) -> DkimCheck:
    from dataclasses import replace

    unsigned, appended = coverage(check.signature, message, body)
    return replace(check, unsigned=unsigned, appended=appended) if unsigned or appended else check


def coverage(signature: Signature, message: Message, body: bytes | None = None) -> tuple[tuple[str, ...], int]:
    """What a signature leaves uncovered: displayed fields present more often than h= lists them
    (an added second Subject, an unsigned Reply-To), and body bytes beyond l= (RFC 6376 §8.2)."""
    from dkim.canonicalization import CanonicalizationPolicy, InvalidCanonicalizationPolicyError

    canon.install()
    signed = signature.signed_headers
    unsigned = tuple(name for name in DISPLAYED_FIELDS if len(message.all(name)) > signed.count(name))
    appended = 0
    if signature.body_length is not None:
        if body is None:
            parts = HEADER_END.split(message.data, maxsplit=1)
            body = parts[1] if len(parts) == 2 else b""
        try:
            policy = CanonicalizationPolicy.from_c_value(signature.canonicalization.encode())
            appended = max(0, len(policy.canonicalize_body(body)) - signature.body_length)
        except (InvalidCanonicalizationPolicyError, ValueError):
            appended = 0
    return unsigned, appended


def _classify(signature: Signature, ok: bool, log: str, key: Answer | None) -> DkimCheck:
    if ok:
        return DkimCheck(signature, DkimOutcome.PASS, DkimReason.VERIFIED, "")
    lower = log.lower()
    if key is not None and key.failed:
        return DkimCheck(signature, DkimOutcome.TEMPERROR, DkimReason.DNS_FAILED, f"key lookup: {key.describe()}")
    if key is not None and key.ok:
        record = parse_dkim(key.records[0])
        if not isinstance(record, Invalid) and record.revoked:
            return DkimCheck(signature, DkimOutcome.PERMERROR, DkimReason.REVOKED, "the key was revoked (p= is empty): the signer withdrew it")
    if "missing public key" in lower or (key is not None and key.void):
        return DkimCheck(signature, DkimOutcome.PERMERROR, DkimReason.NO_KEY, f"no key at {signature.selector}._domainkey.{signature.domain}")
    if "body hash mismatch" in lower:
        return DkimCheck(signature, DkimOutcome.FAIL, DkimReason.BODY_CHANGED, "body hash mismatch: the body was changed after signing")
    if "public key" in lower or "keyformat" in lower:
        return DkimCheck(signature, DkimOutcome.PERMERROR, DkimReason.BAD_KEY, log[:200])
    return DkimCheck(signature, DkimOutcome.FAIL, DkimReason.HEADERS_CHANGED, "signature does not verify: a signed header field was changed after signing")


@dataclass(frozen=True)
class SpfCheck:
    address: str
    helo: str
    mail_from: str  # "" for the null sender: then the HELO identity was checked
    domain: str  # the domain whose record decided
    result: SpfResult
    explanation: str


def verify_spf(address: str, helo: str, mail_from: str, resolver: Resolver) -> SpfCheck:
    """RFC 7208 §2.4: MAIL FROM, or postmaster@HELO for the null sender."""
    domain = normal_domain(mail_from.rpartition("@")[2]) if mail_from else normal_domain(helo)
    found = check_host(address, domain, helo, resolver, sender=mail_from or f"postmaster@{helo}")
    return SpfCheck(address, helo, mail_from, domain, found.result, found.explanation)


@dataclass(frozen=True)
class ArcCheck:
    """RFC 8617 §5.2: the chain's validation state (pass / fail / none), the sealers in order
    (d= of ARC-Seal i=1, 2, ...) and what the first sealer recorded (its ARC-Authentication-Results)."""

    result: str
    reason: str
    sealers: tuple[str, ...]
    first_results: str


def verify_arc(message: Message, resolver: Resolver) -> ArcCheck | None:
    """dkimpy's arc_verify on our resolver; None when the message carries no ARC set."""
    import dkim

    seals = message.all("arc-seal")
    if not seals:
        return None
    sealers: list[tuple[int, str]] = []
    for seal in seals:
        tags = parse_tags(seal.raw)
        if not isinstance(tags, Invalid) and tags.get("i", "").strip().isdigit():
            sealers.append((int(tags["i"]), normal_domain(tags.get("d", ""))))
    first = next((f.raw for f in message.all("arc-authentication-results") if f.raw.replace(" ", "").startswith("i=1;")), "")
    try:
        cv, _results, reason = dkim.arc_verify(message.data, dnsfunc=_KeyLookup(resolver))
        result = cv.decode() if isinstance(cv, bytes) else str(cv)
    except (dkim.DKIMException, ValueError, IndexError, KeyError, TypeError) as exc:  # a malformed set
        result, reason = "fail", f"{type(exc).__name__}: {exc}"
    return ArcCheck(result, str(reason or ""), tuple(d for _, d in sorted(sealers)), first.split(";", 1)[1].strip() if ";" in first else "")


@dataclass(frozen=True)
class ReverseCheck:
    """Forward-confirmed reverse DNS of the address that handed the message over (RFC 8601 §2.7.3
    iprev: the PTR names, and whether one of them resolves back to the address)."""

    address: str
    names: tuple[str, ...]  # PTR targets, without the trailing dot
    confirmed: str  # the name that resolves back to the address ("" when none does)
    failed: bool  # a lookup failed: nothing can be said


def verify_reverse(address: str, resolver: Resolver) -> ReverseCheck:
    import ipaddress

    from provisioner.mailauth.resolver import reverse_name

    ip = ipaddress.ip_address(address)
    ptr = resolver.resolve(reverse_name(ip), "PTR")
    if ptr.failed:
        return ReverseCheck(address, (), "", True)
    names = tuple(sorted(n.rstrip(".").lower() for n in ptr.records)) if ptr.ok else ()
    for name in names[:10]:  # RFC 8601 §2.7.3 follows iprev in RFC 5451: a bounded number of names
        forward = resolver.resolve(name, "A" if ip.version == 4 else "AAAA")
        if forward.ok and any(_same_address(value, ip) for value in forward.records):
            return ReverseCheck(address, names, name, False)
    return ReverseCheck(address, names, "", False)


def _same_address(value: str, ip: object) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(value) == ip
    except ValueError:
        return False


class DmarcOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"  # the From domain publishes no DMARC record
    TEMPERROR = "temperror"
    PERMERROR = "permerror"  # several records, or one that cannot be read


@dataclass(frozen=True)
class DmarcCheck:
    from_domain: str
    record_domain: str  # where the record was found ("" when none)
    record: DmarcRecord | None
    outcome: DmarcOutcome
    policy: str  # the policy that applies: none / quarantine / reject ("" when no record)
    spf_aligned: bool
    dkim_aligned_pass: tuple[str, ...]  # d= of signatures that pass and align
    detail: str


def _dmarc_records(answer: Answer) -> list[str]:
    return [t for t in answer.records if is_dmarc(t)] if answer.ok else []


def find_dmarc(from_domain: str, resolver: Resolver) -> tuple[str, DmarcRecord | None, str, DmarcOutcome | None]:
    """RFC 7489 §6.6.3: _dmarc.<From domain>, else _dmarc.<organizational domain>.
    Returns (record domain, record, detail, error outcome)."""
    candidates = [from_domain]
    org = organizational_domain(from_domain)
    if org and org != from_domain:
        candidates.append(org)
    for domain in candidates:
        answer = resolver.resolve(f"_dmarc.{domain}", "TXT")
        if answer.failed:
            return domain, None, f"_dmarc.{domain}: {answer.describe()}", DmarcOutcome.TEMPERROR
        records = _dmarc_records(answer)
        if len(records) > 1:
            return domain, None, f"_dmarc.{domain} has {len(records)} DMARC records: none applies (RFC 7489 §6.6.3)", DmarcOutcome.PERMERROR
        if records:
            parsed = parse_dmarc(records[0])
            if isinstance(parsed, Invalid):
                return domain, None, f"_dmarc.{domain}: {parsed.reason}", DmarcOutcome.PERMERROR
            return domain, parsed, "", None
    return "", None, f"no DMARC record at _dmarc.{from_domain}" + (f" or _dmarc.{org}" if org != from_domain else ""), DmarcOutcome.NONE


def evaluate_dmarc(
    from_domain: str,
    spf: SpfCheck | None,
    dkim: list[DkimCheck],
    resolver: Resolver,
) -> DmarcCheck:
    """RFC 7489 §3.1, §6.6.2: pass when SPF passes for an aligned MAIL FROM (the HELO domain
    for the null sender) or a DKIM signature passes with an aligned d=."""
    record_domain, record, detail, error = find_dmarc(from_domain, resolver)
    adkim = record.adkim if record else "r"
    aspf = record.aspf if record else "r"
    spf_aligned = bool(spf and spf.result is SpfResult.PASS and aligned(spf.domain, from_domain, aspf))
    dkim_pass = tuple(c.signature.domain for c in dkim if c.outcome is DkimOutcome.PASS and aligned(c.signature.domain, from_domain, adkim))
    if error is not None:
        return DmarcCheck(from_domain, record_domain, None, error, "", spf_aligned, dkim_pass, detail)
    assert record is not None
    policy = record.policy
    if record_domain != from_domain and record.subdomain_policy:
        policy = record.subdomain_policy  # RFC 7489 §6.3 sp=: the record was found at the organizational domain
    outcome = DmarcOutcome.PASS if spf_aligned or dkim_pass else DmarcOutcome.FAIL
    return DmarcCheck(from_domain, record_domain, record, outcome, policy, spf_aligned, dkim_pass, "")
