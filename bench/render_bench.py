"""Benchmark the user-facing `provision render` job on large generated sites, on a real disk.

What it measures, for each domain count N (site made by bench/gen_site.py: 10 mailboxes and
4 aliases per domain by default), every figure the median of --repeat runs:

* validate s - `provision validate SITE` (load, parse, validate);
* cold s     - `provision render SITE -o NEW --state STATE` into a directory that does not
               exist yet (each run its own; none is deleted before the end, so no run pays
               for the previous one's deletes), DKIM key state already present (made untimed);
* warm s     - the same render again into an existing build, nothing changed;
* one s      - a re-render after one domain changed (d00000 gains or loses an alias, in turn);
* writer     - the writer's share of each: seconds inside write_build / the whole command
               (the child runs the CLI with write_build wrapped in a timer);
* peak MB    - the largest peak RSS of any render child (median per kind, then the max);
* baselines, in the same run: `cp -r` of the build into a new directory (what this disk
  charges for making these files), and Postfix's own `postmap lmdb:FILE` on a copy of the
  rendered mx1 mailbox table; each render figure is also given as a ratio to `cp -r`.

The work directory is on a real disk (--dir, default /var/tmp; tmpfs is refused) and is
removed at the end. Load average and CPU count are printed and saved with the results.
Results: a Markdown table, and bench/results/render.json.

usage: .venv/bin/python bench/render_bench.py [--domains 500,1000,2000,5000] [--repeat 3] [--dir /var/tmp]
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
KINDS = ("cold", "warm", "one")
# The CLI with write_build timed: argv[1] gets the writer's seconds, argv[2:] are provision's.
CHILD = """
import sys, time
import provisioner.build as build
real, timing = build.write_build, sys.argv[1]
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return real(*args, **kwargs)
    finally:
        with open(timing, "w") as out:
            out.write(repr(time.perf_counter() - start))
