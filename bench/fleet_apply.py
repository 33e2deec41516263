"""A fleet at once: `provision apply` of one site to 1, 4 and 8 booted hosts in one run.

usage: .venv/bin/python bench/fleet_apply.py [--sizes 1,4,8] [--repeat 3] [--release debian-13]

The site (written here) has 8 hosts: h0 receives, stores and takes submission (mx, submission,
imap, pop3), h1..h7 are backup MXs (Postfix and OpenDKIM), every host `os:` the --release,
one domain with a few mailboxes. It is rendered once. For each size N, a fresh fleet of N
booted hosts (tests/hosts/nspawn.py: systemd as PID 1, Ansible over SSH, forks = N) h0..h(N-1):

* cold s       - `provisioner.apply.apply` of the build to the N hosts (inventory of those N),
                 one run: installs the role's packages from apt's cache, ships, starts;
* re-apply s   - the same again, --repeat runs, median; each must change nothing on any host;
* ratio        - to the same figure for 1 host. Target of issue 13: re-apply of 8 <= 2x of 1;
* controller CPU s - user + system seconds of ansible-playbook, its forks, ssh and the netns
                 ProxyCommands per re-apply (RUSAGE_CHILDREN; SSH masters that ControlPersist
                 keeps in the background are not counted). The hosts run on the same CPUs.
* hosts CPU s  - the same for the hosts: the sum over the N hosts of their cgroup's cpu.stat
                 usage_usec (systemd, sshd, each module's Python) per re-apply. Controller +
                 hosts CPU against N x wall x CPUs shows whether a run waits for the machine.

The controller's share that could grow with the site rather than with Ansible: what each
host's play reads of the build. It reads only its own .hosts/<host>.json (once, in the first task); it
used to read the whole manifest.json twice and the digest-key file. `manifest_cost` renders
sites of 1, 8 and 50 hosts and times both (json.loads per host, summed over all hosts).

Results: a Markdown table on stdout, bench/results/fleet_apply.json. Needs root and the booted
golden of the release (built on first use). Everything it starts is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVISION = ROOT / ".venv" / "bin" / "provision"
sys.path.insert(0, str(ROOT))

from provisioner.apply import apply  # noqa: E402
from provisioner.render.writer import host_file  # noqa: E402
from tests.hosts.nspawn import Fleet  # noqa: E402

PASSWORD = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$4UpCNAmRJ40A4SZ+1IFVnw$0VMvaY6Hlpx3bUYZQxqT3lc27nod6JEAjo263ZDUq/A"


def fleet_site(hosts: int, release: str) -> str:
    """h0 full mail host, h1.. backup MXs; addresses as the fleet gives them (192.0.2.10+i)."""
    lines = ["version: 1", "name: fleet", "", "hosts:"]
    for i in range(hosts):
        services = "[mx, submission, imap, pop3]" if i == 0 else "[backup-mx]"
        lines += [
            f"  h{i}:",
            f"    fqdn: h{i}.fleet.example",
            f"    ipv4: [192.0.2.{10 + i}]",
            f"    services: {services}",
            f"    mx_priority: {10 if i == 0 else 20 + i}",
            f"    os: {release}",
        ]
    lines += ["", "domains:", "  fleet.example:", "    mailboxes:"]
    for user in ("alice", "bob", "carol"):
        lines += [f"      {user}:", f'        password: "{PASSWORD}"']
    lines += ["    aliases:", "      postmaster: alice", "      abuse: alice"]
    return "\n".join(lines) + "\n"


def render(work: Path, hosts: int, release: str) -> Path:
    work.mkdir(parents=True)
    (work / "site.yaml").write_text(fleet_site(hosts, release))
    cmd = [str(PROVISION), "render", str(work / "site.yaml"), "-o", str(work / "build"), "--state", str(work / "state")]
    subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from provisioner.apply import write_bundles; write_bundles(Path(sys.argv[1]))",
            work / "build",
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return work / "build"


def hosts_cpu(cgroups: list[Path]) -> float:
    """CPU seconds the hosts' cgroups used so far (cgroup v2 cpu.stat usage_usec, summed)."""
    total = 0
    for cgroup in cgroups:
        for line in (cgroup / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                total += int(value)
    return total / 1e6


def timed_apply(build: Path, inventory: Path, env: dict[str, str], cgroups: list[Path]) -> tuple[float, Mapping[str, Mapping[str, int]], float, float]:
    """(wall seconds, Ansible's stats, controller CPU seconds: ansible-playbook, its forks and
    ssh clients, user + system, from RUSAGE_CHILDREN; the hosts' CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    hosts_before = hosts_cpu(cgroups)
    start = time.perf_counter()
    result = apply(None, build, inventory, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    on_hosts = hosts_cpu(cgroups) - hosts_before
    if not result.ok:
        raise SystemExit("apply failed:\n" + "\n".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures) + "\n" + "\n".join(result.log[-40:]))
    return wall, result.stats, cpu, on_hosts


def one_size(build: Path, count: int, release: str, repeat: int) -> dict[str, Any]:
    fleet = Fleet.create()
    try:
        fleet.add_all({f"h{i}": release for i in range(count)})
        fleet.boot()
        inventory = fleet.inventory(extra={"mailhost_apt_update_cache": False})  # no mirror: apt's cache
        env = {**fleet.ansible_env(), "ANSIBLE_FORKS": str(count)}
        print(f"{count} hosts: cold apply ...", file=sys.stderr, flush=True)
        cgroups = [h.cgroups[0] for h in fleet.hosts.values()]
        cold_s, cold_stats, _, _ = timed_apply(build, inventory, env, cgroups)
        runs, cpus, host_cpus, loads = [], [], [], []
        for i in range(repeat):
            print(f"{count} hosts: re-apply {i + 1}/{repeat} ...", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
            wall, stats, cpu, on_hosts = timed_apply(build, inventory, env, cgroups)
            cpus.append(cpu)
            host_cpus.append(on_hosts)
            changed = {h: s["changed"] for h, s in stats.items() if s["changed"]}
            assert not changed, f"re-apply changed something: {changed}"
            runs.append(wall)
        states = {h.name: h.system_state() for h in fleet.hosts.values()}
        assert set(states.values()) == {"running"}, states
    finally:
        fleet.close()
    assert fleet.leftovers() == [], fleet.leftovers()
    return {
        "hosts": count,
        "forks": count,
        "cold_s": round(cold_s, 2),
        "cold_changed": sum(s["changed"] for s in cold_stats.values()),
        "reapply_s": [round(x, 2) for x in runs],
        "reapply_median_s": round(statistics.median(runs), 2),
        "reapply_controller_cpu_median_s": round(statistics.median(cpus), 2),
        "reapply_hosts_cpu_median_s": round(statistics.median(host_cpus), 2),
        "load_before_reapplies": [round(x, 1) for x in loads],
    }


def manifest_cost(work: Path, release: str) -> list[dict[str, Any]]:
    """What the role's reads of the build cost the controller, summed over every host's play of a
    re-apply: now (its own .hosts/<host>.json, once, in the first task) and before (manifest.json
    twice, the key file once)."""
    rows = []
    for hosts in (1, 8, 50):
        build = render(work / f"m{hosts}", hosts, release)
        manifest = (build / "manifest.json").read_text()
        keys = (build / ".secret-digest-keys.json").read_text()
        own = {name: (build / host_file(name)).read_text() for name in json.loads(manifest)["hosts"]}
        start = time.perf_counter()
        for _ in range(hosts):
            json.loads(manifest)
            json.loads(manifest)
            json.loads(keys)
        whole = time.perf_counter() - start
        start = time.perf_counter()
        for text in own.values():  # the first task (action_plugins/mailhost_probe.py)
            json.loads(text)
        rows.append(
            {
                "site_hosts": hosts,
                "manifest_bytes": len(manifest.encode()),
                "parse_all_hosts_s": round(whole, 4),
                "host_file_bytes_max": max(len(t.encode()) for t in own.values()),
                "parse_own_files_s": round(time.perf_counter() - start, 4),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,4,8")
    ap.add_argument("--repeat", type=int, default=3, help="re-apply runs per size (median reported)")
    ap.add_argument("--release", default="debian-13", choices=["debian-13", "debian-12"])
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/fleet_apply.json")
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    if os.geteuid() != 0:
        raise SystemExit("needs root (booted hosts: nspawn, overlays, namespaces, cgroups)")
    work = Path(tempfile.mkdtemp(prefix="fleet_bench-", dir="/tmp"))
    load_start = os.getloadavg()[0]
    try:
        build = render(work / "site", max(sizes), args.release)
        rows = [one_size(build, n, args.release, args.repeat) for n in sizes]
        parse = manifest_cost(work, args.release)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0]
    for r in rows:
        r["cold_ratio"] = round(r["cold_s"] / base["cold_s"], 2)
        r["reapply_ratio"] = round(r["reapply_median_s"] / base["reapply_median_s"], 2)
    print(f"| hosts (forks) | cold s | ratio | re-apply s, median of {args.repeat} | runs | ratio | controller CPU s | hosts CPU s |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        runs = ", ".join(f"{x:.1f}" for x in r["reapply_s"])
        print(
            f"| {r['hosts']} ({r['forks']}) | {r['cold_s']:.1f} | {r['cold_ratio']} | {r['reapply_median_s']:.1f} | {runs} | {r['reapply_ratio']} | {r['reapply_controller_cpu_median_s']:.1f} | {r['reapply_hosts_cpu_median_s']:.1f} |"
        )
    for p in parse:
        print(
            f"site of {p['site_hosts']} hosts: manifest {p['manifest_bytes']} bytes, parsed for every host's play {p['parse_all_hosts_s']} s; "
            f"own files (<= {p['host_file_bytes_max']} bytes) {p['parse_own_files_s']} s"
        )
    doc = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "release": args.release,
        "cpus": os.cpu_count(),
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],  # at the start, at the end
        "repeat": args.repeat,
        "results": rows,
        "manifest_parse": parse,
        "target_reapply_8_within_2x_of_1": rows[-1]["reapply_ratio"] <= 2 if rows[-1]["hosts"] == 8 and base["hosts"] == 1 else None,
    }
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
