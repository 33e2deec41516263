"""The issue's test network: Debian hosts that boot systemd as PID 1 (tests/hosts/nspawn.py, a
fleet on one bridge), plus bare namespaces on the same bridge for the processes this machine
plays: nsd ("dns"), the outside world ("inet"), the smarthost's provider and a client. What each
test proves: docs/testing.md.

Ansible reaches the hosts over SSH (the hosts' own sshd under systemd), each host with its own
ControlPath (Fleet.inventory). Everything started here is torn down by Network.close(): the
fleet powers its hosts off and kills, by namespace, what runs in the bare ones.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.hosts.nspawn import BootedHost, Fleet

DNS_ADDRESS = "192.0.2.53"


@dataclass
class Node:
    """A bare namespace on the test network (no root of its own): this machine's processes run there."""

    role: str
    netns: str
    address: str

    def netns_exec(self, *cmd: str | Path, timeout: float = 120, check: bool = False, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a controller command (e.g. this venv's python) inside this namespace's network only."""
        result = subprocess.run(["ip", "netns", "exec", self.netns, *map(str, cmd)], text=True, capture_output=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.role}: {cmd} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result


@dataclass
class Network:
    fleet: Fleet
    nodes: dict[str, Node] = field(default_factory=dict)
    hosts: dict[str, BootedHost] = field(default_factory=dict)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls) -> Network:
        return cls(Fleet.create())

    @property
    def work(self) -> Path:
        return self.fleet.work

    def add_node(self, role: str, address: str) -> Node:
        node = Node(role, self.fleet.add_node(role, address), address)
        self.nodes[role] = node
        return node

    def add_hosts(self, hosts: Mapping[str, tuple[str, str, str]]) -> dict[str, BootedHost]:
        """Booted hosts {role: (release, fqdn, address)}, prepared one by one and booted together;
        their resolver is the test network's nsd."""
        for role, (release, fqdn, address) in hosts.items():
            host = self.fleet.add(role, release, fqdn=fqdn, address=address)
            (host.root / "etc/resolv.conf").write_text(f"nameserver {DNS_ADDRESS}\noptions timeout:2 attempts:2\n")
            self.hosts[role] = host
        self.fleet.boot()
        return self.hosts

    def wait_port(self, node: Node, address: str, port: int, timeout: float = 20, closed: bool = False) -> None:
        """Until address:port answers from `node` (with `closed`: until it no longer does; a
        stopped Postfix master closes its listeners a moment after `systemctl stop` returns)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (node.netns_exec("nc", "-z", "-w", "1", address, str(port), timeout=5).returncode == 0) != closed:
                return
            time.sleep(0.2)
        raise AssertionError(f"{address}:{port} {'still answers' if closed else 'does not answer'} in {node.role}")

    def start(self, role: str, *cmd: str | Path, log: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A controller process inside a namespace (killed with the namespace at close); `env` is added to ours."""
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        try:
            command = ["ip", "netns", "exec", self.nodes[role].netns, *map(str, cmd)]
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        finally:
            if not isinstance(out, int):
                out.close()  # the child has its own copy
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        self.fleet.close()  # powers the hosts off, kills what runs in every namespace, deletes them
        for proc in self._procs:  # ours, by PID: whatever the namespace sweep did not end (seen once in CI)
            for stop in (proc.terminate, proc.kill):
                if proc.poll() is not None:
                    break
                stop()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass

    def leftovers(self) -> list[str]:
        """Namespaces, mounts, cgroups, processes and files close() should have removed."""
        return self.fleet.leftovers() + [f"process {p.pid} {str(p.args)[:160]}" for p in self._procs if p.poll() is None]
