"""provision apply on a real (throwaway) Debian host: the all-in-one example, end to end.

Needs root, debootstrap, overlayfs and network namespaces; the first run builds the golden
rootfs from the Debian mirror (about a minute), later runs reuse it. Set
PROVISIONER_SKIP_TESTBED=1 to skip. Nothing here reaches beyond the host's namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from provisioner.apply import TaskEvent, apply, plan, plan_json, plan_markdown
from tests.apply.sites import edited_build, render_example
from tests.apply.testbed import SandboxHost, golden, sandbox_host

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "examples/all-in-one/site.yaml"
FQDN = "mail.smallco.example"
ADDRESS = "192.0.2.10"

# Part of CI (tests/run.sh installs debootstrap; CI runs as root). The only way out is explicit.
pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")


@pytest.fixture(scope="module", autouse=True)
def _needs_root_and_debootstrap() -> None:
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.fail("the test host needs root and debootstrap: run tests/run.sh as root, which installs it")


@pytest.fixture(scope="module")
def golden_rootfs() -> Path:
    return golden(log=print)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The all-in-one example rendered, with its state (DKIM keys, certificate) kept in tmp."""
    return render_example(tmp_path_factory.mktemp("aio"), "debian-12")  # the chroot host is Debian 12


@pytest.fixture
def mail_host(golden_rootfs: Path):
    with sandbox_host(golden_rootfs, "mail", FQDN, ADDRESS) as host:
        yield host


