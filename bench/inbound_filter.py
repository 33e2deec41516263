"""The inbound filter's cost (issue 15, Speed): messages/second mx1 accepts on port 25 with
rspamd judging (ON) and without it (OFF), in one run, and rspamd's memory.

usage: flock /tmp/provisioner-heavy.lock .venv/bin/python bench/inbound_filter.py [--messages 200] [--connections 4] [--rounds 5]

One booted Debian 13 host (tests/hosts/nspawn.py) "mx1" (services mx, imap; one domain, bob's
mailbox), converged by `provision apply` from a site with policy.inbound defaults (dmarc enforce,
spam {junk: 6, reject: 15}) and `policy.resolvers` = a test nsd on the fleet's bridge (the "dns"
node) serving the site's zones and none.test (tests/network/senders.py: SPF ip4 of the sender,
DKIM key s1, DMARC p=none), so rspamd's SPF, DKIM and DMARC lookups are answered at once.
The sender ("inet" node, 192.0.2.100, the address none.test's SPF lists) sends genuine
DKIM-signed mail From news@none.test to bob@acme.test: SPF, DKIM and DMARC pass, delivered.

* msgs/s      - --messages messages over --connections parallel SMTP sessions (smtplib, one
                session per connection, many transactions each, opened before the clock
                starts), counted when DATA is answered 250; wall clock from the first MAIL FROM
                to the last 250. Refusals are counted and reported (expected: 0). After each
                round the queue drains (Postfix -> dovecot-lda into the mailbox) before the next,
                so deliveries of one round do not slow the next; a round's own deliveries run
                while it sends, in both modes.
* ON / OFF    - rounds alternate ON, OFF, ON, OFF ... (--rounds of each), median of each.
                Nothing in the site file stops rspamd on an mx host (every mx / backup-mx host
                gets the milter; `spam: off` and `dmarc: monitor` still run it), so OFF is the
                same host with the port-25 smtpd's milter removed by hand:
                `postconf -P smtpd/pass/smtpd_milters=` + `postfix reload` (rspamd keeps
                running, idle); ON puts the rendered value back. Each ON round checks that rspamd
                logged the round's messages, each OFF round that it logged none.
* ratio       - median ON s/msg over median OFF s/msg (= OFF msgs/s / ON msgs/s). Target: <= 2.
* rspamd PSS  - sum of Pss in /proc/PID/smaps_rollup over the rspamd processes of the host's
                cgroup, sampled every 0.5 s: during --settle s idle right after `systemctl
                restart rspamd` (the earlier peaks came ~30 s after a start) and during the ON
                rounds; median and peak. Measured twice: as rendered (controller worker on) and
                with a manual override /etc/rspamd/local.d/worker-controller.inc `enabled =
                false;` (removed again at the end; the renderer is unchanged). The second phase
                repeats the ON rounds. Also sampled from the cold apply (rspamd's first start after
                install) until --settle s after it. Target: <= 300 MB.

Results: a Markdown table on stdout, bench/results/inbound_filter.json. Needs root, nsd and the
trixie booted golden (built on first use). Everything it starts is stopped at the end (the
fleet's close(): hosts powered off, the namespaces' processes killed, by PID).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVISION = ROOT / ".venv" / "bin" / "provision"
sys.path.insert(0, str(ROOT))

MX = "192.0.2.10"
INET = "192.0.2.100"
RCPT = "bob@acme.test"
SENDER = "news@none.test"
MILTER = "inet:127.0.0.1:11332"  # provisioner.render.rspamd.MILTER
CONTROLLER_OFF = "/etc/rspamd/local.d/worker-controller.inc"
SITE = """\
version: 1
name: ibench
hosts:
  mx1:
    fqdn: mx1.acme.test
    os: debian-13
    ipv4: [192.0.2.10]
    services: [mx, imap]
    mx_priority: 10
policy:
  dnsbl: []
  resolvers: [192.0.2.53]
tls:
  source: self-signed
domains:
  acme.test:
    mailboxes:
      bob:
        password: "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$obz3qls3zDP9VUNKJQlctA$wmGABlYT3uik0v7r/SYvabSTLY2C7PXhyoij9LvBnKg"
    aliases:
      postmaster: bob
      abuse: bob
