"""What a check concludes: findings with a stable id, a severity, expected vs seen, and the fix."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    PASS = "pass"
    WARNING = "warning"
    ERROR = "error"


class Category(StrEnum):
    MX = "MX"
    ADDRESS = "A/AAAA"
    SPF = "SPF"
    DKIM = "DKIM"
    DMARC = "DMARC"
    MTA_STS = "MTA-STS"
    TLS_RPT = "TLS-RPT"
    SRV = "SRV"
    AUTOCONFIG = "autoconfig"
    PTR = "PTR"
    DNSBL = "DNSBL"
    TLS = "TLS"
    CHECK = "check"  # the checker itself failed (a bug: reported, never raised)


CATEGORY_ORDER = {c: i for i, c in enumerate(Category)}


@dataclass(frozen=True)
class Finding:
    id: str  # stable, e.g. "dkim.missing"; documented in docs/check.md
    domain: str  # the site domain, or the host FQDN for host checks (PTR, DNSBL)
    category: Category
    severity: Severity
    subject: str  # the DNS name (or address) the finding is about
    expected: str
    seen: str
    advice: str  # the exact record to add or change; "" when nothing to do
    state: str = ""  # DKIM: what the key state says the selector is (active, standby, retired, withdrawn)

    @property
    def passed(self) -> bool:
        return self.severity is Severity.PASS


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    domains: tuple[str, ...]  # site domains checked
    hosts: tuple[str, ...]  # host FQDNs checked
    resolver: str = ""
    dnsbl_resolver: str = ""
    counts: dict[Severity, int] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.counts.update(Counter(f.severity for f in self.findings))
        for severity in Severity:
            self.counts.setdefault(severity, 0)

    def failed(self, strict: bool = False) -> list[Finding]:
        bad = (Severity.ERROR, Severity.WARNING) if strict else (Severity.ERROR,)
        return [f for f in self.findings if f.severity in bad]

    def exit_status(self, strict: bool = False) -> int:
        """0 when every required check passes, 1 when any fails (warnings too with strict)."""
        return 1 if self.failed(strict) else 0

    def by_domain(self) -> dict[str, list[Finding]]:
        grouped: dict[str, list[Finding]] = {}
        for finding in self.findings:
            grouped.setdefault(finding.domain, []).append(finding)
        return grouped


def sort_findings(findings: list[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (f.domain, CATEGORY_ORDER[f.category], f.subject, f.id, f.seen)))
