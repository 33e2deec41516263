"""Benchmark `provision inspect` on three messages, each against a baseline in the same run.

Messages (built and signed as tests/inspect/conftest.py does, zones served by a real nsd on
127.0.0.155):
* typical - signed, 6 Received hops, 3 Authentication-Results, 30 KB body, ISO-2022-JP subject;
* large   - the same with a 20 MB base64 attachment (body hash over 20 MB);
* hops    - 200 Received lines (a mail loop), 50 Authentication-Results.

Hostile rows (issue 11 item 4; messages from tests/inspect/test_hostile_input.py), each run as
`provision inspect FILE` (text and --format json) and, for the signed one, with --verify:
median seconds and peak RSS of the process (GNU time's %M), each as a ratio against the typical
message's `provision inspect FILE` in the same run. Target: <= 1 s and <= 200 MB.

Columns (medians over --repeat runs, seconds):
* read       - parse_message + inspect_message without --verify;
* stdlib     - baseline: email.message_from_bytes(policy=default) and str() of every header
               (what Python's own parser does to show the same headers decoded);
* verify     - with --verify (fresh resolver each run, so the DNS questions are asked);
* dkimpy     - baseline: dkim.verify() of every signature alone, keys from the same nsd;
* cli        - `provision inspect FILE --verify --nameserver ...` as a process;
* cli-help   - baseline: `provision --help` as a process (interpreter + CLI start-up).

Results: a Markdown table on stdout and bench/results/inspect.json (no timestamps).
usage: .venv/bin/python bench/inspect_bench.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
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
sys.path.insert(0, str(ROOT))

import tests.inspect.conftest as world_module  # noqa: E402

world_module.INSPECT_ADDRESS = ADDRESS = "127.0.0.155"

import dns.resolver  # noqa: E402

from provisioner.inspect import Trust, inspect_message, parse_message  # noqa: E402
from provisioner.mailauth.resolver import CachingResolver, DnsResolver, Nameserver  # noqa: E402
from tests.dns.conftest import serve, stop  # noqa: E402
from tests.inspect.conftest import DOMAIN, EVIL, EVIL_SELECTOR, OUR_IP, OUR_MX, RECIPIENT_MX, build_world, compose, deliver, received, sign  # noqa: E402
from tests.inspect.test_hostile_input import HOSTILE_MESSAGES  # noqa: E402

PROVISION = str(Path(sys.executable).parent / "provision")


def hops(n: int) -> list[bytes]:
    return [
        received(
            f"relay{i}.recipient.test",
            f"192.0.2.{100 + i % 100}",
            f"relay{i}.recipient.test",
            f"relay{i + 1}.recipient.test",
            f"Mon, 23 Nov 2026 10:{(i // 60) % 60:02d}:{i % 60:02d} +0000",
        )
        for i in range(n)
    ]


def messages(world: world_module.World) -> dict[str, bytes]:
    subject = "=?ISO-2022-JP?B?GyRCJDQwRkZiJE4kKkNOJGkkOxsoQg==?="
    body = "Line of a typical business letter, long enough to look real.\r\n" * 480
    attachment = base64.encodebytes(os.urandom(15 * 1024 * 1024)).decode().replace("\n", "\r\n")
    mime = (
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "--b1\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + attachment + "--b1--\r\n"
    )
    auth = [f"{RECIPIENT_MX}; spf=pass smtp.mailfrom={DOMAIN}; dkim=pass header.d={DOMAIN}; dmarc=pass header.from={DOMAIN}"] * 3

    def signed(text: str, extra: tuple[str, ...] = ()) -> bytes:
        return sign(compose(f"alice@{DOMAIN}", subject=subject, body=text, extra=extra), DOMAIN, world.our_selector, world.our_key)

    border = received(OUR_MX, OUR_IP, OUR_MX, RECIPIENT_MX, "Mon, 23 Nov 2026 11:00:00 +0000")
    return {
        "typical": deliver(signed(body), *hops(5), border, mail_from=f"alice@{DOMAIN}", auth_results=auth),
        "large": deliver(signed(mime, ('Content-Type: multipart/mixed; boundary="b1"',)), *hops(5), border, mail_from=f"alice@{DOMAIN}", auth_results=auth),
        "hops": deliver(signed(body), *hops(199), border, mail_from=f"alice@{DOMAIN}", auth_results=auth * 17),
    }


def many_signatures(world: world_module.World) -> bytes:
    """Twenty valid signatures of the sender's own key varying c= and l=, over a 9 MB body."""
    import itertools

    import dkim

    message = compose(f"a@{EVIL}", body="Body line of a large message, filling ten megabytes.\r\n" * 170_000)
    ways = list(itertools.product([b"simple", b"relaxed"], [b"simple", b"relaxed"], [False, True]))
    for number in range(20):
        header, body, length = ways[number % len(ways)]
        message = dkim.sign(message, EVIL_SELECTOR.encode(), EVIL.encode(), world.evil_key, canonicalize=(header, body), length=length) + message
    return message


