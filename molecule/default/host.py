"""Bring the molecule scenario's test hosts up or down: `host.py up|down EPHEMERAL_DIR`.

The hosts are booted Debian hosts with systemd as PID 1 (tests/hosts/nspawn.py), one per
release: `mail13` (Debian 13) and `mail12` (Debian 12) on one bridge, 192.0.2.10 and .11. That
module offers them as a context manager; `up` boots them and leaves the process without running
its exit (os._exit), so the hosts outlive this process; what `down` needs to tear them down goes
to EPHEMERAL_DIR/host/state.json.

For the inventory (molecule.yml), EPHEMERAL_DIR/host/ holds stable paths:
  proxy-ADDRESS    ProxyCommand: netcat in that host's network namespace (ssh's %n is the
                   address Ansible connects to; the hosts of one fleet have distinct addresses)
  cp-ADDRESS       its SSH ControlPath
  instances.json   what create.yml gives molecule (name, address, user, key)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.hosts.nspawn import STOP_GRACE, BootedHost, Fleet, _start_time  # noqa: E402

HOSTS = {"mail13": "debian-13", "mail12": "debian-12"}


def up(ephemeral: Path) -> None:
    home = ephemeral / "host"
    down(ephemeral)  # hosts left over from an interrupted run
    home.mkdir(parents=True)
    booted = Fleet.create()
    try:
        booted.add_all(HOSTS)
        booted.boot()
        hosts = {}
        for name, host in booted.hosts.items():
            assert host.proc is not None
            hosts[name] = {
                "fqdn": host.fqdn, "suite": host.suite, "address": host.address, "address6": host.address6, "netns": host.netns,
                "work": str(host.work), "cgroups": [str(c) for c in host.cgroups], "port": host.port,
                "nspawn": [host.proc.pid, _start_time(host.proc.pid)],
            }  # fmt: skip
            proxy = home / f"proxy-{host.address}"
            proxy.write_text(f'#!/bin/sh\nexec ip netns exec {host.netns} nc "$1" "$2"\n')
            proxy.chmod(0o755)
        state = {"work": str(booted.work), "tag": booted.tag, "key": str(booted.key), "netns": list(booted._netns), "hosts": hosts}
        (home / "state.json").write_text(json.dumps(state, indent=1) + "\n")
        instances = [
            {"instance": name, "address": host.address, "user": "root", "port": 22, "identity_file": str(booted.key), "release": HOSTS[name]}
            for name, host in booted.hosts.items()
        ]
        (home / "instances.json").write_text(json.dumps(instances) + "\n")
        print(json.dumps(instances))
    except BaseException:
        booted.close()
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip the fleet's teardown: the hosts stay up until `down`


def down(ephemeral: Path) -> None:
    """Power each host off (SIGTERM to its nspawn, by PID and start time), then the fleet's own
    teardown from the recorded state; nothing recorded, nothing to do."""
    home = ephemeral / "host"
    state_file = home / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        nspawn = [(pid, start) for host in state["hosts"].values() for pid, start in [host["nspawn"]] if _start_time(pid) == start]
        for pid, _ in nspawn:
            os.kill(pid, signal.SIGTERM)  # nspawn asks the container's systemd to power off
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and any(_start_time(pid) == start for pid, start in nspawn):
            time.sleep(0.2)
        for pid, start in nspawn:
            if _start_time(pid) == start:
                os.kill(pid, signal.SIGKILL)
        booted = Fleet(Path(state["work"]), state["tag"], Path(state["key"]), _netns=list(state["netns"]))
        for name, host in state["hosts"].items():
            booted.hosts[name] = BootedHost(
                name, host["fqdn"], host["suite"], host["address"], host["address6"], host["netns"], Path(host["work"]),
                tuple(Path(c) for c in host["cgroups"]), port=host["port"],
            )  # fmt: skip
        for socket in home.glob("cp-*"):  # molecule's SSH masters
            subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "x"], capture_output=True, timeout=10)
        booted.close()  # the rest of each host (namespace, cgroups, mounts), the switch, the work directory
        left = booted.leftovers()
        if left:
            raise SystemExit(f"left behind: {', '.join(left)}")
    shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        raise SystemExit("usage: host.py up|down EPHEMERAL_DIR")
    ephemeral = Path(argv[1]).absolute()
    up(ephemeral) if argv[0] == "up" else down(ephemeral)


if __name__ == "__main__":
    main(sys.argv[1:])
