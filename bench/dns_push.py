"""`provision dns push` of N generated domains to a local Knot DNS, beside octoDNS alone.

usage: python bench/dns_push.py [DOMAINS] [REPEAT]       (defaults: 1,000 domains, 3 runs)

What it measures (site from bench/gen_site.py: generate(N, 1, 0), its keys made beforehand):
- cold: a fresh Knot whose zones hold only SOA and NS; the push writes every record
  (push_command: load the site, build the records, write octoDNS's files, zone transfers, one
  RFC 2136 update per zone, ownership markers);
- warm: right after, the no-change plan (push_command with dry_run): every zone transferred and
  compared, nothing written;
- octoDNS alone: the same zone files (formats.octodns_zone) and the same Rfc2136Provider with the
  same workers, no ownership processor, no site: Manager.sync(dry_run=False) on a fresh Knot, then
  Manager.sync() (a dry run) again, in the same process and run.

Prints the medians and our ratio to octoDNS alone (target: at most 1.5x; warm at most 15 s for
1,000 domains) and writes bench/results/dns_push.json. Only loopback traffic.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from gen_site import generate  # noqa: E402
from render_bench import cheap_keys  # noqa: E402

import provisioner.keys.store as store  # noqa: E402
from provisioner.dns.push import push_command, pushed_zones, write_config  # noqa: E402
from provisioner.dns.records import site_records  # noqa: E402
from provisioner.site.validate import load_site  # noqa: E402
from tests.dns.knot import KEY_NAME, Knot, knot_server  # noqa: E402

ADDRESS = "127.0.0.165"


def dns_block(knot: Knot) -> str:
    return (
        "dns:\n  targets:\n    knot:\n      class: octodns_bind.Rfc2136Provider\n"
        f"      host: {knot.address}\n      port: {knot.port}\n      key_name: {KEY_NAME}\n"
        "      key_secret: {env: TSIG_SECRET}\n      key_algorithm: hmac-sha256\n      timeout: 30\n"
    )


def octodns_alone_config(work: Path, rs: Any, zones: dict[str, str], knot: Knot) -> Path:
    """The config octoDNS alone runs: our zone files, the target, no ownership processor."""
    options = {"class": "octodns_bind.Rfc2136Provider", "host": knot.address, "port": knot.port, "key_name": KEY_NAME}
    options |= {"key_secret": "env/TSIG_SECRET", "key_algorithm": "hmac-sha256", "timeout": 30}
    path = write_config(work, rs, zones, {"knot": options})
    config = yaml.safe_load(path.read_text())
    config["manager"].pop("plan_outputs")
    config.pop("secret_handlers")
    config.pop("processors")
    for zone in config["zones"].values():
        zone.pop("processors")
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    domains = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    import logging

    logging.disable(logging.CRITICAL)  # octoDNS alone logs its plans; we measure, not print them
    from octodns.manager import Manager

    times: dict[str, list[float]] = {"ours_cold": [], "ours_warm": [], "octodns_cold": [], "octodns_warm": []}
    with tempfile.TemporaryDirectory(prefix="dns-push-bench-") as tmp:
        work = Path(tmp)
        site_path = work / "site" / "site.yaml"
        site_path.parent.mkdir()
        text = generate(domains, 1, 0)
        site_path.write_text(text)
        loaded = load_site(site_path)
        with cheap_keys():
            keys, _ = store.ensure_keys(loaded.site, site_path.parent / "state", workers=1)
        rs = site_records(loaded.site, keys)
        all_zones = rs.zones()
        for run in range(repeat):
            for who in ("ours", "octodns"):
                knot = knot_server(work / f"knot-{who}-{run}", dict.fromkeys(all_zones, ""), address=ADDRESS)
                os.environ["TSIG_SECRET"] = knot.secret
                try:
                    if who == "ours":
                        site_path.write_text(text + dns_block(knot))
                        start = time.perf_counter()
                        pushed = push_command(site_path, None, None, os.environ, dry_run=False)
                        times["ours_cold"].append(time.perf_counter() - start)
                        start = time.perf_counter()
                        planned = push_command(site_path, None, None, os.environ, dry_run=True)
                        times["ours_warm"].append(time.perf_counter() - start)
                        assert len(pushed.zones) == domains and not planned.changed, (len(pushed.zones), planned.zones[:1])
                    else:
                        loaded = load_site(site_path)
                        zones = pushed_zones(loaded.site, rs)
                        (work / f"alone-{run}").mkdir()
                        config = octodns_alone_config(work / f"alone-{run}", rs, zones, knot)
                        start = time.perf_counter()
                        Manager(str(config)).sync(dry_run=False)
                        times["octodns_cold"].append(time.perf_counter() - start)
                        start = time.perf_counter()
                        Manager(str(config)).sync()
                        times["octodns_warm"].append(time.perf_counter() - start)
                finally:
                    knot.stop()
    medians = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "domains": domains,
        "repeat": repeat,
        "seconds": times,
        "median": medians,
        "ratio_cold": medians["ours_cold"] / medians["octodns_cold"],
        "ratio_warm": medians["ours_warm"] / medians["octodns_warm"],
    }
    print(f"{domains} domains, {repeat} runs (median seconds):")
    print(f"  cold push:  ours {medians['ours_cold']:.2f}  octoDNS alone {medians['octodns_cold']:.2f}  ratio {result['ratio_cold']:.2f}x (target <= 1.5x)")
    print(f"  warm plan:  ours {medians['ours_warm']:.2f}  octoDNS alone {medians['octodns_warm']:.2f}  ratio {result['ratio_warm']:.2f}x (target <= 1.5x, <= 15 s)")
    (ROOT / "bench" / "results" / "dns_push.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
