"""Views of a Report: a table for a terminal, plain text for pipes and logs, JSON for pipelines
(shapes in docs/check.md).

The table quotes others' DNS data (TXT records, rua targets, host names in answers, certificate
names): every cell is a plain `Text` with its controls made visible (provisioner.textsafe), so a
record can neither drive the terminal nor be read as rich markup. JSON carries the exact text."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from provisioner.check.findings import Finding, Report, Severity
from provisioner.textsafe import visible

MARK = {Severity.PASS: "✓", Severity.WARNING: "!", Severity.ERROR: "✗"}
STYLE = {Severity.PASS: "green", Severity.WARNING: "yellow", Severity.ERROR: "bold red"}
JSON_VERSION = 1


def _worst(findings: list[Finding]) -> Severity:
    severities = {f.severity for f in findings}
    for severity in (Severity.ERROR, Severity.WARNING):
        if severity in severities:
            return severity
    return Severity.PASS


def _cell(value: str) -> Text:
    return Text(visible(value))


def _subject(finding: Finding) -> Text:
    """The name, and after it what the key state says a DKIM selector is (one line: a row is a finding)."""
    cell = _cell(finding.subject)
    if finding.state:
        cell.append(f" ({visible(finding.state)})", style="dim")
    return cell


def report_table(report: Report, problems_only: bool = False) -> Table:
    """One table, grouped by domain (or host) and category: mark, check id, expected, seen, fix."""
    c = report.counts
    table = Table(
        title=f"provision check: {c[Severity.PASS]} ✓  {c[Severity.WARNING]} !  {c[Severity.ERROR]} ✗",
        caption=_cell(f"DNS: {report.resolver}; DNSBL: {report.dnsbl_resolver}"),
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
                _cell(domain if first else ""),
                _cell(finding.category.value),
                _cell(MARK[finding.severity]),
                _cell(finding.id),
                _subject(finding),
                _cell(finding.expected),
                _cell(finding.seen),
                _cell(finding.advice),
                style=STYLE[finding.severity] if not finding.passed else None,
            )
            first = False
        table.add_section()
    return table


PLAIN_FIELDS = ("name", "state", "expected", "seen", "advice")


def report_plain(report: Report, problems_only: bool = False) -> str:
    """The report for a pipe, a log or a mail: no table, no wrapping, nothing sized to a terminal.

    Each finding is a block: a line `STATUS ID (CATEGORY)`, then one indented line per field
    (name, state, expected, seen, advice; an empty one is left out) holding the whole value, so a DKIM
    key stays one string to copy or grep. Every value is shown with its controls escaped
    (textsafe.visible). Deterministic: the report's own order, no widths, no colours.
    """
    c = report.counts
    lines = [
        f"provision check: {c[Severity.PASS]} passed, {c[Severity.WARNING]} warning{'s' * (c[Severity.WARNING] != 1)}, "
        f"{c[Severity.ERROR]} error{'s' * (c[Severity.ERROR] != 1)}",
        visible(f"DNS: {report.resolver}; DNSBL: {report.dnsbl_resolver}"),
    ]
    for domain, findings in report.by_domain().items():
        shown = [f for f in findings if not (problems_only and f.passed)]
        if not shown:
            continue
        lines += ["", visible(f"== {domain}")]
        for finding in shown:
            lines.append(visible(f"{finding.severity.value} {finding.id} ({finding.category.value})"))
            values = (finding.subject, finding.state, finding.expected, finding.seen, finding.advice)
            lines += [f"  {label + ':':<9} {visible(value)}" for label, value in zip(PLAIN_FIELDS, values, strict=True) if value]
    return "\n".join(lines) + "\n"


def finding_json(finding: Finding) -> dict[str, str]:
    """A finding's fields; `state` only on DKIM selector findings (what the key state says it is)."""
    doc = {
        "id": finding.id,
        "category": finding.category.value,
        "severity": finding.severity.value,
        "subject": finding.subject,
        "expected": finding.expected,
        "seen": finding.seen,
        "advice": finding.advice,
    }
    if finding.state:
        doc["state"] = finding.state
    return doc


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
