"""roles/mailhost/action_plugins/mailhost_probe.py, the role's first task: what it reads of the
build, what it asks the host, how it runs the probe there, and what it refuses.

The probe itself runs here as it runs on a host: python3 -c BOOT, the role's two sources and the
arguments on stdin. The whole task runs through Ansible against booted hosts in
test_booted_apply.py (a host as built ends after it; one of another release is refused by it).
"""

from __future__ import annotations

import grp
import hashlib
import hmac
import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleActionFail

from tests.loaders import role_action_plugin

plugin = role_action_plugin("mailhost_probe")
HOST_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "python3"  # a host's: the standard library only

LAYOUT: dict[str, Any] = {
    "os": "debian-13",
    "os_major": "13",
    "services": ["postfix", "dovecot"],
    "units": {"postfix": "postfix", "dovecot": "dovecot", "rspamd": "rspamd"},
    "reload_on": {"postfix": ["/etc/postfix/"]},
    "restart_on": {},
    "restart_postconf": {},
    "vmail": {"user": "vmail", "uid": 5000, "home": "/var/vmail"},
    "sieve": ["/etc/dovecot/sieve/junk.sieve"],
}
# A well-formed answer of the probe, as a host with nothing to do gives it.
ANSWER: dict[str, Any] = {
    "provisioner": "probe",
    "release": {"id": "debian", "version": "13", "codename": "trixie", "debian_version": "13.2"},
    "init": "systemd",
    "missing_packages": [],
    "pending": [],
    "clean": True,
    "services": {"start": [], "stop": [], "converged": True},
}
DERIVED = {"mailhost_wanted_packages": ["postfix"], "mailhost_prepare_paths": [], "mailhost_retired": {"nginx": "nginx"}}


def manifest(**layout: Any) -> dict[str, Any]:
    return {"files": [], "postfix_tables": [], "layout": {**LAYOUT, **layout}}


