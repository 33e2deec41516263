"""`provision check`: verify what the world sees (DNS, PTR, DNSBL) against what the site declares.

query.py asks DNS (injectable resolver), parse.py applies grammars, spf.py walks SPF and runs
pyspf's check_host, judge.py turns expected vs seen into findings, run.py orchestrates,
render.py shows the report. See docs/check.md.
"""

from provisioner.check.findings import Category, Finding, Report, Severity
from provisioner.check.query import Answer, CachingResolver, DnsResolver, Nameserver, Outcome, Resolver, StaticResolver
from provisioner.check.render import report_json, report_table
from provisioner.check.run import run_check

__all__ = [
    "Answer",
    "CachingResolver",
    "Category",
    "DnsResolver",
    "Finding",
    "Nameserver",
    "Outcome",
    "Report",
    "Resolver",
    "Severity",
    "StaticResolver",
    "report_json",
    "report_table",
    "run_check",
]
