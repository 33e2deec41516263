"""Benchmark DKIM key generation (`provision keys`) cold and warm.

What it measures (sites made by bench/gen_site.py with 1 mailbox and no aliases per domain):

* cold          - `provision keys SITE --state DIR` on an empty state for --cold-domains domains
                  (default policy: one rsa-2048 key per selector, active + standby = 2 keys per
                  domain), one child process, wall time; keys/s and the time extrapolated to
                  --domains domains (linear in keys: generation is per key, in worker processes);
* generation    - in-process generate_private_key("ed25519") and ("rsa-2048") --samples times
                  each, ms per key and the ratio rsa / ed25519;
* vault         - in-process ansible-vault (ansible-core VaultLib) encrypt and decrypt of one
                  RSA PEM, ms per key (the PBKDF2 key cache is cleared before each decrypt, as
                  a fresh `provision render` process has it empty);
* warm          - `provision keys` for --domains domains with the state already complete (made
                  untimed with one pre-made key per algorithm, as render_bench.warm_keys does):
                  median (and min) wall time and median CPU time of --repeat child processes
                  (after one untimed run for the page cache), and the in-process time of ensure_keys() alone and of
                  load_site() (the other big part of the command). Requirement: wall <= 1 s.

Results are printed as a Markdown table and written to bench/results/keys.json (sorted keys,
no timestamps). Temp dirs (under /tmp) are removed at the end.

usage: .venv/bin/python bench/keys_bench.py [--domains 5000] [--repeat 3] [--cold-domains 500] [--samples 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROVISION = ROOT / ".venv" / "bin" / "provision"
REQUIRED_WARM_S = 1.0
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_site import generate  # noqa: E402
from render_bench import warm_keys  # noqa: E402

import provisioner.keys.store as store  # noqa: E402
from provisioner.site.validate import load_site  # noqa: E402


def write_site(path: Path, domains: int) -> None:
    # gen_site.generate(N, 1, 0) leaves an empty `aliases:` key per domain, which the validator
    # rejects ("expected a mapping"); drop those lines, the site is otherwise as generated.
    path.write_text(generate(domains, 1, 0).replace("\n    aliases:\n", "\n"), encoding="utf-8")


def run(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """Run cmd in a child process; (wall s, user+sys CPU s, stdout). Fails loudly on error."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    text = log.read_text(encoding="utf-8", errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}\n{text}")
    return wall, usage.ru_utime + usage.ru_stime, text


def per_key_ms(fn, samples: int) -> float:
    start = time.perf_counter()
    for _ in range(samples):
        fn()
    return (time.perf_counter() - start) / samples * 1000


def bench_cold(n: int, work: Path) -> dict[str, float | int]:
    d = work / "cold"
    d.mkdir()
    site, state = d / "site.yaml", d / "state"
    write_site(site, n)
    wall, cpu, out = run([str(PROVISION), "keys", str(site), "--state", str(state)], d / "log")
    keys = sum(1 for _ in (state / "dkim").rglob("*.pem"))
    if keys != 2 * n:
        raise SystemExit(f"cold run made {keys} keys, expected {2 * n}:\n{out}")
    return {
        "domains": n,
        "keys": keys,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "keys_per_s": round(keys / wall, 1),
        "ms_per_key": round(wall / keys * 1000, 2),
    }


def bench_generation(samples: int) -> dict[str, float | int]:
    for algorithm in ("ed25519", "rsa-2048"):  # untimed: first call imports cryptography
        store.generate_private_key(algorithm)
    ed = per_key_ms(lambda: store.generate_private_key("ed25519"), samples)
    rsa = per_key_ms(lambda: store.generate_private_key("rsa-2048"), samples)
    return {"samples": samples, "ed25519_ms": round(ed, 3), "rsa2048_ms": round(rsa, 2), "rsa_over_ed25519": round(rsa / ed, 1)}


def bench_vault(samples: int) -> dict[str, float]:
    from ansible.parsing.vault import VaultAES256, VaultLib, VaultSecret

    pem = store.generate_private_key("rsa-2048")
    vault = VaultLib([("default", VaultSecret(b"bench-password"))])
    enc = per_key_ms(lambda: vault.encrypt(pem), samples)
    blobs = [vault.encrypt(pem) for _ in range(samples)]
    start = time.perf_counter()
    for blob in blobs:
        VaultAES256._gen_key_initctr.cache_clear()  # ansible caches PBKDF2 per (password, salt)
        vault.decrypt(blob)
    dec = (time.perf_counter() - start) / samples * 1000
    return {"encrypt_ms": round(enc, 2), "decrypt_ms": round(dec, 2)}


