"""`provision check`: ask DNS what the world sees, judge it against what the site declares.

One function, `run_check`, for the CLI. Domains and hosts are checked concurrently in a bounded
thread pool (DNS waits dominate; dnspython's sync resolver releases the GIL while it waits);
each question has its own timeout in the resolver, and answers are cached for the run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import dns.name
import dns.reversename

from provisioner.check.findings import Category, Finding, Report, Severity, sort_findings
from provisioner.check.judge import (
    ListHealth,
    ReportTarget,
    judge_dkim,
    judge_dmarc,
    judge_dnsbl,
    judge_mx,
    judge_ptr,
    judge_records,
    judge_spf,
    judge_stale_dkim,
    needs_authorization,
    rua_domains,
    seen_dmarc,
)
from provisioner.dns.records import Record, site_records
from provisioner.keys.store import RETIRED_DAYS, WITHDRAWN_DAYS, KeyState, KeyStatus
from provisioner.mailauth.grammar import Invalid, parse_dmarc
from provisioner.mailauth.resolver import Answer, CachingResolver, Resolver, ResolverUnreachable, dnsbl_name, silent_probe
from provisioner.mailauth.spf import HostResult, check_host, walk_spf
from provisioner.site.model import Host, Site

CountProgress = Callable[[int, int], None]  # (done, total): what the CLI draws a bar from


def _describe(resolver: Resolver) -> str:
    describe = getattr(resolver, "describe", None)
    return str(describe()) if callable(describe) else type(resolver).__name__


def run_check(
    site: Site,
    keys: KeyState,
    resolver: Resolver,
    dnsbl_resolver: Resolver | None = None,
    concurrency: int = 32,
    timeout: float = 2.0,
    progress: CountProgress | None = None,
    today: dt.date | None = None,
) -> Report:
    """Check every domain and host of `site`. Never raises for what DNS says; a bug in one
    domain's check becomes a `check.internal-error` finding for that domain.

    `timeout` is the per-question timeout the resolver was built with; pyspf gets ten times
    that for a whole check_host() (RFC 7208 §4.6.4 suggests at least 20 s, SPF-20).
    DNSBL questions go to `dnsbl_resolver` when given (BL-05).

    Raises ResolverUnreachable, before judging anything, when a resolver gives no reply at all
    (two questions, `timeout` each): a dead resolver is one problem, not one per record.
    """
    today = today or dt.date.today()
    _require_reply(resolver, min(site.domains, default="."), "--nameserver", timeout)
    if dnsbl_resolver is not None and site.policy.dnsbl:
        _require_reply(dnsbl_resolver, site.policy.dnsbl[0].zone, "--dnsbl-nameserver", timeout)
    records = site_records(site, keys, today=today)
    cached = CachingResolver(resolver)
    bl_cached = CachingResolver(dnsbl_resolver) if dnsbl_resolver is not None else cached
    host_names = {h.fqdn for h in site.hosts.values()}
    senders = [(a, h) for _, h in site.sending_hosts for a in h.addresses]

    by_domain: dict[str, list[Record]] = {d: [] for d in site.domains}
    by_host: dict[str, list[Record]] = {h.fqdn: [] for h in site.hosts.values()}
    ptr_by_host: dict[str, list[Record]] = {h.fqdn: [] for h in site.hosts.values()}
    for record in records.records:
        if record.type == "PTR":
            ptr_by_host.setdefault(record.value.rstrip("."), []).append(record)
        elif record.name in host_names:
            by_host[record.name].append(record)
        elif "._report._dmarc." in record.name:
            continue  # judged with the policy domain's DMARC record
        elif record.zone in by_domain:
            by_domain[record.zone].append(record)

    # RFC 5782 §5: each list's test entries first, once per list.
    health = {
        z.zone: ListHealth(z.zone, bl_cached.resolve(dnsbl_name("127.0.0.2", z.zone), "A"), bl_cached.resolve(dnsbl_name("127.0.0.1", z.zone), "A"))
        for z in site.policy.dnsbl
    }
    sending_fqdns = {h.fqdn for _, h in site.sending_hosts}

    jobs: list[tuple[str, Callable[[], list[Finding]]]] = []
    for domain in sorted(site.domains):
        jobs.append((domain, _bind_domain(site, keys, domain, by_domain[domain], cached, senders, timeout, today)))
    for host in sorted(site.hosts.values(), key=lambda h: h.fqdn):
        jobs.append((host.fqdn, _bind_host(host, by_host[host.fqdn], ptr_by_host.get(host.fqdn, []), cached, bl_cached, health, host.fqdn in sending_fqdns)))

    findings: list[Finding] = []
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(job): subject for subject, job in jobs}
        for future in as_completed(futures):
            subject = futures[future]
            try:
                findings += future.result()
            except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                findings.append(
                    Finding(
                        "check.internal-error",
                        subject,
                        Category.CHECK,
                        Severity.ERROR,
                        subject,
                        "a completed check",
                        f"{type(exc).__name__}: {exc}",
                        "report this as a bug",
                    )
                )
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    return Report(
        sort_findings(findings),
        tuple(sorted(site.domains)),
        tuple(sorted(host_names)),
        _describe(resolver),
        _describe(dnsbl_resolver) if dnsbl_resolver is not None else _describe(resolver),
    )


def _require_reply(resolver: Resolver, zone: str, option: str, timeout: float) -> None:
    silent = silent_probe(resolver, zone)
    if silent:
        raise ResolverUnreachable(_describe(resolver), option, silent, timeout)


def _bind_domain(
    site: Site, keys: KeyState, domain: str, expected: list[Record], resolver: Resolver, senders: list[tuple[str, Host]], timeout: float, today: dt.date
) -> Callable[[], list[Finding]]:
    return lambda: check_domain(site, keys, domain, expected, resolver, senders, timeout, today)


def _bind_host(
    host: Host, expected: list[Record], ptrs: list[Record], resolver: Resolver, bl_resolver: Resolver, health: dict[str, ListHealth], sends: bool
) -> Callable[[], list[Finding]]:
    return lambda: check_host_records(host, expected, ptrs, resolver, bl_resolver, health, sends)


def _group(records: list[Record]) -> dict[tuple[str, str], list[Record]]:
    grouped: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        grouped.setdefault((record.name, record.type), []).append(record)
    return grouped


def check_domain(
    site: Site, keys: KeyState, domain: str, expected: list[Record], resolver: Resolver, senders: list[tuple[str, Host]], timeout: float, today: dt.date
) -> list[Finding]:
    findings: list[Finding] = []
    roles = selector_roles(keys, domain, today)
    for (name, rtype), group in sorted(_group(expected).items()):
        if rtype == "MX":
            findings += judge_mx(domain, group, resolver.resolve(name, "MX"))
        elif rtype == "TXT" and name == domain:
            answer = resolver.resolve(name, "TXT")
            walk = walk_spf(domain, resolver, first=answer)
            results: list[HostResult] = [check_host(address, domain, host.fqdn, resolver, time_budget=10 * timeout) for address, host in senders]
            findings += judge_spf(domain, group[0], answer, walk, results)
        elif rtype == "TXT" and "._domainkey." in name:
            findings += judge_dkim(domain, group[0], resolver.resolve(name, "TXT"), roles.get(name, ""))
        elif rtype == "TXT" and name == f"_dmarc.{domain}":
            answer = resolver.resolve(name, "TXT")
            findings += judge_dmarc(domain, group[0], answer, _report_targets(domain, answer, resolver))
        elif rtype == "TXT" and name.startswith("_mta-sts."):
            # RFC 8461 §3.1: several STSv1 records mean no policy at all.
            findings += judge_records(domain, Category.MTA_STS, "mta-sts", group, resolver.resolve(name, "TXT"), single=True)
        elif rtype == "TXT" and name.startswith("_smtp._tls."):
            # RFC 8460 §3: not exactly one TLSRPTv1 record means no TLS reporting.
            findings += judge_records(domain, Category.TLS_RPT, "tls-rpt", group, resolver.resolve(name, "TXT"), single=True)
        elif rtype == "SRV":
            findings += judge_records(domain, Category.SRV, "srv", group, resolver.resolve(name, "SRV"))
        elif rtype == "CNAME" and name.startswith("mta-sts."):
            # tls.source acme: the policy host's name leads to the web host (RFC 8461 §3.3).
            findings += judge_records(domain, Category.MTA_STS, "mta-sts-host", group, resolver.resolve(name, "CNAME"))
        elif rtype == "CNAME":
            findings += judge_records(domain, Category.AUTOCONFIG, "autoconfig", group, resolver.resolve(name, "CNAME"))
        else:
            findings += judge_records(domain, Category.CHECK, "record", group, resolver.resolve(name, rtype))
    # A selector withdrawn beyond its period must be gone from DNS.
    for gen in keys.domains.get(domain, []):
        if gen.status is KeyStatus.WITHDRAWN and (today - dt.date.fromisoformat(gen.since)).days >= WITHDRAWN_DAYS:
            for algorithm in sorted(gen.algorithms):
                selector = gen.selector(algorithm)
                name = f"{selector}._domainkey.{domain}"
                findings += judge_stale_dkim(domain, selector, resolver.resolve(name, "TXT"), roles.get(name, ""))
    return findings


def selector_roles(keys: KeyState, domain: str, today: dt.date) -> dict[str, str]:
    """Each DKIM selector name of `domain` the key state knows, with what the state says it is:
    the words a check row leads its expected value with (docs/check.md, "DKIM selectors")."""
    roles = {}
    for gen in keys.domains.get(domain, []):
        since = dt.date.fromisoformat(gen.since)
        if gen.status is KeyStatus.ACTIVE:
            role = f"active: signing since {gen.since}"
        elif gen.status is KeyStatus.STANDBY:
            role = f"standby since {gen.since}: the next rotation signs with it"
        elif gen.status is KeyStatus.RETIRED:
            role = f"retired {gen.since}: kept for verification until {since + dt.timedelta(days=RETIRED_DAYS)}"
        elif (today - since).days < WITHDRAWN_DAYS:
            role = f"withdrawn {gen.since}: published revoked until {since + dt.timedelta(days=WITHDRAWN_DAYS)}"
        else:
            role = f"withdrawn {gen.since}: removed since {since + dt.timedelta(days=WITHDRAWN_DAYS)}"
        for algorithm in sorted(gen.algorithms):
            roles[f"{gen.selector(algorithm)}._domainkey.{domain}"] = role
    return roles


def _report_targets(domain: str, answer: Answer, resolver: Resolver) -> dict[str, ReportTarget]:
    records = seen_dmarc(answer)
    if len(records) != 1:
        return {}
    parsed = parse_dmarc(records[0])
    if isinstance(parsed, Invalid):
        return {}
    targets = {}
    for target in rua_domains(parsed):
        authorization = resolver.resolve(f"{domain}._report._dmarc.{target}", "TXT") if needs_authorization(domain, target) else None
        targets[target] = ReportTarget(target, resolver.resolve(target, "MX"), resolver.resolve(target, "A"), resolver.resolve(target, "AAAA"), authorization)
    return targets


# What each record type at a host's name is about: its addresses, its HELO name's SPF (RFC 7208
# §2.3), and with tls.source acme the CA allowed to issue its certificate (CAA, RFC 8659).
_HOST_RECORD_KIND = {
    "A": (Category.ADDRESS, "address"),
    "AAAA": (Category.ADDRESS, "address"),
    "TXT": (Category.SPF, "spf-helo"),
    "CAA": (Category.TLS, "caa"),
}


def check_host_records(
    host: Host, expected: list[Record], ptrs: list[Record], resolver: Resolver, bl_resolver: Resolver, health: dict[str, ListHealth], sends: bool
) -> list[Finding]:
    fqdn = host.fqdn
    findings: list[Finding] = []
    for (name, rtype), group in sorted(_group(expected).items()):
        category, prefix = _HOST_RECORD_KIND.get(rtype, (Category.CHECK, "record"))
        findings += judge_records(fqdn, category, prefix, group, resolver.resolve(name, rtype))
    for record in ptrs:
        address = dns.reversename.to_address(dns.name.from_text(record.name))
        answer = resolver.resolve(record.name, "PTR")
        family = "A" if ipaddress.ip_address(address).version == 4 else "AAAA"
        forward = {t.lower().rstrip("."): resolver.resolve(t, family) for t in answer.records}
        findings += judge_ptr(fqdn, address, record, answer, forward)
    if sends:
        for address in host.addresses:
            for zone, list_health in sorted(health.items()):
                listing = bl_resolver.resolve(dnsbl_name(address, zone), "A") if list_health.problem is None else None
                findings += judge_dnsbl(fqdn, address, list_health, listing)
    return findings
