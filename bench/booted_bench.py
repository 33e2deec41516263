"""Booted test hosts (tests/hosts/nspawn.py): what a host costs.

For 1 host of each release and N Debian 13 hosts at once: preparing them (overlay, SSH host
keys, namespace, cgroups), booting them (nspawn start until `systemctl is-system-running`
says running, all in parallel), memory per host (PSS of its processes, idle after boot) and
teardown (power-off, namespaces, mounts, cgroups). Median of --runs; the goldens must exist
(their build time is in each golden's `complete` file). Needs root. Results:
bench/results/booted.json.

    .venv/bin/python bench/booted_bench.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.hosts.nspawn import Fleet  # noqa: E402


def one_run(release: str, count: int) -> dict[str, float]:
    fleet = Fleet.create()
    try:
        started = time.monotonic()
        fleet.add_all({f"h{i}": release for i in range(count)})
        prepared = time.monotonic()
        fleet.boot()
        booted = time.monotonic()
        time.sleep(2)  # let the first-boot work settle before reading memory
        pss = [h.memory_pss_kib() / 1024 for h in fleet.hosts.values()]
    finally:
        closing = time.monotonic()
        fleet.close()
        closed = time.monotonic()
    assert fleet.leftovers() == [], fleet.leftovers()
    return {
        "prepare_s": prepared - started,
        "boot_s": booted - prepared,
        "teardown_s": closed - closing,
        "pss_mib_per_host": statistics.mean(pss),
        "pss_mib_max": max(pss),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/booted.json")
    args = parser.parse_args()
    cases = [("debian-13", 1), ("debian-12", 1), ("debian-13", 4), ("debian-13", 8)]
    load_start = os.getloadavg()[0]
    results = []
    for release, count in cases:
        runs = [one_run(release, count) for _ in range(args.runs)]
        row: dict[str, object] = {"release": release, "hosts": count}
        for key in runs[0]:
            values = [r[key] for r in runs]
            row[key] = round(statistics.median(values), 2)
            row[f"{key}_runs"] = [round(v, 2) for v in values]
        results.append(row)
        print(json.dumps(row))
    doc = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],  # at the start, at the end
        "runs": args.runs,
        "results": results,
    }
    args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
