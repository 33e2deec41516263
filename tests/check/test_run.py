"""check/run.py: run_check end to end on a table resolver built from the generated records."""

from __future__ import annotations

from provisioner.check import run_check
from provisioner.dns.records import site_records
from provisioner.keys.store import ensure_keys
from provisioner.mailauth.resolver import StaticResolver
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES, FIXED_DAY


def test_run_check_walks_dnsbl_test_entry_first() -> None:
    """End to end on a fake resolver built from the generated records: everything passes."""
    import tempfile
    from pathlib import Path

    from provisioner.site.model import DnsblSite

    site = load_site(EXAMPLES / "all-in-one" / "site.yaml").site
    site = site.model_copy(update={"policy": site.policy.model_copy(update={"dnsbl": (DnsblSite(zone="bl.example"),)})})
    with tempfile.TemporaryDirectory() as tmp:
        keys, _ = ensure_keys(site, Path(tmp) / "state", today=FIXED_DAY, workers=1)
        records = site_records(site, keys, today=FIXED_DAY)
        table: dict[tuple[str, str], list[str]] = {}
        for r in records.records:
            table.setdefault((r.name, r.type), []).append(r.value)
        table[("2.0.0.127.bl.example", "A")] = ["127.0.0.2"]
        fake = StaticResolver(table)
        seen: list[tuple[int, int]] = []
        report = run_check(site, keys, fake, concurrency=4, today=FIXED_DAY, progress=lambda done, total: seen.append((done, total)))
    assert [f for f in report.findings if not f.passed] == []
    assert fake.asked[:2] == [(".", "NS"), ("2.0.0.127.bl.example.", "A")]  # the resolver replies, then the list's test entry
    assert seen[-1][0] == seen[-1][1] == len(site.domains) + len(site.hosts)
    assert all(name.endswith(".") for name, _ in fake.asked)