def run_measured(args: list[str], work: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one process. The RSS is what GNU time reports for
    its own child: a child forked from this (large) process would report this process's RSS."""
    report = work / "rss.txt"
    t0 = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-o", str(report), "-f", "%M", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - t0
    return elapsed, int(report.read_text().split()[-1]) / 1024, done.returncode


def measured(args: list[str], repeat: int, work: Path) -> tuple[float, float]:
    """Median seconds and the largest peak RSS (MB) over `repeat` runs; the exit code must be documented."""
    runs = [run_measured(args, work) for _ in range(repeat)]
    assert all(code in (0, 1, 2, 3) for _, _, code in runs), (args, runs)
    return statistics.median(t for t, _, _ in runs), max(m for _, m, _ in runs)


def hostile_rows(world: world_module.World, work: Path, repeat: int) -> tuple[dict[str, float], list[dict[str, object]]]:
    """The typical message as the baseline, then each hostile message against it."""
    typical = work / "typical.eml"
    base_s, base_mb = measured([PROVISION, "inspect", str(typical), "--trust", RECIPIENT_MX], repeat, work)
    baseline = {"cli_s": round(base_s, 3), "rss_mb": round(base_mb, 1)}
    cases: list[tuple[str, bytes, list[str]]] = [(name, build(), []) for name, build in HOSTILE_MESSAGES.items()]
    cases.append(("20 signatures, 9 MB, --verify", many_signatures(world), ["--verify", "--nameserver", ADDRESS]))
    rows: list[dict[str, object]] = []
    for number, (name, raw, extra) in enumerate(cases):
        path = work / f"hostile{number}.eml"
        path.write_bytes(raw)
        text_s, text_mb = measured([PROVISION, "inspect", str(path), "--trust", RECIPIENT_MX, *extra], repeat, work)
        json_s, json_mb = measured([PROVISION, "inspect", str(path), "--trust", RECIPIENT_MX, "--format", "json", *extra], repeat, work)
        worst_s, worst_mb = max(text_s, json_s), max(text_mb, json_mb)
        rows.append(
            {
                "message": name,
                "bytes": len(raw),
                "text_s": round(text_s, 3),
                "json_s": round(json_s, 3),
                "rss_mb": round(worst_mb, 1),
                "time_ratio": round(worst_s / base_s, 2),
                "rss_ratio": round(worst_mb / base_mb, 2),
                "within_target": worst_s <= 1.0 and worst_mb <= 200,
            }
        )
    return baseline, rows


def median_time(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    import dkim

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        world = build_world(work / "world")
        proc = serve(world.zones, work / "nsd", ADDRESS, 53)
        try:
            plain = dns.resolver.Resolver(configure=False)
            plain.nameservers = [ADDRESS]

            def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
                answer = plain.resolve(name.decode(), "TXT")
                return b"".join(b"".join(r.strings) for r in answer)

            trust = Trust.of([RECIPIENT_MX])
            rows = []
            for name, raw in messages(world).items():
                path = work / f"{name}.eml"
                path.write_bytes(raw)

                def read(raw: bytes = raw) -> None:
                    inspect_message(parse_message("m", raw), trust)

                def stdlib(raw: bytes = raw) -> None:
                    msg = email.message_from_bytes(raw, policy=email.policy.default)
                    for _key, value in msg.items():
                        str(value)

                def verify(raw: bytes = raw) -> None:
                    got = inspect_message(parse_message("m", raw), trust, CachingResolver(DnsResolver([Nameserver(ADDRESS, 53)])))
                    assert got.verdict.value == "pass", got.summary

                def dkimpy(raw: bytes = raw) -> None:
                    d = dkim.DKIM(raw)
                    assert all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(len([1 for k, _ in d.headers if k.lower() == b"dkim-signature"])))

                def cli(path: Path = path) -> None:
                    done = subprocess.run([PROVISION, "inspect", str(path), "--trust", RECIPIENT_MX, "--verify", "--nameserver", ADDRESS], capture_output=True)
                    assert done.returncode == 0, done.stdout[-500:]

                def cli_help() -> None:
                    subprocess.run([PROVISION, "--help"], capture_output=True, check=True)

                repeat = max(3, args.repeat // 2) if name == "large" else args.repeat
                row = {"message": name, "bytes": len(raw), "received": raw.count(b"\r\nReceived: ") + raw.startswith(b"Received: ")}
                for column, fn in (("read", read), ("stdlib", stdlib), ("verify", verify), ("dkimpy", dkimpy), ("cli", cli), ("cli_help", cli_help)):
                    fn()  # warm: imports, caches
                    row[column] = round(median_time(fn, repeat), 4)
                row["read_ratio"] = round(row["read"] / row["stdlib"], 2)
                row["verify_ratio"] = round(row["verify"] / row["dkimpy"], 2)
                row["cli_ratio"] = round(row["cli"] / row["cli_help"], 2)
                rows.append(row)
            baseline, hostile = hostile_rows(world, work, args.repeat)
        finally:
            stop(proc)
    print("| message | MB | read s | stdlib s | ratio | verify s | dkimpy s | ratio | cli s | cli --help s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['message']} | {r['bytes'] / 1e6:.2f} | {r['read']:.4f} | {r['stdlib']:.4f} | {r['read_ratio']} | {r['verify']:.4f} | {r['dkimpy']:.4f} | "
            f"{r['verify_ratio']} | {r['cli']:.3f} | {r['cli_help']:.3f} | {r['cli_ratio']} |"
        )
    print()
    print(f"Hostile messages (baseline: typical message, text, {baseline['cli_s']:.3f} s, {baseline['rss_mb']:.0f} MB peak RSS):")
    print("| message | MB | text s | json s | peak RSS MB | time ratio | RSS ratio | <= 1 s, 200 MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for h in hostile:
        print(
            f"| {h['message']} | {int(h['bytes']) / 1e6:.2f} | {h['text_s']:.3f} | {h['json_s']:.3f} | {h['rss_mb']:.0f} | {h['time_ratio']} | {h['rss_ratio']} | "
            f"{'yes' if h['within_target'] else 'NO'} |"
        )
    out = ROOT / "bench" / "results" / "inspect.json"
    out.write_text(json.dumps({"repeat": args.repeat, "rows": rows, "hostile_baseline": baseline, "hostile": hostile}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
