"""provision apply on booted Debian 13 and 12 hosts (systemd as PID 1, reached over SSH): the
production path. tests/hosts/nspawn.py boots them; each test has its own throwaway host.

- a cold apply of the all-in-one example converges in one run, a second changes nothing, the
  services run and the system is `running` (not degraded);
- a change below OpenDKIM's configuration or of Postfix's inet_protocols RESTARTS the service
  (a new MainPID), a plain change only reloads it (same MainPID), and plan says which;
- a bad value (message_size_limit = 10MB) is refused at staged validation: the live files and
  the running services stay as they were;
- a host that runs another release than the site declares stops at the release check, before
  any package, file or service is touched.

Needs root, systemd-nspawn, debootstrap, overlayfs and network namespaces (tests/run.sh as root);
PROVISIONER_SKIP_TESTBED=1 skips. No traffic leaves the fleet's namespaces.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from provisioner.apply import TaskEvent, apply, plan, plan_markdown
from provisioner.layout import UNITS
from tests.apply.sites import edited_build, render_example
from tests.hosts.nspawn import BootedHost, fleet

RELEASES = [("debian-13", "13"), ("debian-12", "12")]
RELEASE_OF = {"trixie": "debian-13", "bookworm": "debian-12"}

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")


@pytest.fixture(scope="module", autouse=True)
def _needs_root_and_nspawn() -> None:
    if os.geteuid() != 0 or not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"):
        pytest.fail("booted test hosts need root, systemd-nspawn and debootstrap: run tests/run.sh as root, which installs them")


def edited(build: Path, target: Path, path: str, tail: str = "", replace: tuple[str, str] = ("", "")) -> Path:
    """A copy of the build with host mail's `path` edited (`replace`'s first text by its second,
    `tail` appended), its manifests agreeing."""

    def edit(text: str) -> str:
        assert replace[0] in text
        return (text.replace(*replace) if replace[0] else text) + tail

    return edited_build(build, target, "mail", path, edit)


def postfix_unit(host: BootedHost) -> str:
    return UNITS[RELEASE_OF[host.suite]]["postfix"]


def main_pid(host: BootedHost, unit: str) -> str:
    """The unit's main process; for Postfix its master's PID file (Debian 12's postfix@- starts
    it through postmulti and systemd records no MainPID)."""
    if unit.startswith("postfix"):
        return host.run("cat", "/var/spool/postfix/pid/master.pid").stdout.strip()
    pid = host.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
    assert pid not in ("", "0"), f"{unit} has no main process: {host.run('systemctl', 'status', unit, check=False).stdout}"
    return pid


def assert_serving(host: BootedHost) -> None:
    for unit in (postfix_unit(host), "dovecot", "opendkim"):
        assert host.run("systemctl", "is-active", unit, check=False).stdout.strip() == "active", unit
    assert host.system_state() == "running", host.failed_units()
    for port in ("25", "587", "993"):
        assert host.netns_exec("nc", "-z", "-w", "3", host.address, port).returncode == 0, port


@pytest.mark.parametrize(("release", "major"), RELEASES)
def test_apply_converges_restarts_what_needs_it_and_refuses_bad_values(release: str, major: str, tmp_path: Path, record_property: object) -> None:
    build = render_example(tmp_path / "site", release)
    with fleet({"mail": release}) as booted:
        host = booted.hosts["mail"]
        inventory = booted.inventory(extra={"mailhost_apt_update_cache": False})
        env = booted.ansible_env()
        lines: list[str] = []

        def progress(event: TaskEvent) -> None:
            lines.append(f"{event.host}: {event.task}: {event.status} {event.message}".rstrip())

        started = time.monotonic()
        cold = apply(None, build, inventory, env=env, progress=progress)
        cold_seconds = time.monotonic() - started
        assert cold.ok, "\n".join(lines + list(cold.log))
        assert_serving(host)
        assert host.run("stat", "-c", "%U:%G %a", "/var/spool/postfix/private").stdout.split() == ["postfix:root", "700"]
        assert host.run("test", "-S", "/var/spool/postfix/private/auth", check=False).returncode == 0

        started = time.monotonic()
        again = apply(None, build, inventory, env=env)
        again_seconds = time.monotonic() - started
        assert again.ok and again.stats["mail"]["changed"] == 0, again.stats
        assert_serving(host)

        # Drift the probe must see (a re-apply of a host as built ends after two read-only looks):
        # a service stopped, one disabled, the mail store's mode, a compiled sieve script gone.
        host.run("systemctl", "stop", "opendkim")
        host.run("systemctl", "disable", "dovecot")
        host.run("chmod", "0755", "/var/vmail")
        svbins = host.run("find", "/etc/dovecot", "-name", "*.svbin").stdout.split()
        assert svbins, "the example's Junk sieve script was compiled"
        host.run("rm", "-f", *svbins)
        (planned,) = plan(None, build, inventory, env=env).hosts
        assert set(planned.start) == {"opendkim", "dovecot"}, planned
        drifted = apply(None, build, inventory, env=env)
        assert drifted.ok and drifted.stats["mail"]["changed"] > 0, drifted.stats
        assert host.run("systemctl", "is-enabled", "dovecot", check=False).stdout.strip() == "enabled"
        assert host.run("stat", "-c", "%a", "/var/vmail").stdout.strip() == "750"
        assert all(host.run("test", "-s", path, check=False).returncode == 0 for path in svbins), svbins
        assert_serving(host)
        assert apply(None, build, inventory, env=env).stats["mail"]["changed"] == 0

        # A plain change: Postfix reloads (same master), nothing restarts.
        postfix_pid, opendkim_pid = main_pid(host, "postfix"), main_pid(host, "opendkim")
        plain = edited(build, tmp_path / "plain", "/etc/postfix/main.cf", "# an edit\n")
        (planned,) = plan(None, plain, inventory, env=env).hosts
        assert (planned.reload, planned.restart) == (("postfix",), ()), planned
        lines.clear()
        result = apply(None, plain, inventory, env=env, progress=progress)
        assert result.ok, "\n".join(lines)
        assert (result.hosts[0].reload, result.hosts[0].restart) == (("postfix",), ())
        assert "mail: Reload the changed services: changed" in lines, lines
        assert (main_pid(host, "postfix"), main_pid(host, "opendkim")) == (postfix_pid, opendkim_pid)
        assert_serving(host)

        # inet_protocols: a reload would not rebind the listeners, so Postfix restarts.
        protocols = edited(plain, tmp_path / "protocols", "/etc/postfix/main.cf", replace=("inet_protocols = ipv4, ipv6\n", "inet_protocols = ipv4\n"))
        (planned,) = plan(None, protocols, inventory, env=env).hosts
        assert (planned.reload, planned.restart) == ((), ("postfix",)), planned
        assert "- services to restart: postfix" in plan_markdown(plan(None, protocols, inventory, env=env))
        result = apply(None, protocols, inventory, env=env)
        assert result.ok and result.hosts[0].restart == ("postfix",), result.failures
        assert main_pid(host, "postfix") != postfix_pid
        assert main_pid(host, "opendkim") == opendkim_pid
        assert_serving(host)

        # OpenDKIM's configuration (its socket is in it): a restart, never a reload.
        postfix_pid = main_pid(host, "postfix")
        dkim = edited(protocols, tmp_path / "dkim", "/etc/opendkim.conf", "# the socket's line may change here\n")
        result = apply(None, dkim, inventory, env=env)
        assert result.ok and (result.hosts[0].reload, result.hosts[0].restart) == ((), ("opendkim",)), result.hosts
        assert main_pid(host, "opendkim") != opendkim_pid
        assert main_pid(host, "postfix") == postfix_pid
        assert_serving(host)

        # A value postconf -n accepts but Postfix's daemons die on: refused, nothing goes live.
        live = host.run("cat", "/etc/postfix/main.cf").stdout
        bad = edited(dkim, tmp_path / "bad", "/etc/postfix/main.cf", "message_size_limit = 10MB\n")
        failed = apply(None, bad, inventory, env=env)
        assert failed.exit_code == 1
        (failure,) = failed.failures
        assert (failure.host, failure.task) == ("mail", "Validate the staged Postfix parameter values"), failure
        assert "bad numerical configuration: message_size_limit = 10MB" in failure.message
        assert host.run("cat", "/etc/postfix/main.cf").stdout == live
        assert main_pid(host, "postfix") == postfix_pid
        assert_serving(host)

    assert booted.leftovers() == []
    record_property(f"{release}_cold_apply_seconds", round(cold_seconds, 1))
    record_property(f"{release}_reapply_seconds", round(again_seconds, 1))
    print(f"\n{release}: cold apply {cold_seconds:.1f}s, idempotent re-apply {again_seconds:.1f}s")


@pytest.mark.parametrize(("declared", "runs", "found"), [("debian-12", "debian-13", "Debian 13"), ("debian-13", "debian-12", "Debian 12")])
def test_a_host_of_another_release_is_refused_before_anything_changes(declared: str, runs: str, found: str, tmp_path: Path) -> None:
    build = render_example(tmp_path / "site", declared)
    with fleet({"mail": runs}) as booted:
        host = booted.hosts["mail"]
        inventory = booted.inventory(extra={"mailhost_apt_update_cache": False})
        before = host.run("find", "/etc", "/var/lib/dpkg/status", "-newer", "/etc/hostname", check=False).stdout
        for result in (plan(None, build, inventory, env=booted.ansible_env()), apply(None, build, inventory, env=booted.ansible_env())):
            assert result.exit_code == 1
            (failure,) = [f for h in result.hosts for f in h.failures]
            assert failure.task == "Read the host and check that it runs the release the site declares", failure
            assert f"mail: the site declares {declared} for host mail" in failure.message, failure.message
            assert f"the host runs {found}" in failure.message, failure.message
        assert host.run("dpkg", "-s", "postfix", check=False).returncode != 0  # nothing installed
        assert not (host.root / "etc/postfix/main.cf").exists()
        assert not (host.root / "var/lib/provisioner").exists()
        assert host.run("find", "/etc", "/var/lib/dpkg/status", "-newer", "/etc/hostname", check=False).stdout == before
        assert host.system_state() == "running", host.failed_units()


def test_a_service_that_dies_after_its_start_fails_the_apply_naming_host_and_service(tmp_path: Path) -> None:
    """Dovecot's unit made to start (Type=simple: systemd says started at once) and die 2 s
    later, as a daemon does that rejects what it reads only after forking: the apply must not
    end `failed=0`."""
    build = render_example(tmp_path / "site", "debian-13")
    with fleet({"mail": "debian-13"}) as booted:
        host = booted.hosts["mail"]
        dropin = host.root / "etc/systemd/system/dovecot.service.d"
        dropin.mkdir(parents=True)
        (dropin / "dies.conf").write_text("[Service]\nType=simple\nExecStart=\nExecStart=/bin/sh -c 'sleep 2; exit 1'\n")
        host.run("systemctl", "daemon-reload")
        result = apply(None, build, booted.inventory(extra={"mailhost_apt_update_cache": False}), env=booted.ansible_env())
        assert result.exit_code == 1
        (failure,) = result.failures
        assert failure.task == "Check that the mail services run", failure
        assert failure.message.startswith("mail: not running after the start or reload: dovecot (dovecot.service: "), failure.message
        assert "postfix" not in failure.message and "opendkim" not in failure.message
