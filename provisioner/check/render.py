"""Views of a Report: a table for people, JSON for pipelines (shape in docs/check.md)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from provisioner.check.findings import Finding, Report, Severity

MARK = {Severity.PASS: "✓", Severity.WARNING: "!", Severity.ERROR: "✗"}
STYLE = {Severity.PASS: "green", Severity.WARNING: "yellow", Severity.ERROR: "bold red"}
JSON_VERSION = 1


def _worst(findings: list[Finding]) -> Severity:
    severities = {f.severity for f in findings}
    for severity in (Severity.ERROR, Severity.WARNING):
        if severity in severities:
            return severity
    return Severity.PASS


def report_table(report: Report, problems_only: bool = False) -> Table:
    """One table, grouped by domain (or host) and category: mark, check id, expected, seen, fix."""
    c = report.counts
    table = Table(
        title=f"provision check: {c[Severity.PASS]} ✓  {c[Severity.WARNING]} !  {c[Severity.ERROR]} ✗",
        caption=f"DNS: {report.resolver}; DNSBL: {report.dnsbl_resolver}",
        show_lines=False,
    )
    for column in ("domain", "category", "", "check", "name", "expected", "seen", "fix"):
        table.add_column(column, overflow="fold")
    for domain, findings in report.by_domain().items():
        shown = [f for f in findings if not (problems_only and f.passed)]
        if not shown:
            continue
        first = True
        for finding in shown:
            table.add_row(
                domain if first else "",
                finding.category.value,
                MARK[finding.severity],
                finding.id,
                finding.subject,
                finding.expected,
                finding.seen,
                finding.advice,
                style=STYLE[finding.severity] if not finding.passed else None,
            )
            first = False
        table.add_section()
    return table


def finding_json(finding: Finding) -> dict[str, str]:
    return {
        "id": finding.id,
        "category": finding.category.value,
        "severity": finding.severity.value,
        "subject": finding.subject,
        "expected": finding.expected,
        "seen": finding.seen,
        "advice": finding.advice,
    }


def report_json(report: Report) -> dict[str, Any]:
    hosts = set(report.hosts)
    grouped = report.by_domain()
    return {
        "version": JSON_VERSION,
        "exit_status": report.exit_status(),
        "exit_status_strict": report.exit_status(strict=True),
        "summary": {s.value: report.counts[s] for s in Severity},
        "resolver": report.resolver,
        "dnsbl_resolver": report.dnsbl_resolver,
        "domains": [
            {
                "domain": name,
                "kind": "host" if name in hosts else "domain",
                "status": _worst(grouped.get(name, [])).value,
                "findings": [finding_json(f) for f in grouped.get(name, [])],
            }
            for name in sorted(set(report.domains) | hosts | set(grouped))
        ],
    }
