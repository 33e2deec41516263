"""`provision check` as a user runs it, against a real nsd: exit codes and the JSON report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from provisioner.dns.formats import zone_text
from provisioner.dns.records import site_records
from provisioner.keys.store import ensure_keys
from provisioner.site.validate import load_site
from tests.check.conftest import BL_ZONE, CHECK_ADDRESS, blocklist_zone, serving
from tests.conftest import EXAMPLES, FIXED_DAY
from tests.test_cli import provision


def test_check_command_passes_then_fails_on_a_missing_dmarc(tmp_path: Path) -> None:
    site_dir = tmp_path / "site"
    shutil.copytree(EXAMPLES / "all-in-one", site_dir, ignore=shutil.ignore_patterns("state", "build"))
    site_file = site_dir / "site.yaml"
    site_file.write_text(site_file.read_text().replace("policy:\n", f"policy:\n  dnsbl: [{{zone: {BL_ZONE}}}]\n", 1))
    site = load_site(site_file).site
    keys, _ = ensure_keys(site, site_dir / "state", today=FIXED_DAY, workers=1)
    records = site_records(site, keys, today=FIXED_DAY)
    zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
    zones[BL_ZONE] = blocklist_zone()
    args = ["check", str(site_file), "--nameserver", CHECK_ADDRESS, "--dnsbl-nameserver", CHECK_ADDRESS, "--format", "json"]

    with serving(zones, tmp_path / "nsd-ok"):
        ok = provision(*args)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["exit_status"] == 0 and report["summary"]["error"] == 0
    assert "smallco.example" in {d["domain"] for d in report["domains"]}

    broken = dict(zones)
    broken["smallco.example"] = "\n".join(line for line in zones["smallco.example"].splitlines() if not line.startswith("_dmarc.")) + "\n"
    with serving(broken, tmp_path / "nsd-broken"):
        bad = provision(*args)
    assert bad.returncode == 1
    errors = {f["id"] for d in json.loads(bad.stdout)["domains"] for f in d["findings"] if f["severity"] == "error"}
    assert "dmarc.missing" in errors

    table = provision("check", str(site_file), "--nameserver", "not-an-ip")
    assert table.returncode == 1 and "--nameserver" in table.stderr and "Traceback" not in table.stderr
