"""check/report.py and findings.py: the exit status and the JSON report's shape."""

from __future__ import annotations

from provisioner.check import Report, Severity, report_json
from provisioner.check.findings import Category, Finding


def test_exit_status_and_json_shape() -> None:
    warn = Finding("dmarc.policy-none", "a.example", Category.DMARC, Severity.WARNING, "_dmarc.a.example", "p=quarantine", "p=none", "fix")
    ok = Finding("mx.match", "a.example", Category.MX, Severity.PASS, "a.example", "10 mx.", "10 mx.", "")
    report = Report((ok, warn), ("a.example",), (), "127.0.0.1", "127.0.0.1")
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1
    doc = report_json(report)
    assert doc["summary"] == {"pass": 1, "warning": 1, "error": 0}
    assert doc["domains"][0]["status"] == "warning"
    assert doc["domains"][0]["findings"][1] == {
        "id": "dmarc.policy-none",
        "category": "DMARC",
        "severity": "warning",
        "subject": "_dmarc.a.example",
        "expected": "p=quarantine",
        "seen": "p=none",
        "advice": "fix",
    }