def bench_warm(n: int, repeat: int, work: Path) -> dict[str, float | int]:
    d = work / "warm"
    d.mkdir()
    site, state = d / "site.yaml", d / "state"
    write_site(site, n)
    keys = warm_keys(site, state)
    cmd = [str(PROVISION), "keys", str(site), "--state", str(state)]
    run(cmd, d / "log")  # untimed: page cache
    runs = []
    for _ in range(repeat):
        wall, cpu, out = run(cmd, d / "log")
        if "all keys present" not in out:
            raise SystemExit(f"warm run generated keys:\n{out}")
        runs.append((wall, cpu))
    before = (state / store.STATE_FILE).read_bytes()
    start = time.perf_counter()
    loaded = load_site(site).site
    load_s = time.perf_counter() - start
    ensure = []
    for _ in range(repeat):
        start = time.perf_counter()
        _, made = store.ensure_keys(loaded, state)
        ensure.append(time.perf_counter() - start)
        assert made == 0
    assert (state / store.STATE_FILE).read_bytes() == before, "a warm run rewrote dkim.yaml"
    wall = statistics.median(r[0] for r in runs)
    return {
        "wall_min_s": round(min(r[0] for r in runs), 3),
        "domains": n,
        "keys": keys,
        "wall_s": round(wall, 3),
        "cpu_s": round(statistics.median(r[1] for r in runs), 3),
        "ensure_keys_s": round(statistics.median(ensure), 3),
        "load_site_s": round(load_s, 3),
        "meets_1s": wall <= REQUIRED_WARM_S,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=5000, help="domains of the warm run and of the cold extrapolation")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs (median reported)")
    ap.add_argument("--cold-domains", type=int, default=500, help="domains of the (single) cold run")
    ap.add_argument("--samples", type=int, default=100, help="in-process key generations / vault operations per algorithm")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="keys_bench-", dir="/tmp"))
    try:
        print(f"cold run, {args.cold_domains} domains ...", file=sys.stderr, flush=True)
        cold = bench_cold(args.cold_domains, work)
        print("in-process generation and vault ...", file=sys.stderr, flush=True)
        gen = bench_generation(args.samples)
        vault = bench_vault(args.samples)
        print(f"warm run, {args.domains} domains ...", file=sys.stderr, flush=True)
        warm = bench_warm(args.domains, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    full_keys = 2 * args.domains
    cold["extrapolated_domains"] = args.domains
    cold["extrapolated_s"] = round(cold["ms_per_key"] * full_keys / 1000, 1)
    cpus = os.cpu_count() or 1

    rows = [
        (
            "cold `provision keys`, rsa-2048",
            f"{cold['domains']} domains, {cold['keys']} keys",
            f"{cold['wall_s']} s wall ({cold['cpu_s']} s CPU), {cold['keys_per_s']} keys/s, {cold['ms_per_key']} ms/key",
        ),
        ("cold, extrapolated", f"{args.domains} domains, {full_keys} keys", f"~{cold['extrapolated_s']} s"),
        (
            "generate_private_key in-process",
            f"{gen['samples']} keys each",
            f"ed25519 {gen['ed25519_ms']} ms/key, rsa-2048 {gen['rsa2048_ms']} ms/key, ratio rsa/ed25519 {gen['rsa_over_ed25519']}x",
        ),
        ("ansible-vault per key (in-process)", "rsa-2048 PEM", f"encrypt {vault['encrypt_ms']} ms, decrypt {vault['decrypt_ms']} ms"),
        (
            "warm `provision keys` (nothing to do)",
            f"{warm['domains']} domains, {warm['keys']} keys",
            f"{warm['wall_s']} s wall median of {args.repeat} (min {warm['wall_min_s']} s; {warm['cpu_s']} s CPU); requirement <= {REQUIRED_WARM_S} s: {'met' if warm['meets_1s'] else 'NOT met'}",
        ),
        ("warm, in-process parts", f"{warm['domains']} domains", f"ensure_keys {warm['ensure_keys_s']} s, load_site {warm['load_site_s']} s"),
    ]
    print(f"machine: {cpus} CPUs, Python {platform.python_version()}, cryptography {version('cryptography')}, ansible-core {version('ansible-core')}")
    print()
    print("| measurement | size | result |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    data = {
        "args": {"cold_domains": args.cold_domains, "domains": args.domains, "repeat": args.repeat, "samples": args.samples},
        "cpus": cpus,
        "versions": {"ansible-core": version("ansible-core"), "cryptography": version("cryptography"), "python": platform.python_version()},
        "cold": cold,
        "generation": gen,
        "vault": vault,
        "warm": warm,
        "warm_requirement_s": REQUIRED_WARM_S,
    }
    (results / "keys.json").write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