"""


# ----------------------------------------------------------------------------- the sender


def send(args: argparse.Namespace) -> None:
    """Runs in the inet namespace: sign --messages messages, open --connections sessions, send,
    print {"seconds", "accepted", "refused"} as JSON."""
    import smtplib

    from tests.network.senders import SELECTOR, message, signed

    pem = Path(args.key).read_bytes()
    msgs = [signed(message(SENDER, RCPT, f"{args.tag} {i}"), "none.test", SELECTOR, pem) for i in range(args.messages)]
    shares = [msgs[i :: args.connections] for i in range(args.connections)]
    sessions = []
    for _ in shares:
        s = smtplib.SMTP(MX, 25, local_hostname="inet.foreign.test", timeout=60)
        s.ehlo()
        sessions.append(s)
    accepted, refused, lock = [0], [0], threading.Lock()
    go = threading.Barrier(len(shares) + 1)

    def run(session: smtplib.SMTP, share: list[bytes]) -> None:
        go.wait()
        for data in share:
            try:
                session.sendmail(SENDER, [RCPT], data)
                ok = True
            except smtplib.SMTPException:
                ok = False
                session.rset()
            with lock:
                (accepted if ok else refused)[0] += 1

    threads = [threading.Thread(target=run, args=(s, sh)) for s, sh in zip(sessions, shares, strict=True)]
    for t in threads:
        t.start()
    go.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    for s in sessions:
        s.quit()
    print(json.dumps({"seconds": seconds, "accepted": accepted[0], "refused": refused[0]}))


# ----------------------------------------------------------------------------- the host side


class PssSampler:
    """Sums Pss of the rspamd processes in a host's cgroup every `every` seconds, in a thread."""

    def __init__(self, host: Any, every: float = 0.5) -> None:
        self.host, self.every = host, every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rspamd_pss_mib(self) -> tuple[float, int]:
        total, count = 0, 0
        for pid in self.host.pids():
            try:
                if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"rspamd"):
                    continue
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        count += 1
            except (OSError, ValueError):
                continue
        return total / 1024, count

    def processes(self) -> dict[str, float]:
        """PSS MiB of each rspamd process now, by its title (`rspamd: proxy process` ...)."""
        found: dict[str, float] = {}
        for pid in self.host.pids():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                if not title.startswith("rspamd"):
                    continue
                pss = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if x.startswith("Pss:"))
            except (OSError, ValueError, StopIteration):
                continue
            found[f"{title} [{pid}]"] = round(pss / 1024, 1)
        return dict(sorted(found.items()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            pss, count = self._rspamd_pss_mib()
            if count:
                self.samples.append(pss)
            self._stop.wait(self.every)

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def scanned(host: Any) -> int:
    """Messages rspamd has logged a result for (one `(default: ...)` line per scan)."""
    out = host.run("sh", "-c", "grep -c '(default: ' /var/log/rspamd/rspamd.log || true").stdout.strip()
    return int(out or 0)


def drain(host: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not host.run("postqueue", "-j").stdout.strip():
            return
        time.sleep(0.5)
    raise SystemExit("mx1's queue did not drain:\n" + host.run("postqueue", "-p").stdout[-3000:])


def milter(host: Any, on: bool) -> None:
    host.run("postconf", "-P", f"smtpd/pass/smtpd_milters={MILTER if on else ''}")
    host.run("postfix", "reload")
    time.sleep(1.5)  # idle smtpd processes exit and new ones read the new master.cf


def restart_rspamd(host: Any, controller: bool) -> None:
    if controller:
        host.run("rm", "-f", CONTROLLER_OFF)
    else:
        host.run("sh", "-c", f"printf '# bench/inbound_filter.py: manual override\\nenabled = false;\\n' > {CONTROLLER_OFF}")
    host.run("systemctl", "restart", "rspamd", timeout=120)
    for _ in range(120):
        if 11332 in listening(host):
            return
        time.sleep(0.5)
    raise SystemExit("rspamd's proxy did not listen again: " + host.run("journalctl", "-u", "rspamd", "-n", "30", check=False).stdout)


def listening(host: Any) -> list[int]:
    """TCP ports listening in the host (its /proc/net/tcp: state 0A), rspamd's range 11332-11335."""
    ports = set()
    for line in host.run("cat", "/proc/net/tcp", "/proc/net/tcp6").stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(p for p in ports if 11332 <= p <= 11335)


def one_round(net: Any, host: Any, key: Path, on: bool, tag: str, args: argparse.Namespace) -> dict[str, Any]:
    before = scanned(host)
    result = net.nodes["inet"].netns_exec(
        sys.executable,
        Path(__file__),
        "--send",
        "--key",
        key,
        "--tag",
        tag,
        "--messages",
        str(args.messages),
        "--connections",
        str(args.connections),
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"sender failed: {result.stdout}\n{result.stderr}")
    got = json.loads(result.stdout)
    drain(host)
    time.sleep(0.5)
    judged = scanned(host) - before
    if (on and judged < got["accepted"]) or (not on and judged):
        raise SystemExit(f"round {tag}: rspamd logged {judged} scans for {got['accepted']} accepted messages (milter {'on' if on else 'off'})")
    return {
        "on": on,
        "msgs_per_s": round(got["accepted"] / got["seconds"], 2),
        "seconds": round(got["seconds"], 3),
        "accepted": got["accepted"],
        "refused": got["refused"],
        "judged": judged,
    }


def build_network(work: Path, settle: float) -> tuple[Any, Any, Path, list[float]]:
    """The fleet, mx1 converged; rspamd's PSS sampled from the cold apply (its first start after
    install) until `settle` s after it."""
    from provisioner.dns.formats import zone_text
    from provisioner.dns.records import site_records
    from provisioner.keys.store import ensure_keys
    from provisioner.site.validate import load_site
    from tests.dns.conftest import nsd_conf
    from tests.network.net import DNS_ADDRESS, Network
    from tests.network.senders import make_senders

    site_path = work / "site.yaml"
    site_path.write_text(SITE)
    build, state = work / "build", work / "state"
    subprocess.run([str(PROVISION), "render", str(site_path), "-o", str(build), "--state", str(state)], check=True, capture_output=True, cwd=ROOT)
    site = load_site(site_path).site
    keys, _ = ensure_keys(site, state, workers=1)
    records = site_records(site, keys)
    zones = {zone: zone_text(records, zone, standalone=True) for zone in records.zones()}
    senders = make_senders(INET)
    zones["none.test"] = senders.zones["none.test"]
    if "2.0.192.in-addr.arpa" in zones:
        zones["2.0.192.in-addr.arpa"] += "100.2.0.192.in-addr.arpa. 3600 IN PTR inet.foreign.test.\n"
    key = work / "sender.pem"
    key.write_bytes(senders.pem)
    key.chmod(0o600)

    net = Network.create()
    try:
        net.fleet.golden("trixie")
        net.add_node("dns", DNS_ADDRESS)
        net.start("dns", "nsd", "-d", "-c", nsd_conf(zones, work / "nsd", DNS_ADDRESS), log=work / "nsd.out")
        inet = net.add_node("inet", INET)
        (host,) = net.add_hosts({"mx1": ("debian-13", "mx1.acme.test", MX)}).values()
        net.wait_port(inet, DNS_ADDRESS, 53)
        inventory = net.fleet.inventory(work / "hosts.yml", ["mx1"], {"mailhost_apt_update_cache": False})
        print("cold apply ...", file=sys.stderr, flush=True)
        first = PssSampler(host).__enter__()
        common = [str(p) for p in (site_path, "-i", inventory, "--build", build, "--state", state, "--format", "json")]
        applied = subprocess.run(
            [str(PROVISION), "apply", "--yes", *common],
            capture_output=True,
            text=True,
            env=net.fleet.ansible_env(),
            cwd=ROOT,
            timeout=1200,
            stdin=subprocess.DEVNULL,
        )
        if applied.returncode != 0:
            raise SystemExit("apply failed:\n" + applied.stdout[-4000:] + applied.stderr[-4000:])
        net.wait_port(inet, MX, 25)
        time.sleep(settle)
        first.__exit__()
    except BaseException:
        net.close()
        raise
    return net, host, key, first.samples


def phase(net: Any, host: Any, key: Path, controller: bool, args: argparse.Namespace, rounds: list[dict[str, Any]], off_too: bool) -> dict[str, Any]:
    """Restart rspamd (controller on/off), sample its memory idle for --settle s, then the rounds."""
    milter(host, True)
    restart_rspamd(host, controller)
    label = "controller" if controller else "no-controller"
    with PssSampler(host) as idle:
        time.sleep(args.settle)
    processes = idle.processes()
    ports = listening(host)
    with PssSampler(host) as busy:
        for i in range(args.rounds):
            for on in (True, False) if off_too else (True,):
                milter(host, on)
                print(f"{label}: round {i + 1}/{args.rounds} milter {'ON' if on else 'OFF'} ...", file=sys.stderr, flush=True)
                row = one_round(net, host, key, on, f"{label}-{i}-{'on' if on else 'off'}", args)
                row["controller"] = controller
                rounds.append(row)
    milter(host, True)
    samples = idle.samples + busy.samples
    return {
        "controller": controller,
        "rspamd_processes": processes,
        "rspamd_ports": ports,
        "pss_idle_median_mib": round(statistics.median(idle.samples), 1),
        "pss_idle_peak_mib": round(max(idle.samples), 1),
        "pss_busy_median_mib": round(statistics.median(busy.samples), 1),
        "pss_busy_peak_mib": round(max(busy.samples), 1),
        "pss_median_mib": round(statistics.median(samples), 1),
        "pss_peak_mib": round(max(samples), 1),
        "samples": len(samples),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200, help="messages per round")
    ap.add_argument("--connections", type=int, default=4, help="parallel SMTP sessions")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each mode (median reported)")
    ap.add_argument("--settle", type=float, default=45, help="seconds of idle memory sampling after each rspamd restart")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/inbound_filter.json")
    ap.add_argument("--send", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    ap.add_argument("--tag", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.send:
        send(args)
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (booted hosts: nspawn, overlays, namespaces, cgroups)")
    work = Path(tempfile.mkdtemp(prefix="inbound_bench-", dir="/tmp"))
    load_start = os.getloadavg()[0]
    rounds: list[dict[str, Any]] = []
    try:
        net, host, key, first_start = build_network(work, args.settle)
        try:
            # The sender's first connection waits out postscreen's greet test; then it is cached.
            one_round(net, host, key, True, "warmup", argparse.Namespace(messages=args.connections, connections=args.connections))
            memory = [phase(net, host, key, True, args, rounds, off_too=True), phase(net, host, key, False, args, rounds, off_too=False)]
            rspamd_version = host.run("rspamd", "--version", check=False).stdout.strip().splitlines()[0]
        finally:
            net.close()
        assert net.leftovers() == [], net.leftovers()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(on: bool, controller: bool) -> float:
        return statistics.median(r["msgs_per_s"] for r in rounds if r["on"] == on and r["controller"] == controller)

    on, off, on_nc = med(True, True), med(False, True), med(True, False)
    ratio = round(off / on, 2)
    print(f"| mode | msgs/s, median of {args.rounds} | rounds | refused |")
    print("|---|---:|---|---:|")
    for label, is_on, ctl, value in (("ON (rspamd milter)", True, True, on), ("OFF (no milter)", False, True, off), ("ON, controller off", True, False, on_nc)):
        runs = ", ".join(f"{r['msgs_per_s']:.1f}" for r in rounds if r["on"] == is_on and r["controller"] == ctl)
        print(f"| {label} | {value:.1f} | {runs} | {sum(r['refused'] for r in rounds if r['on'] == is_on and r['controller'] == ctl)} |")
    print(f"\ncost of the filter (OFF msgs/s / ON msgs/s): {ratio}x (target <= 2x)\n")
    print("| rspamd | processes | PSS MiB median (idle after restart / sending) | PSS MiB peak | overall median / peak |")
    print("|---|---:|---|---:|---|")
    for m in memory:
        print(
            f"| {'as rendered' if m['controller'] else 'controller disabled'} | {len(m['rspamd_processes'])} | {m['pss_idle_median_mib']} / {m['pss_busy_median_mib']} | "
            f"{max(m['pss_idle_peak_mib'], m['pss_busy_peak_mib'])} | {m['pss_median_mib']} / {m['pss_peak_mib']} |"
        )
    if first_start:
        print(f"\nfirst start (cold apply + {args.settle:.0f} s): PSS median {statistics.median(first_start):.1f} MiB, peak {max(first_start):.1f} MiB")
    doc = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],  # at the start, at the end
        "rspamd": rspamd_version,
        "messages_per_round": args.messages,
        "connections": args.connections,
        "rounds": args.rounds,
        "settle_s": args.settle,
        "on_msgs_per_s_median": on,
        "off_msgs_per_s_median": off,
        "on_no_controller_msgs_per_s_median": on_nc,
        "ratio_off_over_on": ratio,
        "target_ratio_within_2x": ratio <= 2,
        "memory": memory,
        # From the cold apply (rspamd's first start after install) until --settle s after it.
        "first_start_pss_median_mib": round(statistics.median(first_start), 1) if first_start else None,
        "first_start_pss_peak_mib": round(max(first_start), 1) if first_start else None,
        "target_pss_peak_within_300_mb": max(memory[0]["pss_peak_mib"], *first_start) * 1.048576 <= 300,
        "off_method": "postconf -P smtpd/pass/smtpd_milters= + postfix reload (the site format has no setting that stops rspamd on an mx host)",
        "rounds_detail": rounds,
    }
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
