"""Booted test hosts (tests/hosts/nspawn.py): Debian 13 and 12 with systemd as PID 1, reached by
Ansible over SSH, and torn down without a trace.

Needs root, systemd-nspawn (systemd-container), debootstrap, overlayfs and network namespaces;
the first run builds each release's golden rootfs from the Debian mirror (about a minute each),
later runs reuse it. PROVISIONER_SKIP_TESTBED=1 skips. No traffic leaves the fleet's namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hosts.nspawn import Fleet, fleet

ANSIBLE = Path(sys.executable).parent / "ansible"

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")


@pytest.fixture(scope="module", autouse=True)
def _needs_root_and_nspawn() -> None:
    if os.geteuid() != 0 or not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"):
        pytest.fail("booted test hosts need root, systemd-nspawn and debootstrap: run tests/run.sh as root, which installs them")


def ansible(env: dict[str, str], *args: str | Path) -> dict[str, str]:
    """`ansible ... -o`: {inventory host: its one-line result}; fails naming the output."""
    result = subprocess.run([str(ANSIBLE), *map(str, args), "-o"], capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(" | ")
        lines[name] = rest
    return lines


def hostnames(env: dict[str, str], *inventories: Path, forks: int = 5) -> dict[str, str]:
    """Each inventory host's answer to `hostname -f`, over SSH."""
    inv = [a for i in inventories for a in ("-i", i)]
    out = ansible({**env, "ANSIBLE_FORKS": str(forks)}, "all", *inv, "-m", "command", "-a", "hostname -f")
    return {name: rest.rsplit("(stdout) ", 1)[-1].strip() for name, rest in out.items()}


@pytest.mark.parametrize(("release", "major", "codename"), [("debian-13", "13", "trixie"), ("debian-12", "12", "bookworm")])
def test_a_booted_host_runs_systemd_and_is_reached_over_ssh(release: str, major: str, codename: str) -> None:
    with fleet({"solo": release}) as booted:
        host = booted.hosts["solo"]
        assert host.system_state() == "running", host.failed_units()
        # Its own cgroup, not the test runner's: PID 1 sits in nspawn's payload under it.
        assert f"0::/{booted.tag}-solo/payload" in Path(f"/proc/{host.init_pid}/cgroup").read_text()
        machine_id = host.run("cat", "/etc/machine-id").stdout.strip()
        assert len(machine_id) == 32 and machine_id != "0" * 32, machine_id  # made at boot, not from the golden

        out = ansible(booted.ansible_env(), "solo", "-i", booted.inventory(), "-m", "setup", "-a", "gather_subset=!all,min")
        facts = json.loads(out["solo"].split("=> ", 1)[1])["ansible_facts"]
        assert facts["ansible_service_mgr"] == "systemd"
        assert facts["ansible_distribution"] == "Debian"
        assert facts["ansible_distribution_major_version"] == major
        assert facts["ansible_distribution_release"] == codename
        assert facts["ansible_fqdn"] == "solo.booted.test"
        # The SSH session counts as a user session, not as a failure.
        assert host.system_state() == "running", host.failed_units()
    assert host.exit_status == 0, f"nspawn exited {host.exit_status}"  # powered off on SIGTERM, not killed
    assert booted.leftovers() == []


def test_a_fleet_answers_host_by_host_even_with_one_address_in_two_networks() -> None:
    """Three hosts on one bridge, and a fourth (Debian 12) in another fleet with the same
    address as the first: each answers its own name, twice (the second time through the SSH
    masters the first left). With one ControlPath for the same address (Ansible's default %C),
    the same run answers with another host's name: the isolation is what makes it pass."""
    with fleet({"a1": "debian-13", "a2": "debian-13", "a3": "debian-13"}) as one, fleet({"b1": "debian-12"}) as other:
        assert one.hosts["a1"].address == other.hosts["b1"].address
        inventories = (one.inventory(), other.inventory())
        expected = {"a1": "a1.booted.test", "a2": "a2.booted.test", "a3": "a3.booted.test", "b1": "b1.booted.test"}
        for _ in range(2):
            assert hostnames(one.ansible_env(), *inventories) == expected
        hosts = [h for f in (one, other) for h in f.hosts.values()]
        assert all(h.system_state() == "running" for h in hosts)
        machine_ids = {h.run("cat", "/etc/machine-id").stdout for h in hosts}
        host_keys = {h.run("cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout for h in hosts}
        assert len(machine_ids) == len(host_keys) == len(hosts)  # each its own, none from the golden
        # The bridge carries both families between hosts: a2's sshd from a1's namespace.
        a1, a2 = one.hosts["a1"], one.hosts["a2"]
        for address in (a2.address, a2.address6):
            assert a1.netns_exec("nc", "-z", "-w", "2", address, "22").returncode == 0, address

        shared = one.work / "shared-cp"
        shared.mkdir()
        trap = {"ansible_ssh_args": f"-o ControlMaster=auto -o ControlPersist=30s -o ControlPath={shared}/%C"}
        wrong = hostnames(
            one.ansible_env(),
            one.inventory(one.work / "trap-a.yml", ["a1"], extra=trap),
            other.inventory(other.work / "trap-b.yml", ["b1"], extra=trap),
            forks=1,
        )
        for socket in shared.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "x"], capture_output=True, timeout=10)
        assert wrong == {"a1": "a1.booted.test", "b1": "a1.booted.test"}
    assert one.leftovers() == [] and other.leftovers() == []


def test_a_failed_boot_leaves_nothing_behind() -> None:
    """A host whose systemd cannot start (no init in its root) fails boot() naming it; close()
    still removes its namespace, mount, cgroups and processes."""
    booted = Fleet.create()
    try:
        host = booted.add("broken", "debian-13")
        (host.root / "usr/lib/systemd/systemd").unlink()
        (host.root / "sbin/init").unlink()
        with pytest.raises(AssertionError, match="broken"):
            booted.boot(timeout=20)
    finally:
        booted.close()
    assert booted.leftovers() == []


def test_leftovers_count_a_running_process_and_not_a_zombie() -> None:
    """A process we started and that still runs is a leftover; one that has ended and only
    waits to be collected (a zombie: some CI machines' PID 1 collects orphans late) is not."""
    from tests.hosts.nspawn import _start_time, _still_running

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        start = _start_time(sleeper.pid)
        assert _still_running(sleeper.pid, start)
        assert not _still_running(sleeper.pid, str(int(start) + 1))  # the PID reused by another process
        sleeper.kill()
        for _ in range(50):  # not yet collected: a zombie with the same start time
            if Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.02)
        assert _start_time(sleeper.pid) == start
        assert not _still_running(sleeper.pid, start)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not _still_running(sleeper.pid, start)
