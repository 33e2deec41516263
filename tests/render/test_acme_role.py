"""The role's acme task files run by Ansible on this machine against a rendered host's manifest
entry, with every path it names moved into a temporary directory: the temporary self-signed pair
(real openssl: key 0600, a broken link is replaced, an obtained certificate is left alone), and
the certbot step with a stand-in certbot (a unit test of what the apply reports: the real
certbot against pebble is the network test's). The stand-in records its command line."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.render.test_acme import render

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = ROOT / ".venv/bin/ansible-playbook"

pytestmark = pytest.mark.skipif(not PLAYBOOK_BIN.exists(), reason="ansible-playbook is installed by tests/run.sh")


def manifest_entry(tmp_path: Path, host: str = "mx1") -> tuple[dict, Path]:
    _, out = render(tmp_path / "render")
    entry = json.loads((out / "manifest.json").read_text())["hosts"][host]
    root = tmp_path / "host"
    text = json.dumps(entry).replace('"/etc/', f'"{root}/etc/').replace('"/var/', f'"{root}/var/')
    return json.loads(text), root


def run_tasks(tmp_path: Path, task_file: str, entry: dict, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars_files": [str(ROOT / "roles/mailhost/defaults/main.yml"), str(tmp_path / "vars.yml")],
                    "tasks": [{"ansible.builtin.import_tasks": str(ROOT / "roles/mailhost/tasks" / task_file)}],
                }
            ]
        )
    )
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({"mailhost_manifest": entry, "mailhost_service_mgr": "none"}))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
    if extra_path:
        env["PATH"] = f"{extra_path}:{env['PATH']}"
    return subprocess.run(
        [str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={ROOT / '.venv/bin/python'}", str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_until_the_first_certificate_every_stable_path_holds_a_self_signed_pair(tmp_path: Path) -> None:
    entry, _ = manifest_entry(tmp_path)
    [cert] = entry["layout"]["acme"]["certificates"]
    result = run_tasks(tmp_path, "acme_prepare.yml", entry)
    assert result.returncode == 0, result.stdout + result.stderr
    key, chain = Path(cert["privkey"]), Path(cert["fullchain"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    shown = subprocess.run(["openssl", "x509", "-in", str(chain), "-noout", "-ext", "subjectAltName"], capture_output=True, text=True, check=True).stdout
    assert "DNS:mx1.acme.example" in shown
    assert Path(entry["layout"]["acme"]["webroot"]).is_dir()
    assert "PRIVATE KEY" not in result.stdout  # no_log
    # An obtained certificate (the deploy hook's links) is left alone on the next apply ...
    live = tmp_path / "live"
    live.mkdir()
    for path, name in ((chain, "fullchain"), (key, "privkey")):
        (live / f"{name}.pem").write_text(name)
        path.unlink()
        path.symlink_to(live / f"{name}.pem")
    assert run_tasks(tmp_path, "acme_prepare.yml", entry).returncode == 0
    assert chain.is_symlink() and chain.read_text() == "fullchain"
    # ... and a link whose target is gone is replaced: never a broken path.
    shutil.rmtree(live)
    assert run_tasks(tmp_path, "acme_prepare.yml", entry).returncode == 0
    assert not chain.is_symlink() and b"BEGIN CERTIFICATE" in chain.read_bytes() and not key.is_symlink()


def stand_in_certbot(tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "certbot"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/certbot-args\n{body}\n')
    script.chmod(0o755)
    return bin_dir


def test_certbot_is_asked_for_exactly_the_host_certificate(tmp_path: Path) -> None:
    entry, _ = manifest_entry(tmp_path)
    bin_dir = stand_in_certbot(tmp_path, 'echo "Successfully received certificate."')
    result = run_tasks(tmp_path, "acme.yml", entry, bin_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    args = (tmp_path / "certbot-args").read_text().splitlines()
    acme = entry["layout"]["acme"]
    [cert] = acme["certificates"]
    assert args[:2] == ["certonly", "--non-interactive"]
    for flag, value in (
        ("--email", "hostmaster@acme.example"),
        ("--server", "https://acme-v02.api.letsencrypt.org/directory"),
        ("--webroot-path", acme["webroot"]),
        ("--cert-name", "mx1.acme.example"),
        ("--deploy-hook", acme["deploy_hook"]),
        ("--domains", ",".join(cert["names"])),
    ):
        assert args[args.index(flag) + 1] == value, flag
    assert {"--agree-tos", "--webroot", "--reuse-key", "--keep-until-expiring", "--expand"} <= set(args)


def test_a_failed_challenge_fails_the_apply_with_certbot_reason(tmp_path: Path) -> None:
    entry, _ = manifest_entry(tmp_path)
    # As Debian's certbot says it: the CA's account on stdout, where its log went on stderr.
    failure = (
        "echo 'Saving debug log to /var/log/letsencrypt/letsencrypt.log' >&2\n"
        "echo 'Certbot failed to authenticate some domains (authenticator: webroot).'\n"
        "echo '  Domain: mta-sts.acme.example'\n"
        "echo '  Type:   unauthorized'\n"
        "echo '  Detail: 192.0.2.10: Invalid response from http://mta-sts.acme.example/.well-known/acme-challenge/x: 404'\n"
        "exit 1"
    )
    result = run_tasks(tmp_path, "acme.yml", entry, stand_in_certbot(tmp_path, failure))
    assert result.returncode != 0
    assert "certbot could not obtain mx1.acme.example" in result.stdout
    assert "Type:   unauthorized" in result.stdout and "Invalid response from http://mta-sts.acme.example" in result.stdout
    assert "keep their previous (or temporary self-signed) certificate" in result.stdout


def test_a_failure_without_the_ca_s_account_still_says_certbot_s_last_words(tmp_path: Path) -> None:
    entry, _ = manifest_entry(tmp_path)
    result = run_tasks(tmp_path, "acme.yml", entry, stand_in_certbot(tmp_path, "echo 'An error: connection refused to the ACME server' >&2; exit 1"))
    assert result.returncode != 0
    assert "certbot could not obtain mx1.acme.example (An error: connection refused to the ACME server)" in result.stdout, result.stdout[-2000:]