build.write_build = timed
from provisioner.cli import main
sys.argv = ["provision", *sys.argv[2:]]
main()
"""
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


def median(values: list[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def one_domain_changed(text: str, turn: int) -> str:
    """The site with d00000 holding one alias more (odd turns) or as generated (even turns)."""
    return text.replace("    aliases:\n", "    aliases:\n      team99: [user00]\n", 1) if turn % 2 else text


def bench(n: int, repeat: int, work: Path) -> dict[str, Any]:
    d = work / f"n{n}"
    d.mkdir()
    site, state, timing = d / "site.yaml", d / "state", d / "writer-seconds"
    text = generate(n)
    site.write_text(text, encoding="utf-8")
    warm_keys(site, state)

    def render(out: Path) -> tuple[float, float, float]:
        wall, peak = measure([sys.executable, "-c", CHILD, str(timing), "render", str(site), "-o", str(out), "--state", str(state)])
        return wall, peak, float(timing.read_text())

    render(d / "first")  # untimed: makes the self-signed TLS certs once
    validate_s = [measure([str(PROVISION), "validate", str(site)])[0] for _ in range(repeat)]
    runs: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in KINDS}
    for i in range(repeat):
        runs["cold"].append(render(d / f"cold{i}"))
    build = d / "cold0"
    for _ in range(repeat):
        runs["warm"].append(render(build))
    for i in range(repeat):
        site.write_text(one_domain_changed(text, i + 1), encoding="utf-8")
        runs["one"].append(render(build))
    files = sum(len(names) for _, _, names in os.walk(build))
    cp_s = [measure(["cp", "-r", str(build), str(d / f"copy{i}")])[0] for i in range(repeat)]
    # postmap baseline on a copy of the rendered table; -c points at an empty main.cf so it
    # neither needs nor reads /etc/postfix. The main.cf is back-dated: Postfix waits (~2 s,
    # polling every 0.3 s) before using a config file modified within the last second.
    pm = d / "postmap"
    pm.mkdir()
    (pm / "main.cf").write_text("")
    os.utime(pm / "main.cf", (0, 0))
    table = pm / "vmailbox"
    shutil.copyfile(build / "mx1" / "etc" / "postfix" / "vmailbox", table)
    postmap_s = []
    for _ in range(repeat):
        (pm / "vmailbox.lmdb").unlink(missing_ok=True)
        postmap_s.append(measure(["postmap", "-c", str(pm), f"lmdb:{table}"])[0])
    row: dict[str, Any] = {
        "domains": n,
        "mailboxes": n * 10,
        "aliases": n * 4,
        "files": files,
        "site_mb": round(site.stat().st_size / 2**20, 2),
        "vmailbox_lines": sum(1 for _ in table.open(encoding="utf-8")),
        "validate_s": median(validate_s),
        "cp_s": median(cp_s),
        "postmap_s": median(postmap_s, 4),
    }
    for kind in KINDS:
        row[f"{kind}_s"] = median([r[0] for r in runs[kind]])
        row[f"{kind}_writer_s"] = median([r[2] for r in runs[kind]])
        row[f"{kind}_writer_share"] = round(row[f"{kind}_writer_s"] / row[f"{kind}_s"], 2)
        row[f"{kind}_vs_cp"] = round(row[f"{kind}_s"] / row["cp_s"], 1) if row["cp_s"] > 0 else None
        row[f"{kind}_all_s"] = [round(r[0], 2) for r in runs[kind]]
    row["peak_mb"] = round(max(statistics.median(r[1] for r in runs[kind]) for kind in KINDS), 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", default="500,1000,2000,5000", help="comma-separated domain counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--dir", default="/var/tmp", help="where to work: a directory on a real disk, not tmpfs")
    args = ap.parse_args()
    counts = sorted(int(x) for x in args.domains.split(","))
    notes = []
    try:
        check_password_hash(HASH)
    except Exception as exc:  # noqa: BLE001 - report, do not stop: render would fail with the reason
        notes.append(f"gen_site.HASH is rejected by check_password_hash: {exc}")
    if shutil.which("postmap") is None:
        raise SystemExit("postmap (Postfix) is not installed: it is the baseline")
    where = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", args.dir], capture_output=True, text=True, check=False).stdout.strip()
    if where in ("tmpfs", "ramfs"):
        raise SystemExit(f"{args.dir} is on {where}: give a directory on a real disk with --dir")
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="render_bench-", dir=args.dir))
    try:
        rows = []
        for n in counts:
            print(f"N={n} ...", file=sys.stderr, flush=True)
            rows.append(bench(n, args.repeat, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"

    print(f"{where or 'unknown'} file system at {args.dir}; {load}; median of {args.repeat}")
    print()
    print(
        "| domains | files | validate s | cold s | warm s | one domain s | writer share cold/warm/one | cp -r s | cold/warm/one vs cp -r | postmap s | peak MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['domains']} | {r['files']} | {r['validate_s']} | {r['cold_s']} | {r['warm_s']} | {r['one_s']} "
            f"| {r['cold_writer_share']:.2f} / {r['warm_writer_share']:.2f} / {r['one_writer_share']:.2f} "
            f"| {r['cp_s']} | {r['cold_vs_cp']} / {r['warm_vs_cp']} / {r['one_vs_cp']} | {r['postmap_s']} | {r['peak_mb']} |"
        )
    per = {r["domains"]: r["cold_s"] / r["domains"] * 1000 for r in rows}
    growth = per[counts[-1]] / per[counts[0]]
    verdict = "roughly linear" if 0.67 <= growth <= 1.5 else ("sub-linear" if growth < 0.67 else "super-linear")
    linear = (
        f"growth {counts[0]} -> {counts[-1]} domains: {verdict} (cold render ms/domain: "
        + ", ".join(f"{n}: {v:.2f}" for n, v in per.items())
        + f"; ratio {growth:.2f})"
    )
    if len(rows) > 1:  # fixed start-up cost inflates small N; the marginal cost per domain shows the slope
        marginal = (rows[-1]["cold_s"] - rows[0]["cold_s"]) / (counts[-1] - counts[0]) * 1000
        linear += f"; marginal {marginal:.2f} ms/domain between {counts[0]} and {counts[-1]}"
    print()
    print(linear)
    for note in notes:
        print("note:", note)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    data = {"repeat": args.repeat, "file_system": f"{where} at {args.dir}", "load": load, "rows": rows, "linearity": linear, "notes": notes}
    (results / "render.json").write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
