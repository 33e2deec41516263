"""`apply --serial 1` on two booted MX hosts (systemd as PID 1, SSH): the first MX fails (its
Dovecot dies after systemd reported it started), so the rollout stops there and the second MX
is not touched at all: no package, no bundle, nothing new under /etc.

PROVISIONER_SKIP_TESTBED=1 skips. No traffic leaves the fleet's namespaces.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.apply import apply
from tests.hosts.nspawn import fleet

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")

SITE = """\
version: 1
name: rollout
hosts:
  h0:
    fqdn: h0.rollout.example
    ipv4: [192.0.2.10]
    services: [mx, submission, imap, pop3]
    mx_priority: 10
    os: debian-13
  h1:
    fqdn: h1.rollout.example
    ipv4: [192.0.2.11]
    services: [backup-mx]
    mx_priority: 20
    os: debian-13
domains:
  rollout.example:
    mailboxes:
      alice:
        password: "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$4UpCNAmRJ40A4SZ+1IFVnw$0VMvaY6Hlpx3bUYZQxqT3lc27nod6JEAjo263ZDUq/A"
    aliases:
      postmaster: alice
"""


def test_a_failing_first_mx_stops_the_rollout_and_leaves_the_second_untouched(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    provision = str(Path(sys.executable).parent / "provision")
    subprocess.run([provision, "render", str(site), "-o", str(tmp_path / "build"), "--state", str(tmp_path / "state")], check=True, capture_output=True)
    with fleet({"h0": "debian-13", "h1": "debian-13"}) as booted:
        first, second = booted.hosts["h0"], booted.hosts["h1"]
        dropin = first.root / "etc/systemd/system/dovecot.service.d"
        dropin.mkdir(parents=True)
        (dropin / "dies.conf").write_text("[Service]\nType=simple\nExecStart=\nExecStart=/bin/sh -c 'sleep 2; exit 1'\n")
        first.run("systemctl", "daemon-reload")
        before = second.run("find", "/etc", "/var/lib/dpkg/status", "-newer", "/etc/hostname", check=False).stdout
        inventory = booted.inventory(extra={"mailhost_apt_update_cache": False})
        result = apply(site, tmp_path / "build", inventory, env=booted.ansible_env(), serial=1)
        assert result.exit_code == 1
        assert [f.host for f in result.failures] == ["h0"], result.failures  # at the running check (or any task before)
        assert set(result.stats) == {"h0"}, result.stats  # h1's play never started
        assert second.run("dpkg", "-s", "postfix", check=False).returncode != 0
        assert not (second.root / "var/lib/provisioner").exists()
        assert second.run("find", "/etc", "/var/lib/dpkg/status", "-newer", "/etc/hostname", check=False).stdout == before
        assert second.system_state() == "running", second.failed_units()
