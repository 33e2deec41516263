"""`provision check`: verify what the world sees (DNS, PTR, DNSBL) against what the site declares.

query.py asks DNS (injectable resolver), parse.py applies grammars, spf.py walks SPF and runs
pyspf's check_host, judge.py turns expected vs seen into findings, run.py orchestrates,
render.py shows the report. See docs/check.md.

The names below are imported on first use: `provision inspect` needs only the resolver, and
importing the whole check (with the DNS record builder behind judge.py) costs it 0.3 s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.check.findings import Category, Finding, Report, Severity
    from provisioner.check.query import Answer, CachingResolver, DnsResolver, Nameserver, Outcome, Resolver, StaticResolver
    from provisioner.check.render import report_json, report_table
    from provisioner.check.run import run_check

_HOME = {
    "Category": "findings",
    "Finding": "findings",
    "Report": "findings",
    "Severity": "findings",
    "Answer": "query",
    "CachingResolver": "query",
    "DnsResolver": "query",
    "Nameserver": "query",
    "Outcome": "query",
    "Resolver": "query",
    "StaticResolver": "query",
    "report_json": "render",
    "report_table": "render",
    "run_check": "run",
}

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
assert sorted(__all__) == sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'provisioner.check' has no attribute {name!r}")
    return getattr(importlib.import_module(f"provisioner.check.{home}"), name)
