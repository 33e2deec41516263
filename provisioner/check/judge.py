"""Judge: what the site declares (records from site_records) against what DNS answered.

Pure functions of expected records, answers and parsed values; no DNS, never raises. Each
rule cites the standard it enforces (ids in docs/rules.md).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from provisioner.check.findings import Category, Finding, Severity
from provisioner.dns.formats import rdata
from provisioner.dns.records import Level, Record
from provisioner.mailauth.grammar import (
    DkimRecord,
    DmarcRecord,
    DnsblCode,
    Invalid,
    MxValue,
    classify_dnsbl_answer,
    dkim_key_bits,
    dnsbl_meaning,
    is_dmarc,
    mailto_domain,
    parse_dkim,
    parse_dmarc,
    parse_mx,
)
from provisioner.mailauth.resolver import Answer, Outcome
from provisioner.mailauth.spf import MAX_LOOKUPS, MAX_VOID_LOOKUPS, HostResult, SpfProblemKind, SpfResult, SpfWalk, spf_records


def zone_line(record: Record) -> str:
    """The record as one zone-file line: what to enter, exactly."""
    return f"{record.name}. {record.ttl} IN {record.type} {rdata(record)}"


def _missing_severity(record: Record) -> Severity:
    return Severity.ERROR if record.level is Level.REQUIRED else Severity.WARNING


def _failed(domain: str, category: Category, prefix: str, answer: Answer, expected: str) -> Finding:
    return Finding(
        f"{prefix}.unresolved",
        domain,
        category,
        Severity.ERROR,
        answer.name,
        expected,
        answer.describe(),
        _UNRESOLVED_ADVICE[answer.outcome],
    )


# run_check stops first when the resolver itself is silent (ResolverUnreachable), so what is left
# is about the name: its zone's servers, or the resolver's verdict on them.
_UNRESOLVED_ADVICE = {
    Outcome.TIMEOUT: "the resolver replies, but not for this name in time: check that the zone's nameservers answer, then retry (or raise --timeout)",
    Outcome.SERVFAIL: "the resolver could not resolve this name (SERVFAIL/REFUSED): check the zone's delegation and DNSSEC, then retry",
}


def _norm(value: str, rtype: str) -> str:
    return value if rtype == "TXT" else value.lower().rstrip(".")


# ---------------------------------------------------------------------------- generic records


def judge_records(domain: str, category: Category, prefix: str, expected: Sequence[Record], answer: Answer, single: bool = False) -> list[Finding]:
    """Every expected value at one (name, type) is published; other values at the name are
    reported (as a warning) when the expected set is complete. TXT compares the joined strings.
    `single`: more than one record of the kind makes readers ignore them all (an error)."""
    if not expected:
        return []
    rtype = expected[0].type
    want = [r for r in expected]
    if answer.failed:
        return [_failed(domain, category, prefix, answer, " | ".join(r.value for r in want))]
    seen = {_norm(v, rtype): v for v in answer.records}
    # Other TXT records may share the name (e.g. verification tokens): only same-kind ones count.
    relevant = seen
    if rtype == "TXT":
        kinds = {r.value.split(";", 1)[0].split(" ", 1)[0].lower() for r in want}
        relevant = {k: v for k, v in seen.items() if k.split(";", 1)[0].split(" ", 1)[0].lower() in kinds}
    if single and len(relevant) > 1:
        return [
            Finding(
                f"{prefix}.multiple",
                domain,
                category,
                Severity.ERROR,
                want[0].name,
                " | ".join(r.value for r in want),
                " | ".join(relevant.values()),
                f"keep one record: {zone_line(want[0])}",
            )
        ]
    findings: list[Finding] = []
    for record in want:
        if _norm(record.value, rtype) in seen:
            findings.append(Finding(f"{prefix}.match", domain, category, Severity.PASS, record.name, record.value, seen[_norm(record.value, rtype)], ""))
            continue
        other = " | ".join(relevant.values())
        if other:
            findings.append(
                Finding(
                    f"{prefix}.mismatch",
                    domain,
                    category,
                    _missing_severity(record),
                    record.name,
                    record.value,
                    other,
                    f"replace the {rtype} record at {record.name} with: {zone_line(record)}",
                )
            )
        else:
            findings.append(
                Finding(
                    f"{prefix}.missing", domain, category, _missing_severity(record), record.name, record.value, answer.describe(), f"add: {zone_line(record)}"
                )
            )
    wanted = {_norm(r.value, rtype) for r in want}
    extra = [v for k, v in relevant.items() if k not in wanted]
    if extra and all(f.severity is Severity.PASS for f in findings):
        findings.append(
            Finding(
                f"{prefix}.unexpected",
                domain,
                category,
                Severity.WARNING,
                want[0].name,
                " | ".join(r.value for r in want),
                " | ".join(extra),
                f"remove the {rtype} record(s) at {want[0].name} the site does not declare: {' | '.join(extra)}",
            )
        )
    return findings


# ---------------------------------------------------------------------------- MX (RFC 5321 §5.1, RFC 7505)


def judge_mx(domain: str, expected: Sequence[Record], answer: Answer) -> list[Finding]:
    if not expected:
        return []
    name = expected[0].name
    if answer.failed:
        return [_failed(domain, Category.MX, "mx", answer, " | ".join(r.value for r in expected))]
    seen: dict[str, MxValue] = {}
    for value in answer.records:
        mx = parse_mx(value)
        if isinstance(mx, MxValue):
            seen[mx.host] = mx
    findings: list[Finding] = []
    for record in expected:
        want = parse_mx(record.value)
        assert isinstance(want, MxValue)
        got = seen.get(want.host)
        if got == want:
            findings.append(Finding("mx.match", domain, Category.MX, Severity.PASS, name, str(want), str(got), ""))
        elif got is not None:
            findings.append(
                Finding(
                    "mx.priority",
                    domain,
                    Category.MX,
                    _missing_severity(record),
                    name,
                    str(want),
                    str(got),
                    f"change the priority: {zone_line(record)}",
                )
            )
        else:
            findings.append(
                Finding("mx.missing", domain, Category.MX, _missing_severity(record), name, str(want), answer.describe(), f"add: {zone_line(record)}")
            )
    ours = [mx for mx in (parse_mx(r.value) for r in expected) if isinstance(mx, MxValue)]
    wanted = {mx.host for mx in ours}
    extra = [mx for host, mx in sorted(seen.items()) if host not in wanted]
    if not extra:
        return findings
    declared = " | ".join(r.value for r in expected)
    remove = "remove the MX record(s) the site does not declare: "
    if "." in seen and len(seen) > 1:  # RFC 7505 §3: a null MX stands alone
        text = " | ".join(map(str, extra))
        findings.append(Finding("mx.unexpected", domain, Category.MX, Severity.ERROR, name, declared, text, remove + text))
        return findings
    # RFC 5321 §5.1: senders try MX hosts lowest preference first, a random one among equals. An MX
    # we do not declare that is tried before (or with) any of ours receives our mail: a hijack, an
    # error. One tried only after all of ours fail is a stale backup: a warning. Ours count at the
    # preference declared and at the one published, whichever is later.
    last = max((mx.priority for mx in [*ours, *(seen[h] for h in wanted if h in seen)]), default=-1)
    first = [mx for mx in extra if mx.priority <= last]
    after = [mx for mx in extra if mx.priority > last]
    if first:
        text = " | ".join(map(str, first))
        findings.append(
            Finding(
                "mx.unexpected-preferred",
                domain,
                Category.MX,
                Severity.ERROR,
                name,
                declared,
                text,
                f"mail goes to these hosts before or alongside yours (lower or equal preference number); {remove}{text}",
            )
        )
    if after:
        text = " | ".join(map(str, after))
        findings.append(Finding("mx.unexpected", domain, Category.MX, Severity.WARNING, name, declared, text, remove + text))
    return findings


# ---------------------------------------------------------------------------- SPF (RFC 7208)


def judge_spf(domain: str, expected: Record, answer: Answer, walk: SpfWalk | None, host_results: Sequence[HostResult]) -> list[Finding]:
    name = expected.name
    if answer.failed:
        return [_failed(domain, Category.SPF, "spf", answer, expected.value)]
    records = spf_records(answer)
    fix = f"publish exactly one SPF record: {zone_line(expected)}"
    findings: list[Finding] = []

    def add(fid: str, severity: Severity, seen: str, advice: str = "", want: str = expected.value) -> None:
        findings.append(Finding(fid, domain, Category.SPF, severity, name, want, seen, advice))

    if not records:
        add("spf.missing", _missing_severity(expected), answer.describe(), f"add: {zone_line(expected)}")
        return findings
    if len(records) > 1:  # RFC 7208 §3.2, §4.5: more than one → permerror
        add("spf.multiple", Severity.ERROR, " | ".join(records), f"delete all but one; {fix}")
        return findings
    if records[0] == expected.value:
        add("spf.match", Severity.PASS, records[0])
    else:
        add("spf.mismatch", _missing_severity(expected), records[0], f"replace it: {zone_line(expected)}")
    if walk is not None:
        findings += _judge_walk(domain, name, walk, expected)
    for result in host_results:
        target = f"{result.address} sending as {result.sender}"
        if result.result is SpfResult.PASS:
            add("spf.authorized", Severity.PASS, f"{target}: pass", want=f"{target}: pass")
        elif result.result is SpfResult.UNAVAILABLE:
            add("spf.check-host-unavailable", Severity.WARNING, result.explanation, "install pyspf to evaluate check_host()", want=f"{target}: pass")
        else:
            # RFC 7208 §4: every outbound address must get pass (SPF-17).
            add(
                "spf.not-authorized",
                Severity.ERROR,
                f"{target}: {result.result.value} ({result.explanation})",
                f"authorize {result.address}: {zone_line(expected)}",
                want=f"{target}: pass",
            )
    return findings


def _judge_walk(domain: str, name: str, walk: SpfWalk, expected: Record) -> list[Finding]:
    findings: list[Finding] = []
    fix = f"flatten includes (ip4:/ip6: cost no lookup) so the total stays at or under {MAX_LOOKUPS}"
    ids = {
        SpfProblemKind.SYNTAX: ("spf.syntax", Severity.ERROR),
        SpfProblemKind.NO_RECORD: ("spf.include-missing", Severity.ERROR),
        SpfProblemKind.MULTIPLE: ("spf.multiple", Severity.ERROR),
        SpfProblemKind.LOOP: ("spf.loop", Severity.ERROR),
        SpfProblemKind.TEMPERROR: ("spf.unresolved", Severity.ERROR),
        SpfProblemKind.TOO_MANY_MX: ("spf.too-many-mx", Severity.ERROR),
        SpfProblemKind.PTR: ("spf.ptr", Severity.WARNING),
        SpfProblemKind.MACRO: ("spf.macro", Severity.WARNING),
    }
    for problem in walk.problems:
        fid, severity = ids[problem.kind]
        if problem.kind is SpfProblemKind.MULTIPLE and problem.where == walk.domain:
            continue  # reported at the top already
        findings.append(Finding(fid, domain, Category.SPF, severity, problem.where, "a valid SPF record", problem.detail, f"fix the record at {problem.where}"))
    # RFC 7208 §4.6.4: at most 10 DNS-querying terms, counted through includes and redirects.
    path = " -> ".join(walk.chain)
    if walk.lookups > MAX_LOOKUPS:
        findings.append(
            Finding(
                "spf.too-many-lookups",
                domain,
                Category.SPF,
                Severity.ERROR,
                name,
                f"at most {MAX_LOOKUPS} DNS lookups",
                f"{walk.lookups} lookups via {path}",
                fix,
            )
        )
    else:
        findings.append(Finding("spf.lookups", domain, Category.SPF, Severity.PASS, name, f"at most {MAX_LOOKUPS} DNS lookups", f"{walk.lookups} lookups", ""))
    # RFC 7208 §4.6.4: at most 2 void lookups (NXDOMAIN or empty answers).
    if walk.void_lookups > MAX_VOID_LOOKUPS:
        findings.append(
            Finding(
                "spf.too-many-void-lookups",
                domain,
                Category.SPF,
                Severity.ERROR,
                name,
                f"at most {MAX_VOID_LOOKUPS} void lookups",
                f"{walk.void_lookups} void: {', '.join(walk.void_names)}",
                "remove the terms that name nonexistent or empty names",
            )
        )
    record = walk.record
    if record is not None:
        last = record.all
        if last is not None and last.qualifier.value == "+":
            findings.append(
                Finding("spf.pass-all", domain, Category.SPF, Severity.ERROR, name, "-all or ~all", last.text, f"end with -all: {zone_line(expected)}")
            )
        elif last is not None and last.qualifier.value == "?":
            findings.append(Finding("spf.neutral-all", domain, Category.SPF, Severity.WARNING, name, "-all or ~all", last.text, "end with -all or ~all"))
        elif last is None and record.redirect is None:  # RFC 7208 §4.7: neutral by default
            findings.append(
                Finding("spf.no-all", domain, Category.SPF, Severity.WARNING, name, "-all or ~all", record.text, "end the record with -all or ~all")
            )
    return findings


# ---------------------------------------------------------------------------- DKIM (RFC 6376, RFC 8301)


def _key_bytes(p: str) -> bytes | None:
    try:
        return base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        return None


def judge_dkim(domain: str, expected: Record, answer: Answer, role: str = "") -> list[Finding]:
    """One selector's record against what DNS serves. `role` is what the key state says the
    selector is ("standby selector (...)"), carried by every row as its `state`, so each row tells
    whether DNS serves the selector as the state knows it (match, missing, mismatch: another key,
    revoked)."""
    name = expected.name
    if answer.failed:
        return [replace(_failed(domain, Category.DKIM, "dkim", answer, expected.value), state=role)]
    want = parse_dkim(expected.value)
    assert isinstance(want, DkimRecord)
    findings: list[Finding] = []

    def add(fid: str, severity: Severity, seen: str, advice: str = "", want_text: str = expected.value) -> None:
        findings.append(Finding(fid, domain, Category.DKIM, severity, name, want_text, seen, advice, state=role))

    keys = [txt for txt in answer.records if "p=" in txt or txt.startswith("v=DKIM1")]
    if not keys:
        add("dkim.missing", _missing_severity(expected), answer.describe(), f"add: {zone_line(expected)}")
        return findings
    if len(keys) > 1:  # RFC 6376 §3.6.2.2: TXT RRs MUST be unique for a selector
        add("dkim.multiple", Severity.ERROR, " | ".join(keys), f"keep one record: {zone_line(expected)}")
        return findings
    seen = parse_dkim(keys[0])
    if isinstance(seen, Invalid):
        add("dkim.syntax", Severity.ERROR, f"{keys[0]} ({seen.reason})", f"replace it: {zone_line(expected)}")
        return findings
    if want.revoked:
        if seen.revoked:
            add("dkim.match", Severity.PASS, keys[0])
        else:
            add("dkim.not-revoked", Severity.WARNING, keys[0], f"publish the withdrawn selector revoked: {zone_line(expected)}")
        return findings
    # A key verifiers ignore or cannot use is no match, whatever its bytes (RFC 6376 §3.6.1, RFC 8301 §3.1).
    usable = seen.for_email and seen.allows_sha256
    if not seen.revoked and not seen.for_email:
        add(
            "dkim.not-for-email",
            Severity.ERROR,
            f"s={':'.join(seen.services)}",
            f"verifiers ignore this key for mail (RFC 6376 §3.6.1): remove s= or make it s=email; {zone_line(expected)}",
            "s=email or s=* (or no s=)",
        )
    if not seen.revoked and not seen.allows_sha256:
        add(
            "dkim.no-sha256",
            Severity.ERROR,
            f"h={':'.join(seen.hashes or ())}",
            f"verifiers accept only sha256 signatures, never sha1 (RFC 8301 §3.1): remove h= or make it h=sha256; {zone_line(expected)}",
            "h=sha256 (or no h=)",
        )
    # RFC 6376 §3.6: the published key must be the one we sign with, byte for byte (DKIM-14).
    ours, theirs = _key_bytes(want.public_key), seen.key_bytes()
    if seen.key_type == want.key_type and ours is not None and ours == theirs:
        if usable:
            add("dkim.match", Severity.PASS, keys[0])
    elif seen.revoked:
        add("dkim.revoked", _missing_severity(expected), keys[0], f"publish the key: {zone_line(expected)}")
        return findings
    else:
        add("dkim.mismatch", Severity.ERROR, keys[0], f"the published key is not ours; replace it: {zone_line(expected)}")
    bits = dkim_key_bits(seen)
    if seen.key_type == "rsa" and bits is not None:
        # RFC 8301 §3.2: < 1024 MUST NOT be valid; signers SHOULD use >= 2048.
        if bits < 1024:
            add("dkim.key-too-small", Severity.ERROR, f"RSA {bits} bits", "rotate to an RSA key of 2048 bits", "RSA >= 2048 bits")
        elif bits < 2048:
            add("dkim.key-small", Severity.WARNING, f"RSA {bits} bits", "rotate to an RSA key of 2048 bits", "RSA >= 2048 bits")
    elif bits is None:
        add("dkim.key-unreadable", Severity.ERROR, keys[0], f"replace it: {zone_line(expected)}", "a readable public key")
    if seen.testing:  # RFC 6376 §3.6.1: t=y, verifiers treat mail as unsigned
        add("dkim.testing", Severity.WARNING, keys[0], "remove t=y")
    return findings


def judge_stale_dkim(domain: str, selector: str, answer: Answer, role: str = "") -> list[Finding]:
    """A selector the state says was withdrawn beyond its period must no longer be published.
    With `role` (the state's word for it), its absence is reported too: `dkim.removed`."""
    name = f"{selector}._domainkey.{domain}"
    keys = [txt for txt in answer.records if "p=" in txt]
    if not keys:
        if role and not answer.failed:
            return [
                Finding("dkim.removed", domain, Category.DKIM, Severity.PASS, name, "not published (selector withdrawn)", answer.describe(), "", state=role)
            ]
        return []
    return [
        Finding(
            "dkim.stale",
            domain,
            Category.DKIM,
            Severity.WARNING,
            name,
            "not published (selector withdrawn)",
            " | ".join(keys),
            f"delete the TXT record at {name}",
            state=role,
        )
    ]


# ---------------------------------------------------------------------------- DMARC (RFC 7489, RFC 9989)


@dataclass(frozen=True)
class ReportTarget:
    """What DNS said about one rua mailbox domain."""

    domain: str
    mx: Answer
    a: Answer
    aaaa: Answer
    authorization: Answer | None  # <policy-domain>._report._dmarc.<target> TXT, when external


def rua_domains(record: DmarcRecord) -> list[str]:
    return sorted({d for d in (mailto_domain(u) for u in record.rua) if d})


def needs_authorization(policy_domain: str, target: str) -> bool:
    """RFC 7489 §7.1: a report domain outside the policy domain's organisation must authorise.
    Same organisation is approximated as one name under the other (as records.py does)."""
    return not (target == policy_domain or target.endswith("." + policy_domain) or policy_domain.endswith("." + target))


def seen_dmarc(answer: Answer) -> list[str]:
    return [txt for txt in answer.records if is_dmarc(txt)] if answer.ok else []


def judge_dmarc(domain: str, expected: Record, answer: Answer, targets: Mapping[str, ReportTarget]) -> list[Finding]:
    name = expected.name
    if answer.failed:
        return [_failed(domain, Category.DMARC, "dmarc", answer, expected.value)]
    findings: list[Finding] = []

    def add(fid: str, severity: Severity, seen: str, advice: str = "", want: str = expected.value, subject: str = name) -> None:
        findings.append(Finding(fid, domain, Category.DMARC, severity, subject, want, seen, advice))

    records = seen_dmarc(answer)
    if not records:
        add("dmarc.missing", _missing_severity(expected), answer.describe(), f"add: {zone_line(expected)}")
        return findings
    if len(records) > 1:  # RFC 7489 §6.6.3: more than one → no DMARC at all
        add("dmarc.multiple", Severity.ERROR, " | ".join(records), f"keep one record: {zone_line(expected)}")
        return findings
    parsed = parse_dmarc(records[0])
    if isinstance(parsed, Invalid):
        add("dmarc.syntax", Severity.ERROR, f"{records[0]} ({parsed.reason})", f"replace it: {zone_line(expected)}")
        return findings
    if records[0] == expected.value:
        add("dmarc.match", Severity.PASS, records[0])
    else:
        add("dmarc.mismatch", _missing_severity(expected), records[0], f"replace it: {zone_line(expected)}")
    if not parsed.policy_given:  # RFC 7489 §6.3 requires p; RFC 9989 reads it as none
        add("dmarc.no-policy", Severity.WARNING, records[0], "add p=quarantine or p=reject right after v=DMARC1")
    elif parsed.policy == "none":  # DMARC-05: no protection, still valid
        add("dmarc.policy-none", Severity.WARNING, "p=none", "move to p=quarantine, then p=reject, once reports look clean", "p=quarantine or p=reject")
    if parsed.removed_tags:
        add(
            "dmarc.removed-tag",
            Severity.WARNING,
            ", ".join(parsed.removed_tags),
            f"remove {', '.join(parsed.removed_tags)} (removed by RFC 9989)",
            "no pct, rf, ri",
        )
    if parsed.testing and parsed.policy == "reject":
        add("dmarc.testing", Severity.WARNING, "t=y with p=reject", "remove t=y once ready", "no t=y")
    if not parsed.rua:
        add("dmarc.no-rua", Severity.WARNING, records[0], "add rua=mailto:dmarc@<domain> to receive aggregate reports", "an rua= address")
    for target_name in rua_domains(parsed):
        target = targets.get(target_name)
        if target is None:
            continue
        subject = target_name
        lookups = (target.mx, target.a, target.aaaa)
        if any(a.failed for a in lookups) and not any(a.ok for a in lookups):
            add("dmarc.rua-unresolved", Severity.ERROR, target.mx.describe(), "retry; the report domain did not answer", "MX or A/AAAA", subject)
        elif target.mx.ok or target.a.ok or target.aaaa.ok:  # RFC 5321 §5.1: implicit MX on A/AAAA
            if target.mx.ok and all(v.strip() == "0 ." for v in target.mx.records):
                add("dmarc.rua-no-mail", Severity.ERROR, "null MX (0 .)", f"send reports to a domain that accepts mail, not {target_name}", "MX", subject)
            else:
                add("dmarc.rua-accepts-mail", Severity.PASS, target.mx.describe() if target.mx.ok else target.a.describe(), "", "MX or A/AAAA", subject)
        else:  # DMARC-15: the report mailbox's domain needs an MX
            add(
                "dmarc.rua-no-mail",
                Severity.ERROR,
                target.mx.describe(),
                f"give {target_name} an MX record, or send reports elsewhere",
                "MX or A/AAAA",
                subject,
            )
        if target.authorization is not None:
            auth_name = f"{domain}._report._dmarc.{target_name}"
            # RFC 7489 §7.1: without it, reporters silently send nothing (DMARC-14).
            if any(is_dmarc(t) for t in target.authorization.records):
                add("dmarc.report-authorized", Severity.PASS, target.authorization.describe(), "", "v=DMARC1", auth_name)
            else:
                add(
                    "dmarc.report-unauthorized",
                    Severity.ERROR,
                    target.authorization.describe(),
                    f'{target_name} must publish: {auth_name}. 3600 IN TXT "v=DMARC1"',
                    "v=DMARC1",
                    auth_name,
                )
    return findings


# ---------------------------------------------------------------------------- PTR (FCrDNS)


def judge_ptr(host_fqdn: str, address: str, expected: Record, ptr: Answer, forward: Mapping[str, Answer]) -> list[Finding]:
    """PTR exists, names the host, and that name's A/AAAA contains the address (PTR-01..03)."""
    name = expected.name
    want = expected.value.lower().rstrip(".")
    findings: list[Finding] = []

    def add(fid: str, severity: Severity, seen: str, advice: str = "", want_text: str = f"{address} -> {want}") -> None:
        findings.append(Finding(fid, host_fqdn, Category.PTR, severity, address, want_text, seen, advice))

    advice = f"ask your hosting/IP provider to set: {zone_line(expected)}"
    if ptr.failed:
        add("ptr.unresolved", Severity.ERROR, ptr.describe(), "the reverse zone did not answer; retry")
        return findings
    targets = [v.lower().rstrip(".") for v in ptr.records]
    if not targets:
        add("ptr.missing", Severity.ERROR, ptr.describe(), advice)
        return findings
    if len(targets) > 1:
        add("ptr.multiple", Severity.WARNING, " | ".join(targets), advice)
    if want not in targets:
        add("ptr.mismatch", Severity.ERROR, " | ".join(targets), advice)
    confirmed = [t for t in targets if any(_same_ip(address, v) for v in forward.get(t, Answer(name, "A", ptr.outcome)).records)]
    if not confirmed:
        seen_forward = "; ".join(f"{t}: {forward[t].describe()}" for t in targets if t in forward)
        add(
            "ptr.not-confirmed",
            Severity.ERROR,
            seen_forward or "no forward lookup",
            f"give {targets[0]} the address {address} (A/AAAA), or fix the PTR",
            f"{targets[0]} resolves to {address}",
        )
    if want in targets and confirmed:
        add("ptr.match", Severity.PASS, f"{address} -> {want} -> {address}")
    return findings


def _same_ip(a: str, b: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


# ---------------------------------------------------------------------------- DNSBL (RFC 5782)


@dataclass(frozen=True)
class ListHealth:
    """RFC 5782 §5: 127.0.0.2 must be listed, 127.0.0.1 must not (BL-07)."""

    zone: str
    test_listed: Answer  # 2.0.0.127.<zone>.
    test_clean: Answer  # 1.0.0.127.<zone>.

    @property
    def problem(self) -> str | None:
        if self.test_listed.failed:
            return f"test entry 127.0.0.2 not answered ({self.test_listed.describe()})"
        codes = [classify_dnsbl_answer(v) for v in self.test_listed.records]
        if DnsblCode.ERROR in codes:
            return dnsbl_meaning(self.zone, self.test_listed.records[codes.index(DnsblCode.ERROR)])
        if DnsblCode.LISTED not in codes:
            return f"test entry 127.0.0.2 is not listed ({self.test_listed.describe()}): not a working DNSBL"
        if self.test_clean.ok:
            return f"127.0.0.1 is listed ({self.test_clean.describe()}): the list answers 'listed' for everything"
        return None


def judge_dnsbl(host_fqdn: str, address: str, health: ListHealth, answer: Answer | None) -> list[Finding]:
    zone = health.zone
    subject = f"{address} @ {zone}"

    def finding(fid: str, severity: Severity, seen: str, advice: str) -> Finding:
        return Finding(fid, host_fqdn, Category.DNSBL, severity, subject, "not listed", seen, advice)

    if health.problem is not None or answer is None:
        return [
            finding(
                "dnsbl.unknown",
                Severity.WARNING,
                f"could not determine: {health.problem}",
                f"query {zone} through your own recursive resolver (--dnsbl-nameserver)",
            )
        ]
    if answer.void:
        return [finding("dnsbl.clean", Severity.PASS, "not listed", "")]
    if answer.failed:
        return [finding("dnsbl.unknown", Severity.WARNING, f"could not determine: {answer.describe()}", "retry later")]
    codes = {v: classify_dnsbl_answer(v) for v in answer.records}
    listed = sorted(v for v, c in codes.items() if c is DnsblCode.LISTED)
    if listed:
        return [
            finding(
                "dnsbl.listed",
                Severity.ERROR,
                "; ".join(dnsbl_meaning(zone, v) for v in listed),
                f"find the cause (open relay, compromised account, missing PTR), then request delisting at the operator of {zone}",
            )
        ]
    errors = sorted(v for v, c in codes.items() if c is DnsblCode.ERROR)
    if errors:  # BL-04: never "listed"
        return [
            finding(
                "dnsbl.unknown", Severity.WARNING, "; ".join(dnsbl_meaning(zone, v) for v in errors), "use --dnsbl-nameserver with your own recursive resolver"
            )
        ]
    return [finding("dnsbl.unknown", Severity.WARNING, f"could not determine: unexpected answer {answer.describe()}", f"check that {zone} is a DNSBL zone")]
