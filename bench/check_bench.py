"""Benchmark `provision check` on a large site served by a real nsd on loopback.

What it measures (site from bench/gen_site.py: generate(N, 1, 0), default N = 1,000 domains):

* check s       - run_check() over every domain and host (MX, SPF walk + pyspf check_host per
                  sending address, DKIM x2, DMARC + rua, MTA-STS, SRV, autoconfig, A/AAAA, PTR,
                  DNSBL against a stand-in list zone), DnsResolver at 127.0.0.155:53, median wall;
* queries       - DNS questions that reached nsd (after the per-run cache);
* checkdmarc s  - baseline: checkdmarc 6.x check_spf + check_dmarc for the same domains, one after
                  another as checkdmarc.check_domains does, nameservers=[127.0.0.155];
* ratio         - check s / checkdmarc s (we check far more per domain; see the queries column).

Second table, `provision check` as a user runs it (a subprocess, default --timeout 2, median of
--cli-repeat runs, the same site file and state):

* served        - baseline: --nameserver 127.0.0.155 (the nsd above), a full check;
* black hole    - --nameserver at a UDP socket on 127.0.0.157 that reads and drops every packet;
* closed port   - --nameserver at a port on 127.0.0.157 where nothing listens (ICMP unreachable).
  Both dead rows must stop with one "gave no reply" line and exit 1. Target: <= 10 s.

DKIM keys are made outside the timing with one pre-made key per algorithm (as render_bench
warm_keys does). Zones are checked by nsd-checkzone and served by nsd (tests/dns/conftest.serve).
Results: a Markdown table on stdout and bench/results/check.json (no timestamps). Target: check
of 1,000 domains in <= 15 s.

usage: .venv/bin/python bench/check_bench.py [--domains 1000] [--repeat 3] [--concurrency 32] [--cli-repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from gen_site import generate  # noqa: E402
from render_bench import cheap_keys  # noqa: E402

import provisioner.keys.store as store  # noqa: E402
from provisioner.check import Severity, run_check  # noqa: E402
from provisioner.dns.formats import zone_text  # noqa: E402
from provisioner.dns.records import site_records  # noqa: E402
from provisioner.mailauth.resolver import Answer, DnsResolver, Nameserver  # noqa: E402
from provisioner.site.validate import load_site  # noqa: E402
from tests.check.blackhole import black_hole, closed_port  # noqa: E402
from tests.dns.conftest import serve, stop  # noqa: E402

ADDRESS = "127.0.0.155"
DEAD_ADDRESS = "127.0.0.157"
BL_ZONE = "bl.test"
DEAD_TARGET_S = 10.0


class Counting:
    def __init__(self, inner: DnsResolver) -> None:
        self.inner = inner
        self.count = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.inner.describe()

    def resolve(self, name: str, rdtype: str) -> Answer:
        with self._lock:
            self.count += 1
        return self.inner.resolve(name, rdtype)


def warm_keys(site: Any, state: Path) -> Any:
    with cheap_keys():
        keys, _ = store.ensure_keys(site, state, workers=1)
    return keys


def blocklist_zone() -> str:
    return (
        f"$ORIGIN {BL_ZONE}.\n$TTL 3600\n@ 3600 IN SOA ns1.{BL_ZONE}. hostmaster.{BL_ZONE}. 1 7200 3600 1209600 3600\n"
        f"@ 3600 IN NS ns1.{BL_ZONE}.\n2.0.0.127 3600 IN A 127.0.0.2\n"
    )


def checkdmarc_baseline(domains: list[str], timeout: float) -> tuple[float, int]:
    import checkdmarc.dmarc
    import checkdmarc.spf

    valid = 0
    start = time.perf_counter()
    for domain in domains:
        spf = checkdmarc.spf.check_spf(domain, nameservers=[ADDRESS], timeout=timeout)
        dmarc = checkdmarc.dmarc.check_dmarc(domain, nameservers=[ADDRESS], timeout=timeout)
        valid += bool(spf.get("valid")) and bool(dmarc.get("valid"))
    return time.perf_counter() - start, valid


def cli_check(site_path: Path, nameserver: str, repeat: int) -> dict[str, Any]:
    """`provision check` in a subprocess, as a user runs it: median wall seconds, exit status,
    and the stderr lines of the last run."""
    times, status, stderr = [], 0, ""
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "provisioner.cli",
                "check",
                str(site_path),
                "--nameserver",
                nameserver,
                "--dnsbl-nameserver",
                nameserver,
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=ROOT,
        )
        times.append(time.perf_counter() - start)
        status, stderr = proc.returncode, proc.stderr
    if status not in (0, 1):
        print(stderr, file=sys.stderr)
    return {"s": round(statistics.median(times), 3), "exit": status, "stderr_lines": len([line for line in stderr.splitlines() if line.strip()])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--cli-repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="check-bench-") as tmp:
        work = Path(tmp)
        site_path = work / "site.yaml"
        site_path.write_text(generate(args.domains, 1, 0) + f"policy:\n  dnsbl: [{{zone: {BL_ZONE}}}]\n", encoding="utf-8")
        site = load_site(site_path).site
        keys = warm_keys(site, work / "state")
        records = site_records(site, keys)
        zones = {z: zone_text(records, z, standalone=True) for z in records.zones()}
        zones[BL_ZONE] = blocklist_zone()
        print(f"serving {len(zones)} zones with nsd on {ADDRESS}:53 ...", file=sys.stderr)
        proc = serve(zones, work / "nsd", ADDRESS, 53)
        try:
            times, queries, counts = [], 0, {}
            for _ in range(args.repeat):
                counting = Counting(DnsResolver([Nameserver(ADDRESS)], timeout=args.timeout))
                start = time.perf_counter()
                report = run_check(site, keys, counting, concurrency=args.concurrency, timeout=args.timeout)
                times.append(time.perf_counter() - start)
                queries, counts = counting.count, {s.value: report.counts[s] for s in Severity}
            baseline: list[float] = []
            valid = 0
            for _ in range(args.repeat):
                import checkdmarc.utils as cu

                for cache_name in ("DNS_CACHE", "_DNS_CACHE"):  # a fair baseline: no answers kept between repeats
                    cache = getattr(cu, cache_name, None)
                    if hasattr(cache, "clear"):
                        cache.clear()
                seconds, valid = checkdmarc_baseline(sorted(site.domains), args.timeout)
                baseline.append(seconds)
            cli = {"served": cli_check(site_path, ADDRESS, args.cli_repeat)}
        finally:
            stop(proc)
        with black_hole(DEAD_ADDRESS) as port:
            cli["black hole"] = cli_check(site_path, f"{DEAD_ADDRESS}:{port}", args.cli_repeat)
        cli["closed port"] = cli_check(site_path, f"{DEAD_ADDRESS}:{closed_port(DEAD_ADDRESS)}", args.cli_repeat)

    check_s, base_s = statistics.median(times), statistics.median(baseline)
    row = {
        "domains": args.domains,
        "hosts": len(site.hosts),
        "concurrency": args.concurrency,
        "queries": queries,
        "findings": counts,
        "check_s": round(check_s, 3),
        "checkdmarc_s": round(base_s, 3),
        "checkdmarc_valid_domains": valid,
        "ratio": round(check_s / base_s, 2),
        "target_s": 15.0,
        "within_target": check_s <= 15.0,
    }
    print("| domains | queries | check s | checkdmarc SPF+DMARC s | ratio | pass / warning / error | ≤ 15 s |")
    print("|---:|---:|---:|---:|---:|---|---|")
    print(
        f"| {row['domains']} | {queries} | {row['check_s']} | {row['checkdmarc_s']} | {row['ratio']} | "
        f"{counts['pass']} / {counts['warning']} / {counts['error']} | {'yes' if row['within_target'] else 'NO'} |"
    )
    print()
    print(f"`provision check` (CLI, --timeout 2, median of {args.cli_repeat}):")
    print()
    print("| nameserver | s | exit | stderr lines | dead: one line, exit 1, ≤ 10 s |")
    print("|---|---:|---:|---:|---|")
    for label, run in cli.items():
        run["within_target"] = label == "served" or (run["exit"] == 1 and run["stderr_lines"] == 1 and run["s"] <= DEAD_TARGET_S)
        verdict = "(baseline)" if label == "served" else ("yes" if run["within_target"] else "NO")
        print(f"| {label} | {run['s']} | {run['exit']} | {run['stderr_lines']} | {verdict} |")
    row["cli"] = cli
    row["cli_repeat"] = args.cli_repeat
    row["dead_target_s"] = DEAD_TARGET_S
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    data = {"repeat": args.repeat, "rows": [row], "notes": ["median wall seconds; nsd on loopback; checkdmarc runs sequentially, as its check_domains does"]}
    (results / "check.json").write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