def run_probe(args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The probe as the plugin runs it on a host (there through /bin/sh -c over the connection):
    (its report, all it wrote)."""
    return run_probe_with(HOST_PYTHON, args)


def run_probe_with(interpreter: str, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    done = subprocess.run(["sh", "-c", plugin.probe_command(interpreter)], input=plugin.probe_input(args), capture_output=True, timeout=60)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    return plugin.probe_report(done.returncode, stdout, stderr), stdout + stderr


# ------------------------------------------------------------------------------ the build


@pytest.mark.parametrize("content", [None, "", "not json", "[]", '{"manifest": {}}', '{"manifest": {"layout": {"services": []}}}'])
def test_a_build_without_this_host_is_refused_naming_the_file_and_what_to_do(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / ".hosts/mail.json"
    if content is not None:
        path.parent.mkdir()
        path.write_text(content)
    with pytest.raises(AnsibleActionFail, match=rf"^{path} is missing \(no host mail in the build, or it was written by an older provision\): render the site again$"):
        plugin.read_host_file(str(path), "mail")


def test_the_probe_asks_for_this_hosts_units_and_reads_services_only_without_acme() -> None:
    args = plugin.probe_args(manifest(), DERIVED, "00" * 32)
    assert args["units"] == {"postfix": "postfix", "dovecot": "dovecot"}  # not rspamd: this host does not run it
    assert (args["verify"], args["retired"], args["packages"], args["vmail"]) == (True, {"nginx": "nginx"}, ["postfix"], LAYOUT["vmail"])
    assert "vmail" not in plugin.probe_args(manifest(services=["postfix"]), DERIVED, "")
    assert plugin.probe_args(manifest(acme={"certificates": []}), DERIVED, "")["verify"] is False  # certbot's state is not in the probe
    with pytest.raises(AnsibleActionFail, match="the build names no unit for service\\(s\\) opendkim: render the site again"):
        plugin.probe_args(manifest(services=["postfix", "opendkim"]), DERIVED, "")


@pytest.mark.parametrize(
    ("release", "refusal"),
    [
        ({"id": "debian", "version": "13", "codename": "trixie", "debian_version": "13.2"}, None),
        (
            {"id": "debian", "version": "12", "codename": "bookworm", "debian_version": "12.12"},
            "mx1: the site declares debian-13 for host mail, but the host runs Debian 12.12 (bookworm): "
            "set hosts.mail.os to the release it runs (or upgrade it) and render again; nothing was changed",
        ),
        (
            {"id": "ubuntu", "version": "24.04", "codename": "noble", "debian_version": "trixie/sid"},
            "mx1: the site declares debian-13 for host mail, but the host runs ubuntu trixie/sid (noble): "
            "set hosts.mail.os to the release it runs (or upgrade it) and render again; nothing was changed",
        ),
    ],
)
def test_a_host_of_another_release_is_refused_naming_host_declared_and_found(release: dict[str, str], refusal: str | None) -> None:
    assert plugin.release_mismatch("mx1", "mail", LAYOUT, release) == refusal


# ------------------------------------------------------------------------------ on the host


def test_the_probe_runs_on_a_hosts_python_read_only_and_never_says_the_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    secret = tmp_path / "sasl_passwd"
    secret.write_bytes(b"[smtp.provider.example]:587\tacme:a-real-password\n")
    secret.chmod(0o600)
    before = secret.stat()
    entry = {
        "path": str(secret),
        "mode": "0600",
        "owner": pwd.getpwuid(os.getuid()).pw_name,
        "group": grp.getgrgid(os.getgid()).gr_name,
        "hmac_sha256": hmac.new(key, secret.read_bytes(), hashlib.sha256).hexdigest(),
    }
    args = {"files": [entry], "tables": [], "reload_on": {}, "digest_key": key.hex(), "packages": ["dpkg"], "verify": False}
    report, said = run_probe(args)
    assert (report["provisioner"], report["clean"], report["pending"], report["missing_packages"]) == ("probe", True, [], []), report
    assert report["services"] == {"start": [], "stop": [], "converged": False}  # not asked to read them
    assert key.hex() not in said and "a-real-password" not in said
    assert key.hex() not in plugin.probe_command(HOST_PYTHON)  # the key travels on stdin, never on a command line
    by_env, _ = run_probe_with(f"/usr/bin/env {HOST_PYTHON}", args)  # an ansible_python_interpreter with words
    assert by_env == report
    after = secret.stat()
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (before.st_ino, before.st_mode, before.st_mtime_ns)
    secret.write_bytes(b"edited by hand\n")
    drifted, _ = run_probe(args)
    assert (drifted["clean"], drifted["pending"]) == (False, ["files"])


@pytest.mark.parametrize(
    ("rc", "stdout", "stderr", "said"),
    [
        (127, "", "sh: 1: /usr/bin/python3: not found\n", "(exit 127): sh: 1: /usr/bin/python3: not found"),
        (1, "", 'Traceback (most recent call last):\n  File "x", line 1\nKeyError: \'files\'\n', "(exit 1): KeyError: 'files'"),
        (0, "a banner\n", "", "(exit 0): a banner"),
        (0, json.dumps({"provisioner": "inspect"}) + "\n", "", '(exit 0): {"provisioner": "inspect"}'),
        (0, json.dumps({**ANSWER, "init": ["systemd"]}), "", "(exit 0): " + json.dumps({**ANSWER, "init": ["systemd"]})),
        (0, json.dumps({**ANSWER, "services": {"converged": "yes", "start": [], "stop": []}}), "", '"converged": "yes"'),
        (0, json.dumps({**ANSWER, "release": {"id": "debian"}}), "", '"release": {"id": "debian"}'),
        (0, "", "", "(exit 0): exit 0"),
    ],
)
def test_a_probe_that_does_not_answer_fails_the_task_with_what_the_host_said(rc: int, stdout: str, stderr: str, said: str) -> None:
    """Not the probe's answer (a missing python3, a traceback, a banner, another shape): the task
    fails naming the last thing the host said, never a traceback of ours."""
    with pytest.raises(AnsibleActionFail) as failed:
        plugin.probe_report(rc, stdout, stderr)
    assert str(failed.value).startswith("the probe did not answer ") and said in str(failed.value), str(failed.value)
    assert plugin.probe_report(0, "\n" + json.dumps(ANSWER) + "\n", "") == ANSWER
