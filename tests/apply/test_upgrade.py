"""Upgrading a host from Debian 12 to 13, end to end (docs/apply.md, "Upgrading a host from
Debian 12 to 13"): a booted bookworm host (systemd as PID 1, tests/hosts/nspawn.py) gets the
all-in-one example with `os: debian-12`; a message goes into alice's mailbox; the host is
dist-upgraded to trixie with the real apt-get inside it (from an offline kit the controller
built, tests/hosts/upgrade_kit.py) and rebooted; the site says `os: debian-13`; `provision
plan` shows the Dovecot changes (exit 2), `provision apply` converges, and IMAPS reads the old
message and a new one.

Needs root, systemd-nspawn, debootstrap; the first run builds the bookworm golden and the kit
from the Debian mirror (minutes), later runs reuse them. PROVISIONER_SKIP_TESTBED=1 skips.
No traffic leaves the host's namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from provisioner.apply import plan, plan_markdown
from tests.hosts.nspawn import BootedHost, Fleet
from tests.hosts.upgrade_kit import dist_upgrade, upgrade_kit

REPO = Path(__file__).resolve().parents[2]
PROVISION = Path(sys.executable).parent / "provision"
SITE = REPO / "examples/all-in-one/site.yaml"
FQDN = "mail.smallco.example"
USER, PASSWORD = "alice@smallco.example", "alice-example-pw"  # the example's documented password

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")


@pytest.fixture(scope="module", autouse=True)
def _needs_root_and_nspawn() -> None:
    if os.geteuid() != 0 or not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"):
        pytest.fail("booted test hosts need root, systemd-nspawn and debootstrap: run tests/run.sh as root, which installs them")


# Runs in the host's network namespace with the controller's Python: a mail user's client.
MAIL = r"""
import imaplib, smtplib, ssl, sys, time
from email.message import EmailMessage
action, address, user, password, subject = sys.argv[1:6]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE  # self-signed
if action == "send":  # submission: STARTTLS, then AUTH
    msg = EmailMessage()
    msg["From"] = msg["To"] = user
    msg["Subject"] = subject
    msg.set_content(f"body of {subject}\n")
    with smtplib.SMTP(address, 587, timeout=30) as s:
        s.starttls(context=ctx)
        s.login(user, password)
        s.send_message(msg)
    print("sent")
else:  # read: IMAPS login, the message with this subject, polled while delivery runs
    deadline = time.monotonic() + float(sys.argv[6])
    while True:
        with imaplib.IMAP4_SSL(address, 993, ssl_context=ctx) as i:
            i.login(user, password)
            i.select("INBOX", readonly=True)
            found = i.search(None, "SUBJECT", f'"{subject}"')[1][0].split()
            if found:
                body = i.fetch(found[0], "(BODY.PEEK[TEXT])")[1][0][1].decode()
                print(body.strip())
                break
        if time.monotonic() > deadline:
            print("not found"); sys.exit(3)
        time.sleep(1)
