"""`provision dns push` against a real Knot DNS (RFC 2136 updates and transfers with TSIG) on
loopback, driven through octoDNS's Manager and octodns-bind's Rfc2136Provider."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.dns.records import site_records
from provisioner.keys.store import ensure_keys
from provisioner.site.validate import load_site
from tests.conftest import EXAMPLES
from tests.dns.knot import KEY_NAME, Knot, knot_server

PROVISION = [sys.executable, "-m", "provisioner.cli"]

# What others keep in the same zones: a web server, a site verification beside our SPF, a
# subdomain with no mail at all, a PTR of another machine.
FOREIGN = {
    "acme.example": 'www 3600 A 192.0.2.80\n@ 3600 TXT "google-site-verification=foreign-token"\nblog 3600 A 192.0.2.82\nblog 3600 TXT "blog text of someone else"\n',
    "2.0.192.in-addr.arpa": "80 3600 PTR www.acme.example.\n",
}


def dns_block(knot: Knot, secret_ref: str = "{env: TSIG_SECRET}", reverse: bool = True) -> str:
    return (
        "\ndns:\n  targets:\n    knot:\n"
        "      class: octodns_bind.Rfc2136Provider\n"
        f"      host: {knot.address}\n      port: {knot.port}\n"
        f"      key_name: {KEY_NAME}\n      key_secret: {secret_ref}\n      key_algorithm: hmac-sha256\n"
        + ("  reverse: knot\n" if reverse else "")
    )


@dataclass
class Pushed:
    site: Path
    knot: Knot
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "NO_COLOR": "1", **self.env, **(env or {})}
        return subprocess.run([*PROVISION, *args], capture_output=True, text=True, env=full, check=False, timeout=300)

    def push(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("dns", "push", str(self.site), *args, env=env)


def foreign_intact(knot: Knot) -> None:
    assert knot.query("www.acme.example", "A") == ["192.0.2.80"]
    assert "google-site-verification=foreign-token" in knot.txt("acme.example")
    assert knot.query("blog.acme.example", "A") == ["192.0.2.82"]
    assert knot.txt("blog.acme.example") == ["blog text of someone else"]
    assert knot.query("blog.acme.example", "MX") == []
    assert knot.query("80.2.0.192.in-addr.arpa", "PTR") == ["www.acme.example."]


@pytest.fixture(name="pushed")
def pushed_fixture(tmp_path: Path) -> Iterator[Pushed]:
    """The multi-host example with a Knot target declared, and the Knot serving its zones
    (empty but for others' records)."""
    shutil.copytree(EXAMPLES / "multi-host", tmp_path / "site", ignore=shutil.ignore_patterns("state", "build"))
    site = tmp_path / "site" / "site.yaml"
    loaded = load_site(site)
    keys, _ = ensure_keys(loaded.site, site.parent / "state", workers=1)
    zones = site_records(loaded.site, keys).zones()
    knot = knot_server(tmp_path / "knot", {zone: FOREIGN.get(zone, "") for zone in zones})
    try:
        site.write_text(site.read_text() + dns_block(knot))
        yield Pushed(site, knot, {"TSIG_SECRET": knot.secret})
    finally:
        knot.stop()
    assert knot.proc is None


def test_push_serves_our_records_keeps_theirs_and_a_second_push_changes_nothing(pushed: Pushed) -> None:
    knot = pushed.knot
    first = pushed.push()
    assert first.returncode == 0, first.stderr
    assert "zone acme.example (target knot):" in first.stdout and "Traceback" not in first.stderr
    loaded = load_site(pushed.site)
    keys, _ = ensure_keys(loaded.site, pushed.site.parent / "state", workers=1)
    records = site_records(loaded.site, keys)
    for record in records.records:  # every record of every zone, PTR included (dns.reverse)
        if record.type == "TXT":
            assert record.value in knot.txt(record.name), record
        else:
            served = knot.query(record.name, record.type)
            assert any(v.rstrip(".").lower() == record.value.rstrip(".").lower() for v in served), (record, served)
    foreign_intact(knot)
    # `provision check` asks the Knot, and only it (no blocklist traffic leaves loopback).
    check = pushed.run("check", str(pushed.site), "--nameserver", knot.nameserver, "--dnsbl-nameserver", knot.nameserver, "--format", "json")
    report = json.loads(check.stdout)
    failing = [(d["domain"], f["id"], f["seen"]) for d in report["domains"] for f in d["findings"] if f["severity"] == "fail"]
    assert failing == [] and check.returncode == 0, failing
    again = pushed.push("--dry-run")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 zone(s) would change" in again.stdout
    second = pushed.push("--format", "json")
    assert second.returncode == 0 and json.loads(second.stdout)["zones"] == []
    foreign_intact(knot)


def test_hand_edits_are_drift_named_by_the_dry_run_and_pushed_back(pushed: Pushed) -> None:
    knot = pushed.knot
    assert pushed.push().returncode == 0
    knot.knsupdate("zone acme.example.\nupdate delete _dmarc.acme.example. TXT\nupdate add _dmarc.acme.example. 3600 TXT \"v=DMARC1; p=none\"")
    knot.knsupdate("zone acme.example.\nupdate delete mx2.acme.example. A")
    plan = pushed.push("--dry-run", "--format", "json")
    assert plan.returncode == 2, plan.stderr
    doc = json.loads(plan.stdout)
    changes = {(c["name"], c["type"], c["action"]): c for z in doc["zones"] for c in z["changes"]}
    assert ("mx2.acme.example", "A", "create") in changes
    dmarc = changes[("_dmarc.acme.example", "TXT", "update")]
    assert any("p=reject" in v for v in dmarc["new"]) and any("p=none" in v for v in dmarc["old"])
    text = pushed.push("--dry-run")
    assert text.returncode == 2 and "+ mx2.acme.example A 192.0.2.20" in text.stdout, text.stdout
    # The edited value is not ours (we never wrote it): the push adds ours back beside it.
    assert pushed.push().returncode == 0
    assert knot.query("mx2.acme.example", "A") == ["192.0.2.20"]
    assert any("p=reject" in v for v in knot.txt("_dmarc.acme.example"))
    assert pushed.push("--dry-run").returncode == 0
    foreign_intact(knot)


def test_a_withdrawn_record_is_deleted_but_others_at_its_name_stay(pushed: Pushed) -> None:
    knot = pushed.knot
    assert pushed.push().returncode == 0
    knot.knsupdate('zone acme.example.\nupdate add acme.example. 3600 TXT "another-verification=kept"')
    site = pushed.site.read_text().replace("    ipv6: [2001:db8::10]\n", "", 1)  # mx1 loses its IPv6 address
    pushed.site.write_text(site)
    done = pushed.push("--format", "json")
    assert done.returncode == 0, done.stderr
    assert knot.query("mx1.acme.example", "AAAA") == [], done.stdout
    spf = [v for v in knot.txt("acme.example") if v.startswith("v=spf1")]
    assert spf and "ip6:" not in spf[0]
    assert "another-verification=kept" in knot.txt("acme.example")
    foreign_intact(knot)


def test_wrong_tsig_key_and_unreachable_server_name_the_target(pushed: Pushed) -> None:
    wrong = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    done = pushed.push(env={"TSIG_SECRET": wrong})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "dns target knot" in done.stderr and wrong not in done.stderr + done.stdout
    pushed.knot.stop()
    gone = pushed.push("--dry-run")
    assert gone.returncode == 1 and "dns target knot" in gone.stderr and "Traceback" not in gone.stderr
    assert pushed.knot.secret not in gone.stderr + gone.stdout


def test_a_missing_secret_names_the_file_line_and_key(pushed: Pushed) -> None:
    done = pushed.push(env={"TSIG_SECRET": ""})
    assert done.returncode == 1
    assert "site.yaml:" in done.stderr and "dns.targets.knot.key_secret: environment variable TSIG_SECRET is not set" in done.stderr


def test_a_provider_that_fails_mid_push_leaves_a_state_a_rerun_converges(pushed: Pushed, tmp_path: Path) -> None:
    """The provider's server goes away after the first zones were written: the push fails with
    the target's name, and the next push (server back) finishes the work."""
    knot = pushed.knot
    stop_after = tmp_path / "stop-after"
    stop_after.write_text("2")
    wrapper = tmp_path / "flaky.py"
    wrapper.write_text(
        "import os, signal\nfrom octodns_bind import Rfc2136Provider\n"
        "class Flaky(Rfc2136Provider):\n"
        "    def _apply(self, plan):\n"
        f"        left = int(open({str(stop_after)!r}).read())\n"
        "        if left == 0:\n"
        f"            os.kill({knot.proc.pid if knot.proc else 0}, signal.SIGTERM)\n"
        "            import time; time.sleep(0.5)\n"
        f"        open({str(stop_after)!r}, 'w').write(str(left - 1))\n"
        "        return super()._apply(plan)\n"
    )
    pushed.site.write_text(pushed.site.read_text().replace("class: octodns_bind.Rfc2136Provider", "class: flaky.Flaky"))
    failed = pushed.push(env={"PYTHONPATH": str(tmp_path)})
    assert failed.returncode == 1 and "dns target knot" in failed.stderr and "Traceback" not in failed.stderr, failed.stdout + failed.stderr
    knot.proc = None if knot.proc is None or knot.proc.wait(timeout=10) is not None else knot.proc
    knot.start()
    stop_after.write_text("1000")
    plan = pushed.push("--dry-run", env={"PYTHONPATH": str(tmp_path)})
    assert plan.returncode == 2, plan.stdout + plan.stderr  # the zones not reached
    assert pushed.push(env={"PYTHONPATH": str(tmp_path)}).returncode == 0
    assert pushed.push("--dry-run", env={"PYTHONPATH": str(tmp_path)}).returncode == 0
    foreign_intact(knot)


def test_an_unsafe_plan_is_refused_without_force(pushed: Pushed) -> None:
    """octoDNS's threshold: more than 30% of a zone's records (of at least 10) updated or deleted."""
    assert pushed.push().returncode == 0
    site = pushed.site.read_text()
    for old, new in (("192.0.2.10]", "192.0.2.50]"), ("192.0.2.20]", "192.0.2.60]"), ("192.0.2.11]", "192.0.2.51]"), ("2001:db8::10]", "2001:db8::50]")):
        site = site.replace(old, new)
    pushed.site.write_text(site.replace("dmarc: {p: reject}", "dmarc: {p: none}").replace("mode: testing", "mode: none"))
    refused = pushed.push()
    assert refused.returncode == 1 and "--force" in refused.stderr and "dns target knot" in refused.stderr, refused.stderr
    assert pushed.knot.query("mx1.acme.example", "A") == ["192.0.2.10"]  # nothing written
    assert pushed.push("--force").returncode == 0
    assert pushed.knot.query("mx1.acme.example", "A") == ["192.0.2.50"]
    foreign_intact(pushed.knot)


def test_an_unknown_provider_class_is_a_clear_error(pushed: Pushed) -> None:
    pushed.site.write_text(pushed.site.read_text().replace("octodns_bind.Rfc2136Provider", "octodns_nosuch.Provider"))
    done = pushed.push()
    assert done.returncode == 1 and "dns target knot: cannot import octodns_nosuch" in done.stderr and "Traceback" not in done.stderr


def test_octodns_validate_accepts_the_config_we_generate(pushed: Pushed, tmp_path: Path) -> None:
    """octoDNS's own validator as an outside judge of the config and zone files push writes."""
    from provisioner.dns.push import pushed_zones, write_config

    loaded = load_site(pushed.site)
    keys, _ = ensure_keys(loaded.site, pushed.site.parent / "state", workers=1)
    records = site_records(loaded.site, keys)
    zones = pushed_zones(loaded.site, records)
    assert set(zones) == set(records.zones())  # every zone here is a site domain or a reverse zone
    options = {k: (v if isinstance(v, str | int) else "env/TSIG_SECRET") for k, v in loaded.site.dns.targets["knot"].items()}
    (tmp_path / "judge").mkdir()
    config = write_config(tmp_path / "judge", records, zones, {"knot": options})
    validate = shutil.which("octodns-validate", path=str(Path(sys.executable).parent))
    assert validate is not None
    done = subprocess.run([validate, "--config-file", str(config)], capture_output=True, text=True, env={**os.environ, **pushed.env}, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert pushed.knot.secret not in config.read_text()
