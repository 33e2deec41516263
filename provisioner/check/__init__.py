"""`provision check`: verify what the world sees (DNS, PTR, DNSBL) against what the site declares.

The questions and grammars are provisioner.mailauth's (resolver, grammar, spf), shared with
`provision inspect`; here judge.py turns expected vs seen into findings, run.py orchestrates,
tls.py probes the SMTP/IMAP listeners, report.py shows the report. See docs/check.md.
"""

from provisioner.check.findings import Category, Finding, Report, Severity
from provisioner.check.report import report_json, report_table
from provisioner.check.run import run_check

__all__ = ["Category", "Finding", "Report", "Severity", "report_json", "report_table", "run_check"]
