"""Benchmark `provision validate` on hostile site files against the bundled example (issue 11, item 6).

Rows, each run as `provision validate FILE` in its own child process:

* baseline     - examples/all-in-one/site.yaml (what every run pays: start-up, imports);
* laughs       - 9 levels of nested aliases, 361 bytes (expanded: 9^9 strings);
* list-10MB    - `hosts: [1,1,...]`, 5,000,000 items on one line;
* over-16MiB   - a valid site followed by 16 MiB of comments;
* wrong-900k   - 900,000 wrong values in one list (every one an error);
* dup-keys-400k - the key `a` 400,000 times;
* idn-25k      - 25,000 internationalised domain names;
* valid-5000   - a valid 5,000-domain site, 50,000 mailboxes (bench/gen_site.py, 9 MB);
* valid-9000   - a valid 9,000-domain site, 90,000 mailboxes (16 MB).

Columns: exit code, median wall seconds, ratio to the baseline, median peak RSS (MB, from
os.wait4 of the child). The target of the issue: any file up to 16 MiB in at most 10 s and
1 GB. Results go to bench/results/site_hostile.json; temp files are removed.

usage: .venv/bin/python bench/site_hostile_bench.py [--repeat 3]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROVISION = ROOT / ".venv" / "bin" / "provision"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_site import generate  # noqa: E402

MINIMAL = (ROOT / "examples/all-in-one/site.yaml").read_text()


def laughs() -> str:
    lines = ["version: 1", "name: t", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


CASES: dict[str, Callable[[], str]] = {
    "baseline": lambda: MINIMAL,
    "laughs": laughs,
    "list-10MB": lambda: "version: 1\nname: t\nhosts: [" + ",".join(["1"] * 5_000_000) + "]\n",
    "over-16MiB": lambda: MINIMAL + ("#" * 1023 + "\n") * (16 * 1024 + 1),
    "wrong-900k": lambda: MINIMAL + "policy:\n  spf:\n    include: [" + ",".join(["1"] * 900_000) + "]\n",
    "dup-keys-400k": lambda: "version: 1\nname: t\n" + "a: 1\n" * 400_000,
    "idn-25k": lambda: MINIMAL + "".join(f"  例え{i}.jp: {{}}\n" for i in range(25_000)),
    "valid-5000": lambda: generate(5000),
    "valid-9000": lambda: generate(9000),
}


def run(path: Path) -> tuple[int, float, float]:
    """(exit code, wall seconds, peak RSS MB) of `provision validate PATH` in a child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as sink:  # a file, not a pipe: nothing is read before wait4
        child = subprocess.Popen([str(PROVISION), "validate", str(path)], stdout=sink, stderr=sink)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="site-hostile-bench-") as tmp:
        for name, make in CASES.items():
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(make(), encoding="utf-8")
            runs = [run(path) for _ in range(args.repeat)]
            codes = {code for code, _, _ in runs}
            rows.append(
                {
                    "case": name,
                    "bytes": path.stat().st_size,
                    "exit": sorted(codes),
                    "seconds": round(statistics.median(wall for _, wall, _ in runs), 3),
                    "peak_mb": round(statistics.median(rss for _, _, rss in runs), 1),
                }
            )
            path.unlink()
    base = rows[0]["seconds"]
    print("| case | bytes | exit | median s | x baseline | peak MB |\n|---|---:|---|---:|---:|---:|")
    for row in rows:
        row["ratio"] = round(row["seconds"] / base, 1)
        print(f"| {row['case']} | {row['bytes']:,} | {row['exit']} | {row['seconds']:.2f} | {row['ratio']} | {row['peak_mb']:.0f} |")
    out = ROOT / "bench/results/site_hostile.json"
    out.write_text(json.dumps({"repeat": args.repeat, "rows": rows}, indent=2) + "\n")
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
