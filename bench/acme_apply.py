"""The cost of tls.source acme (issue 14, Speed): a host's first apply with acme (pebble) vs
self-signed, and certbot's renewal check when nothing is due, timed on the host.

usage: flock /tmp/provisioner-heavy.lock .venv/bin/python bench/acme_apply.py [--rounds 3] [--renew-runs 5]

The test network of tests/network/test_acme.py: nsd (192.0.2.53) serving every round's zone and
pebble.test, Debian's pebble (192.0.2.30, an RFC 8555 test CA, http-01 to port 80, no sleep
before validating). Each round boots fresh Debian 13 hosts from the golden image, one per mode,
modes alternating (acme, self-signed, acme, ...): host "a<N>" with its own domain a<N>.test and
tls.source acme, host "s<N>" with s<N>.test and self-signed; both services [mx, submission,
imap], so the acme host is the web host (certificate for mx.<domain>, mta-sts.<domain>,
autoconfig.<domain>). A host is powered off after its round.

* first apply   - wall clock of `provision apply --yes` of the one-host site on the fresh host
                  (render, SSH, packages already in the golden image, configuration, services,
                  and for acme: nginx -t, the temporary pair, certbot certonly with its challenge
                  and deploy hook). Median per mode; the difference is what acme costs.
* renewal check - on each acme host after its apply, what Debian's certbot.timer runs
                  (`certbot -q renew --no-random-sleep-on-renew`, nothing due: the certificate is
                  fresh), --renew-runs times, timed on the host (time.monotonic around the
                  command in the host's python3). Median and max. Target: <= 2 s.

Results: a Markdown table on stdout, bench/results/acme_apply.json. Needs root, nsd, pebble and
the trixie booted golden. Everything it starts is stopped at the end (hosts powered off, the
namespaces' processes killed, by PID).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVISION = ROOT / ".venv" / "bin" / "provision"
sys.path.insert(0, str(ROOT))

from provisioner.dns.formats import zone_text  # noqa: E402
from provisioner.dns.records import site_records  # noqa: E402
from provisioner.keys.store import ensure_keys  # noqa: E402
from provisioner.site.validate import load_site  # noqa: E402
from tests.conftest import ALICE_HASH  # noqa: E402
from tests.hosts.nspawn import suite_of  # noqa: E402
from tests.network.net import Network  # noqa: E402
from tests.network.pebble import API_CA_ON_HOST, DIRECTORY, start_ca_and_dns, trust_pebble  # noqa: E402

RELEASE = "debian-13"
TLS = {
    "acme": f'{{source: acme, acme: {{email: hostmaster@acme.test, directory: "{DIRECTORY}"}}}}',
    "self-signed": "{source: self-signed}",
}
SITE = """\
version: 1
name: {name}
hosts:
  {name}:
    fqdn: mx.{domain}
    os: {release}
    ipv4: [{address}]
    services: [mx, submission, imap]
    mx_priority: 10
policy:
  dnsbl: []
  mta_sts: {{mode: testing}}
tls: {tls}
domains:
  {domain}:
    mailboxes:
      alice: {{password: "{password}"}}
    aliases: {{postmaster: alice}}
