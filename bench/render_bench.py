"""Benchmark the user-facing `provision render` job on large generated sites.

What it measures, for each domain count N (site made by bench/gen_site.py: 10 mailboxes and
4 aliases per domain by default):

* validate s  - `provision validate SITE` (load, parse, validate), median wall time;
* render s    - `provision render SITE -o OUT --state STATE` (validate + render + write), median
                wall time, with the DKIM key state already present (made once, untimed);
* peak MB     - peak RSS of the render child process (median over the repeats);
* postmap s   - baseline: Postfix's own `postmap lmdb:FILE` on a copy of the rendered mx1
                mailbox table (etc/postfix/vmailbox), median wall time;
* ratio       - render s / postmap s.

Every timed command runs in its own child process: wall time by time.perf_counter around it,
peak RSS from /usr/bin/time -f '%e %M' when present, else from os.wait4 on the child. Results are printed as a Markdown table and
written to bench/results/render.json. Temp dirs (under /tmp) are removed at the end.

usage: .venv/bin/python bench/render_bench.py [--domains 500,1000,2000,5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVISION = ROOT / ".venv" / "bin" / "provision"
TIME = Path("/usr/bin/time")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_site import HASH, generate  # noqa: E402

import provisioner.keys.store as store  # noqa: E402
from provisioner.site.types import check_password_hash  # noqa: E402
from provisioner.site.validate import load_site  # noqa: E402


def measure(cmd: list[str]) -> tuple[float, float]:
    """Run cmd in a child process; return (wall seconds, peak RSS MB). Fails loudly on error."""
    start = time.perf_counter()
    if TIME.exists():  # wall time from perf_counter: %e has only 10 ms resolution
        proc = subprocess.run([str(TIME), "-f", "%e %M", *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        return wall, int(proc.stderr.strip().splitlines()[-1].split()[1]) / 1024
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: nothing is read before wait4
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"failed ({code}): {' '.join(cmd)}\n{err.read().decode()}")
    return wall, usage.ru_maxrss / 1024  # Linux: ru_maxrss is in KiB


@contextlib.contextmanager
def cheap_keys() -> Iterator[None]:
    """While active, generate_private_key hands out one pre-made key per algorithm.

    Real generation of 2 RSA-2048 keys per domain takes minutes for 5,000 domains and is not
    what the render and check benchmarks measure. Call ensure_keys with workers=1 inside, so
    generation stays in this process, where the patch applies.
    """
    made: dict[str, bytes] = {}
    real = store.generate_private_key

    def one_key(algorithm: str) -> bytes:
        if algorithm not in made:
            made[algorithm] = real(algorithm)
        return made[algorithm]

    store.generate_private_key = one_key
    try:
        yield
    finally:
        store.generate_private_key = real


def warm_keys(site_path: Path, state: Path) -> int:
    """Create the DKIM state (dkim.yaml + one PEM per selector) outside the timing."""
    with cheap_keys():
        _, count = store.ensure_keys(load_site(site_path).site, state, workers=1)
    return count


def bench(n: int, repeat: int, work: Path) -> dict[str, Any]:
    d = work / f"n{n}"
    d.mkdir()
    site, state, out = d / "site.yaml", d / "state", d / "out"
    site.write_text(generate(n), encoding="utf-8")
    warm_keys(site, state)
    render = [str(PROVISION), "render", str(site), "-o", str(out), "--state", str(state)]
    subprocess.run(render, check=True, capture_output=True)  # untimed: makes the self-signed TLS certs once
    validate_s = [measure([str(PROVISION), "validate", str(site)])[0] for _ in range(repeat)]
    runs = [measure(render) for _ in range(repeat)]
    # postmap baseline on a copy of the rendered table; -c points at an empty main.cf so it
    # neither needs nor reads /etc/postfix. The main.cf is back-dated: Postfix waits (~2 s,
    # polling every 0.3 s) before using a config file modified within the last second.
    pm = d / "postmap"
    pm.mkdir()
    (pm / "main.cf").write_text("")
    os.utime(pm / "main.cf", (0, 0))
    table = pm / "vmailbox"
    shutil.copyfile(out / "mx1" / "etc" / "postfix" / "vmailbox", table)
    postmap_s = []
    for _ in range(repeat):
        (pm / "vmailbox.lmdb").unlink(missing_ok=True)
        postmap_s.append(measure(["postmap", "-c", str(pm), f"lmdb:{table}"])[0])
    render_s = statistics.median(r[0] for r in runs)
    postmap_med = statistics.median(postmap_s)
    return {
        "domains": n,
        "mailboxes": n * 10,
        "aliases": n * 4,
        "site_mb": round(site.stat().st_size / 2**20, 2),
        "vmailbox_lines": sum(1 for _ in table.open(encoding="utf-8")),
        "validate_s": round(statistics.median(validate_s), 3),
        "render_s": round(render_s, 3),
        "peak_mb": round(statistics.median(r[1] for r in runs), 1),
        "postmap_s": round(postmap_med, 4),
        "ratio": round(render_s / postmap_med, 1) if postmap_med > 0 else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", default="500,1000,2000,5000", help="comma-separated domain counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    args = ap.parse_args()
    counts = sorted(int(x) for x in args.domains.split(","))
    notes = []
    try:
        check_password_hash(HASH)
    except Exception as exc:  # noqa: BLE001 - report, do not stop: render would fail with the reason
        notes.append(f"gen_site.HASH is rejected by check_password_hash: {exc}")
    if shutil.which("postmap") is None:
        raise SystemExit("postmap (Postfix) is not installed: it is the baseline")
    work = Path(tempfile.mkdtemp(prefix="render_bench-", dir="/tmp"))
    try:
        rows = []
        for n in counts:
            print(f"N={n} ...", file=sys.stderr, flush=True)
            rows.append(bench(n, args.repeat, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("| domains | mailboxes | aliases | site MB | validate s | render s (validate+render) | peak MB | postmap s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['domains']} | {r['mailboxes']} | {r['aliases']} | {r['site_mb']} | {r['validate_s']} "
            f"| {r['render_s']} | {r['peak_mb']} | {r['postmap_s']} | {r['ratio']} |"
        )
    per = {r["domains"]: r["render_s"] / r["domains"] * 1000 for r in rows}
    growth = per[counts[-1]] / per[counts[0]]
    verdict = "roughly linear" if 0.67 <= growth <= 1.5 else ("sub-linear" if growth < 0.67 else "super-linear")
    linear = (
        f"growth {counts[0]} -> {counts[-1]} domains: {verdict} (render ms/domain: "
        + ", ".join(f"{n}: {v:.2f}" for n, v in per.items())
        + f"; ratio {growth:.2f})"
    )
    if len(rows) > 1:  # fixed start-up cost inflates small N; the marginal cost per domain shows the slope
        marginal = (rows[-1]["render_s"] - rows[0]["render_s"]) / (counts[-1] - counts[0]) * 1000
        linear += f"; marginal {marginal:.2f} ms/domain between {counts[0]} and {counts[-1]}"
    print()
    print(linear)
    for note in notes:
        print("note:", note)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    data = {"repeat": args.repeat, "rows": rows, "linearity": linear, "notes": notes}
    (results / "render.json").write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
