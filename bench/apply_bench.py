"""Benchmark `provision apply` on one throwaway Debian host: cold apply and idempotent re-apply.

usage: .venv/bin/python bench/apply_bench.py [--domains 10,5000] [--repeat 3]

The issue's figure: idempotent re-apply of the 5,000-domain site to one host takes at most 60 s,
and within 2x of the same for a 10-domain site (the cost must not grow per domain).

For each domain count N (site from bench/gen_site.py, 10 mailboxes and 4 aliases per domain, with
host mx2 dropped so the site has the one host mx1):

* the DKIM state is made outside any timing (bench/render_bench.py's warm_keys: one key per
  algorithm re-used, so 10,000 RSA keys are not generated);
* render s       - `provision render SITE -o BUILD --state STATE`, one run (the first render also
                   makes the self-signed TLS certificates);
* a sandbox host mx1 (fqdn mx1.bench.example, 192.0.2.10) from tests/apply/testbed.py: overlay
  chroot of the cached golden Debian rootfs in its own network namespace, reached by Ansible's
  local connection through the namespace's python wrapper;
* cold apply s   - `provisioner.apply.apply(None, BUILD, INVENTORY, env=...)` on the fresh host,
                   one run (installs the packages from apt's cache, ships, compiles, starts);
* re-apply s     - the same call again, median of --repeat runs: Ansible only, no render;
                   each must report changed == 0 for mx1;
* CLI re-apply s - `provision apply SITE -i INV --yes --build BUILD --state STATE --format json`
                   (renders first, then applies), median of --repeat runs, changed == 0;
* per-task seconds of the slowest re-apply tasks, from the wall time between the task events
  the progress callback sees (one host, so tasks run one after another).

Results: a Markdown table on stdout, bench/results/apply.json (sorted keys, no timestamps).
Needs root, overlayfs, network namespaces and the golden rootfs (built on first use by
tests/apply/testbed.golden, which needs the Debian mirror). Everything made here (temp dirs,
the sandbox's mounts, namespace and its processes) is removed at the end.
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
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVISION = ROOT / ".venv" / "bin" / "provision"
HOST, FQDN, ADDRESS = "mx1", "mx1.bench.example", "192.0.2.10"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from gen_site import generate  # noqa: E402
from render_bench import warm_keys  # noqa: E402

from provisioner.apply import TaskEvent, apply  # noqa: E402
from tests.apply.testbed import SandboxHost, golden, sandbox_host  # noqa: E402


def one_host_site(n: int) -> str:
    """gen_site's site without mx2: the lines from '  mx2:' up to 'domains:' are dropped."""
    lines = generate(n).splitlines()
    start, end = lines.index("  mx2:"), lines.index("domains:")
    return "\n".join(lines[:start] + lines[end:]) + "\n"