def _inventory(host: SandboxHost, path: Path) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
        all:
          hosts:
            mail:
              ansible_connection: local
              ansible_python_interpreter: {host.python}
              mailhost_apt_update_cache: false
        """)
    )
    return path


def _env(host: SandboxHost) -> dict[str, str]:
    # The wrapper interpreter runs in the chroot: module files must be where both see them.
    return {"ANSIBLE_REMOTE_TMP": str(host.ansible_tmp), "ANSIBLE_LOCAL_TMP": str(host.ansible_tmp / "local")}


PROBE = r"""
import imaplib, json, smtplib, ssl, sys
addr = sys.argv[1]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {}
s = smtplib.SMTP(timeout=30)
out["banner"] = s.connect(addr, 25)[1].decode()
s.ehlo("probe.example")
out["25_starttls"] = s.has_extn("starttls")
s.quit()
s = smtplib.SMTP(addr, 587, timeout=30)
s.ehlo("probe.example")
out["587_auth_before_tls"] = s.has_extn("auth")
out["587_starttls"] = s.has_extn("starttls")
s.starttls(context=ctx); s.ehlo("probe.example")
out["587_auth_after_tls"] = s.has_extn("auth")
s.quit()
i = imaplib.IMAP4_SSL(addr, 993, ssl_context=ctx)
out["993_tls"] = i.sock.version()
out["993_login"] = i.login("alice@smallco.example", "alice-example-pw")[0]
out["993_select"] = i.select("INBOX")[0]
i.logout()
print(json.dumps(out))
"""


def _probe(host: SandboxHost) -> dict[str, object]:
    result = host.in_netns(sys.executable, "-c", PROBE, ADDRESS, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _smtp_banner(host: SandboxHost) -> str:
    code = "import smtplib,sys; s=smtplib.SMTP(timeout=30); print(s.connect(sys.argv[1],25)[1].decode()); s.quit()"
    result = host.in_netns(sys.executable, "-c", code, ADDRESS, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _edited_copy(build: Path, target: Path, main_cf_tail: str) -> Path:
    """The build with text appended to main.cf (and manifests that agree with it: the role reads
    the host's own .hosts/mail.json, and ships the bundle only when a file differs from it)."""
    return edited_build(build, target, "mail", "/etc/postfix/main.cf", lambda text: text + main_cf_tail)


def test_apply_all_in_one(mail_host: SandboxHost, build: Path, tmp_path: Path, record_property: object) -> None:
    inventory = _inventory(mail_host, tmp_path / "hosts.yml")
    env = _env(mail_host)
    lines: list[str] = []

    def progress(event: TaskEvent) -> None:
        lines.append(f"{event.host}: {event.task}: {event.status}")

    # A plan of the fresh host: changes (exit 2), nothing secret in it, nothing applied.
    first_plan = plan(None, build, inventory, env=env)
    assert first_plan.exit_code == 2, plan_markdown(first_plan) + "\n".join(first_plan.log)
    (mail,) = first_plan.hosts
    assert {"/etc/postfix/main.cf", "/etc/dovecot/users"} <= {f.path for f in mail.files}
    rendered = plan_json(first_plan) + plan_markdown(first_plan)
    assert "argon2id" not in rendered and "PRIVATE KEY" not in rendered
    assert not (mail_host.root / "etc/postfix/main.cf").exists()

    started = time.monotonic()
    cold = apply(None, build, inventory, env=env, progress=progress)
    cold_seconds = time.monotonic() - started
    assert cold.ok, "\n".join(lines + list(cold.log))
    assert any(line.startswith("mail: Put the staged configuration live: changed") for line in lines)

    seen = _probe(mail_host)
    assert seen["banner"].startswith(f"{FQDN} ESMTP"), seen
    assert seen["25_starttls"] is True
    assert seen["587_starttls"] is True and seen["587_auth_before_tls"] is False and seen["587_auth_after_tls"] is True
    assert seen["993_tls"] in ("TLSv1.2", "TLSv1.3")
    assert seen["993_login"] == "OK" and seen["993_select"] == "OK"
    # Delivery to Dovecot runs as vmail (5000); Postfix can reach OpenDKIM's socket.
    vmail = mail_host.run("getent", "passwd", "vmail").stdout
    assert vmail.split(":")[2:4] == ["5000", "5000"], vmail
    socket_dir = mail_host.run("stat", "-c", "%U:%G %a", "/var/spool/postfix/opendkim").stdout.split()
    assert socket_dir == ["opendkim:postfix", "2750"], socket_dir
    assert mail_host.run("test", "-S", "/var/spool/postfix/opendkim/opendkim.sock", check=False).returncode == 0
    assert mail_host.run("stat", "-c", "%G", "/var/spool/postfix/opendkim/opendkim.sock").stdout.strip() == "postfix"
    assert mail_host.run("test", "-f", "/etc/postfix/virtual.lmdb", check=False).returncode == 0

    # Again, the way a user or a pipeline runs it (render first, then apply --yes): nothing changes.
    cli = [str(Path(sys.executable).parent / "provision")]
    common = [str(build.parent / "site.yaml"), "-i", str(inventory), "--build", str(build), "--state", str(build.parent / "state")]
    started = time.monotonic()
    again = subprocess.run([*cli, "apply", *common, "--yes", "--format", "json"], capture_output=True, text=True, env={**os.environ, **env}, cwd=REPO)
    again_seconds = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["stats"]["mail"]["changed"] == 0, again.stdout
    after = subprocess.run([*cli, "plan", *common], capture_output=True, text=True, env={**os.environ, **env}, cwd=REPO)
    assert after.returncode == 0, after.stdout + after.stderr
    refused = subprocess.run([*cli, "apply", *common], capture_output=True, text=True, stdin=subprocess.DEVNULL, env={**os.environ, **env}, cwd=REPO)
    assert refused.returncode == 1 and "--yes" in refused.stderr

    # A changed main.cf goes live with a reload of Postfix only: its master keeps running.
    master_pid = (mail_host.root / "var/spool/postfix/pid/master.pid").read_text().split()[0]
    lines.clear()
    edited = apply(None, _edited_copy(build, tmp_path / "edited", "# an edit\n"), inventory, env=env, progress=progress)
    assert edited.ok, edited.failures
    (changed,) = edited.hosts
    assert [f.path for f in changed.files] == ["/etc/postfix/main.cf"] and changed.reload == ("postfix",), changed
    assert "mail: Reload the changed services: changed" in lines and changed.restart == (), lines
    assert (mail_host.root / "var/spool/postfix/pid/master.pid").read_text().split()[0] == master_pid

    # A main.cf that postconf rejects: apply fails at validation, the live files stay.
    live_main_cf = (mail_host.root / "etc/postfix/main.cf").read_bytes()
    broken = _edited_copy(build, tmp_path / "broken", "this line has no equals sign\n")
    failed = apply(None, broken, inventory, env=env)
    assert failed.exit_code == 1
    (failure,) = failed.failures
    assert (failure.host, failure.task) == ("mail", "Validate the staged Postfix main.cf")
    assert "missing '=' after attribute name" in failure.message
    assert (mail_host.root / "etc/postfix/main.cf").read_bytes() == live_main_cf
    assert _smtp_banner(mail_host).startswith(f"{FQDN} ESMTP")

    record_property("cold_apply_seconds", round(cold_seconds, 1))
    record_property("reapply_seconds", round(again_seconds, 1))
    print(f"\ncold apply {cold_seconds:.1f}s, idempotent re-apply {again_seconds:.1f}s")