"""


def mail(host: BootedHost, action: str, subject: str, wait: float = 60) -> str:
    result = host.netns_exec(sys.executable, "-c", MAIL, action, host.address, USER, PASSWORD, subject, str(wait), timeout=wait + 60)
    if result.returncode != 0:
        queue = host.run("postqueue", "-j", check=False).stdout
        log = host.run(
            "sh", "-c", "journalctl --no-pager -n 400 | grep -E 'postfix|dovecot|opendkim' | tail -n 30; tail -n 20 /var/log/dovecot-lda.log", check=False
        ).stdout
        raise AssertionError(f"{action} {subject!r}: {result.stdout}{result.stderr}\nqueue:\n{queue}\njournal:\n{log}")
    return result.stdout.strip()


def provision(env: dict[str, str], *args: str | Path, expect: int) -> str:
    result = subprocess.run([str(PROVISION), *map(str, args)], capture_output=True, text=True, env=env, timeout=900, cwd=REPO)
    assert result.returncode == expect, f"provision {args[0]} exited {result.returncode}, not {expect}:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return result.stdout


def site_for(work: Path, release: str) -> Path:
    """The all-in-one example with an explicit os: for its one host."""
    text = SITE.read_text()
    assert text.count("    mx_priority: 10\n") == 1
    site = work / "site.yaml"
    site.write_text(text.replace("    mx_priority: 10\n", f"    mx_priority: 10\n    os: {release}\n"))
    return site


def test_a_debian_12_host_upgraded_to_13_keeps_its_mail(tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    kit = upgrade_kit()
    timings: dict[str, float] = {}
    booted = Fleet.create()
    try:
        host = booted.add("mail", "debian-12", fqdn=FQDN, address="192.0.2.10", address6="2001:db8::10")
        booted.boot()
        inventory = booted.inventory(extra={"mailhost_apt_update_cache": False})  # no mirror: apt's cache
        env = booted.ansible_env()
        common: list[str | Path] = ["-i", inventory, "--build", tmp_path / "build", "--state", tmp_path / "state"]

        started = time.monotonic()
        site = site_for(tmp_path, "debian-12")
        provision(env, "apply", site, *common, "--yes", expect=0)
        timings["apply_12_s"] = time.monotonic() - started
        assert host.run("dovecot", "--version").stdout.startswith("2.3")
        mail(host, "send", "stored before the upgrade")
        assert mail(host, "read", "stored before the upgrade") == "body of stored before the upgrade"

        # The operator's dist-upgrade, then a reboot. Dovecot 2.4 refuses the 2.3 configuration
        # the host still has, and dovecot-core's postinst fails on the restart (dpkg stops
        # half-way) unless Dovecot is stopped and disabled first: invoke-rc.d then skips it.
        # The apply for debian-13 enables and starts it again.
        host.run("systemctl", "disable", "--now", "dovecot")
        main_cf = host.run("cat", "/etc/postfix/main.cf").stdout
        started = time.monotonic()
        output = dist_upgrade(host, kit).stdout
        timings["dist_upgrade_s"] = time.monotonic() - started
        assert "dovecot-core" in output, output[-2000:]
        started = time.monotonic()
        state = booted.reboot(host, allow_degraded=True)
        timings["reboot_s"] = time.monotonic() - started
        assert host.run("cat", "/etc/debian_version").stdout.startswith("13"), host.run("cat", "/etc/debian_version").stdout
        assert host.run("dovecot", "--version").stdout.startswith("2.4")
        dovecot_before = host.run("systemctl", "is-active", "dovecot", check=False).stdout.strip()
        assert (state, dovecot_before) == ("running", "inactive"), host.failed_units()  # disabled, so nothing failed

        # The site follows the host: plan shows what changes (exit 2), apply converges.
        site = site_for(tmp_path, "debian-13")
        started = time.monotonic()
        planned = json.loads(provision(env, "plan", site, *common, "--format", "json", expect=2))
        (mail_plan,) = planned["hosts"]
        files = {f["path"] for f in mail_plan["files"]}
        assert "/etc/dovecot/dovecot.conf" in files and "/etc/dovecot/users" in files, mail_plan
        # Postfix renders the same for both releases; main.cf is listed exactly when the
        # package's postinst edited it (trixie's adds cyrus_sasl_config_path on upgrade).
        edited = host.run("cat", "/etc/postfix/main.cf").stdout != main_cf
        assert ("/etc/postfix/main.cf" in files) == edited, (edited, mail_plan)
        provision(env, "apply", site, *common, "--yes", expect=0)
        timings["plan_apply_13_s"] = time.monotonic() - started
        assert host.run("systemctl", "is-active", "postfix", "dovecot", "opendkim").stdout.split() == ["active"] * 3
        assert host.system_state() == "running", host.failed_units()

        # The mail stored under Debian 12 reads back under Dovecot 2.4; new mail arrives.
        assert mail(host, "read", "stored before the upgrade") == "body of stored before the upgrade"
        mail(host, "send", "delivered after the upgrade")
        assert mail(host, "read", "delivered after the upgrade") == "body of delivered after the upgrade"
        # Converged: a plan of the same build finds nothing to change.
        again = plan(None, tmp_path / "build", inventory, env=env)
        assert again.exit_code == 0, plan_markdown(again) + "\n".join(again.log[-30:])

        record_property("kit", kit.info())
        record_property("timings", {k: round(v, 1) for k, v in timings.items()})
        record_property("state_after_reboot", [state, dovecot_before])
        print(json.dumps({"kit": kit.info(), "timings": timings, "after_reboot": [state, dovecot_before], "main_cf_edited_by_upgrade": edited}))
    finally:
        booted.close()
    assert booted.leftovers() == []