def inventory(host: SandboxHost, path: Path) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
        all:
          hosts:
            {HOST}:
              ansible_connection: local
              ansible_python_interpreter: {host.python}
              mailhost_apt_update_cache: false
        """)
    )
    return path


def ansible_env(host: SandboxHost) -> dict[str, str]:
    # The wrapper interpreter runs in the chroot: module files must be where both see them.
    return {"ANSIBLE_REMOTE_TMP": str(host.ansible_tmp), "ANSIBLE_LOCAL_TMP": str(host.ansible_tmp / "local")}


def timed_apply(build: Path, inv: Path, env: dict[str, str]) -> tuple[float, Any, list[tuple[str, str, float]]]:
    """One API apply: (wall seconds, result, [(task, status, seconds since the previous event)])."""
    marks: list[tuple[str, str, float]] = []
    last = [time.perf_counter()]

    def progress(event: TaskEvent) -> None:
        now = time.perf_counter()
        marks.append((event.task, event.status, now - last[0]))
        last[0] = now

    start = time.perf_counter()
    result = apply(None, build, inv, env=env, progress=progress)
    wall = time.perf_counter() - start
    if not result.ok:
        raise SystemExit("apply failed:\n" + "\n".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures) + "\n" + "\n".join(result.log[-30:]))
    return wall, result, marks


def changed_count(stats: Any) -> int:
    return int(stats[HOST]["changed"])


def bench(n: int, repeat: int, gold: Path, work: Path) -> dict[str, Any]:
    d = work / f"n{n}"
    d.mkdir()
    site, state, build = d / "site.yaml", d / "state", d / "build"
    site.write_text(one_host_site(n), encoding="utf-8")
    warm_keys(site, state)
    start = time.perf_counter()
    subprocess.run([str(PROVISION), "render", str(site), "-o", str(build), "--state", str(state)], check=True, capture_output=True)
    render_s = time.perf_counter() - start
    manifest = json.loads((build / "manifest.json").read_text())
    files = manifest["hosts"][HOST]["files"]
    tree = build / HOST
    tree_mb = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20

    with sandbox_host(gold, HOST, FQDN, ADDRESS) as host:
        inv = inventory(host, d / "hosts.yml")
        env = ansible_env(host)
        print(f"N={n}: cold apply ...", file=sys.stderr, flush=True)
        cold_s, cold, _ = timed_apply(build, inv, env)
        re_runs: list[float] = []
        tasks: dict[str, list[float]] = {}
        for i in range(repeat):
            print(f"N={n}: re-apply {i + 1}/{repeat} ...", file=sys.stderr, flush=True)
            wall, result, marks = timed_apply(build, inv, env)
            assert changed_count(result.stats) == 0, f"re-apply changed something: {result.stats} {[h.changed_tasks for h in result.hosts]}"
            re_runs.append(wall)
            per: dict[str, float] = {}
            for task, _status, secs in marks:
                per[task] = per.get(task, 0.0) + secs
            for task, secs in per.items():
                tasks.setdefault(task, []).append(secs)
        cli_runs: list[float] = []
        cli = [str(PROVISION), "apply", str(site), "-i", str(inv), "--yes", "--build", str(build), "--state", str(state), "--format", "json"]
        for i in range(repeat):
            print(f"N={n}: CLI re-apply {i + 1}/{repeat} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cli, capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT)
            cli_runs.append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise SystemExit(f"CLI apply failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
            stats = json.loads(proc.stdout)["stats"]
            assert changed_count(stats) == 0, f"CLI re-apply changed something: {stats}"

    top = sorted(((statistics.median(v), k) for k, v in tasks.items()), reverse=True)[:8]
    return {
        "domains": n,
        "mailboxes": n * 10,
        "aliases": n * 4,
        "files_on_host": len(files),
        "host_tree_mb": round(tree_mb, 2),
        "render_s": round(render_s, 2),
        "cold_apply_s": round(cold_s, 2),
        "cold_changed": changed_count(cold.stats),
        "reapply_s": [round(x, 2) for x in re_runs],
        "reapply_median_s": round(statistics.median(re_runs), 2),
        "cli_reapply_s": [round(x, 2) for x in cli_runs],
        "cli_reapply_median_s": round(statistics.median(cli_runs), 2),
        "reapply_slowest_tasks_s": {k: round(v, 2) for v, k in top},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", default="10,5000", help="comma-separated domain counts")
    ap.add_argument("--repeat", type=int, default=3, help="re-apply runs per N (median reported)")
    args = ap.parse_args()
    counts = sorted(int(x) for x in args.domains.split(","))
    if os.geteuid() != 0:
        raise SystemExit("needs root (overlay mounts, network namespaces)")
    gold = golden(log=lambda m: print(m, file=sys.stderr))
    work = Path(tempfile.mkdtemp(prefix="apply_bench-", dir="/tmp"))
    try:
        rows = [bench(n, args.repeat, gold, work) for n in counts]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0]
    for r in rows:
        r["ratio_to_smallest"] = round(r["reapply_median_s"] / base["reapply_median_s"], 2)
        r["cli_ratio_to_smallest"] = round(r["cli_reapply_median_s"] / base["cli_reapply_median_s"], 2)
    print(
        f"| domains | files on host | host tree MB | render s | cold apply s | re-apply s median (API, Ansible only) | ratio /{base['domains']} | CLI re-apply s median (render+apply) | CLI ratio /{base['domains']} |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['domains']} | {r['files_on_host']} | {r['host_tree_mb']} | {r['render_s']} | {r['cold_apply_s']} "
            f"| {r['reapply_median_s']} | {r['ratio_to_smallest']} | {r['cli_reapply_median_s']} | {r['cli_ratio_to_smallest']} |"
        )
    big = rows[-1]
    verdict = {
        "reapply_max_within_60s": big["reapply_median_s"] <= 60,
        "cli_reapply_max_within_60s": big["cli_reapply_median_s"] <= 60,
        "reapply_within_2x": big["ratio_to_smallest"] <= 2,
        "cli_reapply_within_2x": big["cli_ratio_to_smallest"] <= 2,
    }
    print()
    for r in rows:
        print(f"N={r['domains']} slowest re-apply tasks (median s): " + ", ".join(f"{k}: {v}" for k, v in r["reapply_slowest_tasks_s"].items()))
    print("verdict:", json.dumps(verdict, sort_keys=True))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    data = {"repeat": args.repeat, "host": HOST, "rows": rows, "verdict": verdict}
    (results / "apply.json").write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
