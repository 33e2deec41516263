"""Benchmark `provision inspect` on three messages, each against a baseline in the same run.

Messages (built and signed as tests/inspect/conftest.py does, zones served by a real nsd on
127.0.0.155):
* typical - signed, 6 Received hops, 3 Authentication-Results, 30 KB body, ISO-2022-JP subject;
* large   - the same with a 20 MB base64 attachment (body hash over 20 MB);
* hops    - 200 Received lines (a mail loop), 50 Authentication-Results.

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

from provisioner.check import CachingResolver, DnsResolver, Nameserver  # noqa: E402
from provisioner.inspect import Trust, inspect_message, parse_message  # noqa: E402
from tests.dns.conftest import serve, stop  # noqa: E402
from tests.inspect.conftest import DOMAIN, OUR_IP, OUR_MX, RECIPIENT_MX, build_world, compose, deliver, received, sign  # noqa: E402

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
        finally:
            stop(proc)
    print("| message | MB | read s | stdlib s | ratio | verify s | dkimpy s | ratio | cli s | cli --help s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['message']} | {r['bytes'] / 1e6:.2f} | {r['read']:.4f} | {r['stdlib']:.4f} | {r['read_ratio']} | {r['verify']:.4f} | {r['dkimpy']:.4f} | "
            f"{r['verify_ratio']} | {r['cli']:.3f} | {r['cli_help']:.3f} | {r['cli_ratio']} |"
        )
    out = ROOT / "bench" / "results" / "inspect.json"
    out.write_text(json.dumps({"repeat": args.repeat, "rows": rows}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