"""
# What certbot.timer's unit runs (Debian's certbot.service), timed inside the host.
RENEW = (
    "import subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "r = subprocess.run(['certbot', '-q', 'renew', '--no-random-sleep-on-renew'], capture_output=True, text=True)\n"
    "print(time.monotonic() - t, r.returncode)\n"
    "sys.stderr.write(r.stdout + r.stderr)\n"
)


def plan(rounds: int) -> list[tuple[str, str, str, str]]:
    """(name, mode, domain, address) per apply, modes alternating."""
    out = []
    for index in range(rounds):
        for offset, mode in enumerate(("acme", "self-signed")):
            name = f"{mode[0]}{index + 1}"
            out.append((name, mode, f"{name}.test", f"192.0.2.{110 + 2 * index + offset}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--renew-runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="acme-bench-"))
    applies = plan(args.rounds)
    sites: dict[str, Path] = {}
    zones: dict[str, str] = {}
    for name, mode, domain, address in applies:
        path = work / name / "site.yaml"
        path.parent.mkdir()
        path.write_text(SITE.format(name=name, domain=domain, release=RELEASE, address=address, tls=TLS[mode], password=ALICE_HASH))
        sites[name] = path
        site = load_site(path).site
        keys, _ = ensure_keys(site, work / name / "state", workers=1)
        records = site_records(site, keys)
        for zone in records.zones():
            if zone.endswith(".arpa"):
                continue  # every round's PTR would share one reverse zone; apply does not read it
            zones[zone] = zone_text(records, zone, standalone=True)
    net = Network.create()
    results: list[dict[str, Any]] = []
    renew_seconds: list[float] = []
    try:
        net.fleet.golden(suite_of(RELEASE))
        _, pki = start_ca_and_dns(net, zones, work, "192.0.2.200")
        for name, mode, domain, address in applies:
            host = net.add_hosts({name: (RELEASE, f"mx.{domain}", address)})[name]
            trust_pebble(host, pki)
            inventory = net.fleet.inventory(work / name / "hosts.yml", [name], {"mailhost_apt_update_cache": False, "mailhost_acme_ca_bundle": API_CA_ON_HOST})
            command = [
                str(PROVISION),
                "apply",
                str(sites[name]),
                "-i",
                str(inventory),
                "--yes",
                "--build",
                str(work / name / "build"),
                "--state",
                str(work / name / "state"),
            ]
            started = time.monotonic()
            done = subprocess.run(command, capture_output=True, text=True, env=net.fleet.ansible_env(), cwd=ROOT, timeout=1800, stdin=subprocess.DEVNULL)
            seconds = time.monotonic() - started
            if done.returncode != 0:
                raise SystemExit(f"{name}: apply exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
            row: dict[str, Any] = {"host": name, "mode": mode, "first_apply_s": round(seconds, 2)}
            if mode == "acme":
                live = host.run("readlink", "-f", f"/etc/ssl/provisioner/acme/mx.{domain}/fullchain.pem").stdout.strip()
                if not live.startswith(f"/etc/letsencrypt/archive/mx.{domain}/"):
                    raise SystemExit(f"{name}: no certificate obtained ({live})")
                runs = []
                for _ in range(args.renew_runs):
                    timed = host.run("env", f"REQUESTS_CA_BUNDLE={API_CA_ON_HOST}", "python3", "-c", RENEW, timeout=120)
                    seconds_s, status = timed.stdout.split()
                    if status != "0":
                        raise SystemExit(f"{name}: certbot renew exited {status}: {timed.stderr[-2000:]}")
                    runs.append(float(seconds_s))
                renewed = host.run("readlink", "-f", f"/etc/ssl/provisioner/acme/mx.{domain}/fullchain.pem").stdout.strip()
                if renewed != live:
                    raise SystemExit(f"{name}: the renewal check renewed ({live} -> {renewed}); it was not due")
                row["renew_check_s"] = [round(s, 3) for s in runs]
                renew_seconds += runs
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
            net.fleet.stop(host)  # powered off; the next round boots a fresh one
            net.fleet.hosts.pop(name)
            net.hosts.pop(name)
    finally:
        net.close()

    by_mode = {mode: [r["first_apply_s"] for r in results if r["mode"] == mode] for mode in TLS}
    median = {mode: round(statistics.median(values), 2) for mode, values in by_mode.items()}
    summary = {
        "command": "flock /tmp/provisioner-heavy.lock .venv/bin/python bench/acme_apply.py " + " ".join(sys.argv[1:]),
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average": [round(v, 1) for v in os.getloadavg()[:2]],
        "first_apply_median_s": median,
        "acme_extra_s": round(median["acme"] - median["self-signed"], 2),
        "renew_check_median_s": round(statistics.median(renew_seconds), 3),
        "renew_check_max_s": round(max(renew_seconds), 3),
        "renew_check_target_s": 2.0,
        "runs": results,
    }
    out = ROOT / "bench" / "results" / "acme_apply.json"
    out.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print("| measure | self-signed | acme (pebble) |")
    print("|---|---|---|")
    print(f"| first apply, one host, median of {args.rounds} | {median['self-signed']} s | {median['acme']} s (+{summary['acme_extra_s']} s) |")
    print(
        f"| renewal check, nothing due (`certbot -q renew`), median / max of {len(renew_seconds)} | - | {summary['renew_check_median_s']} s / {summary['renew_check_max_s']} s (target <= 2 s) |"
    )


if __name__ == "__main__":
    main()
