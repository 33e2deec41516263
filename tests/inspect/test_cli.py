"""`provision inspect` as a user runs it: files and stdin, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.inspect.conftest import DOMAIN, EVIL, EVIL_IP, INSPECT_ADDRESS, OUR_IP, OUR_MX, RECIPIENT_MX, SITE_FILE, World, compose, deliver, received, sign

PROVISION = [sys.executable, "-m", "provisioner.cli", "inspect"]
T1 = "Mon, 23 Nov 2026 10:00:02 +0000"


def inspect(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*PROVISION, *args], capture_output=True, input=stdin, check=False, timeout=60)


def test_stdin_without_evidence_exits_3_with_facts() -> None:
    raw = compose(f"alice@{DOMAIN}")
    done = inspect("-", stdin=raw)
    assert done.returncode == 3, done.stderr
    out = done.stdout.decode()
    assert "Message: <stdin>" in out and "Verdict: UNKNOWN" in out and "The message carries no DKIM signature." in out


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["/nonexistent/m.eml"], None, "error: /nonexistent/m.eml: no such file"),
        (["-"], b"", "error: <stdin>: empty input"),
        (["-"], b"From: a@b.test\nnot a header\n\nbody", "error: <stdin>:2: 'not a header' is not a header field"),
        (["-", "--nameserver", "127.0.0.1"], b"From: a@b.test\n\n", "error: --nameserver is used by --verify; add --verify"),
        (["-", "--verify", "--nameserver", "nope"], b"From: a@b.test\n\n", "error: --nameserver: 'nope' is not an IP address"),
        (["-", "--max-size", "1"], b"From: a@b.test\n\n" + b"x" * (1024 * 1024 + 1), "error: <stdin>: larger than 1 MB"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1(args: list[str], stdin: bytes | None, message: str) -> None:
    done = inspect(*args, stdin=stdin)
    err = done.stderr.decode()
    assert done.returncode == 1 and err.startswith(message), err
    assert "Traceback" not in err and done.stdout == b""


def test_bad_site_file_is_reported_like_validate(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("version: 1\nname: x\nhosts: {}\nbogus: 1\n")
    done = inspect("-", "--site", str(site), stdin=b"From: a@b.test\n\n")
    assert done.returncode == 1 and f"{site}:4:1: bogus" in done.stderr.decode()


def test_verify_with_site_pass_and_spoof(served: World, tmp_path: Path) -> None:
    genuine = sign(compose(f"alice@{DOMAIN}"), DOMAIN, served.our_selector, served.our_key)
    good = tmp_path / "good.eml"
    good.write_bytes(deliver(genuine, received(OUR_MX, OUR_IP, OUR_MX, RECIPIENT_MX, T1), mail_from=f"alice@{DOMAIN}"))
    done = inspect(str(good), "--trust", RECIPIENT_MX, "--verify", "--nameserver", INSPECT_ADDRESS, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "pass" and report["evidence"] == "verify" and report["dmarc"]["result"] == "pass"

    spoof = tmp_path / "spoof.eml"
    spoof.write_bytes(deliver(compose(f"ceo@{DOMAIN}"), received(f"mail.{EVIL}", EVIL_IP, f"mail.{EVIL}", OUR_MX, T1), mail_from=f"x@{EVIL}"))
    done = inspect(str(spoof), "--site", str(SITE_FILE), "--verify", "--nameserver", INSPECT_ADDRESS, "--lang", "ja")
    assert done.returncode == 2, done.stderr
    out = done.stdout.decode()
    assert "判定: 不合格" in out and f"差出人 (From) は {DOMAIN} ですが" in out and "あなた自身のドメイン" in out
