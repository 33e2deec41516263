"""The issue's test network: several Debian hosts (overlay chroots of one golden rootfs), each in
its own network namespace and UTS namespace, on a bridge in a "switch" namespace, plus an nsd in
a "dns" namespace and an "inet" namespace (the outside world). What each test proves: docs/testing.md.

Ansible reaches the hosts over SSH: sshd runs inside each chroot and namespace, root's
authorized_keys holds a key generated per run, and ProxyCommand is `ip netns exec HOST nc %h %p`.
Everything started here is torn down by Network.close() (kill only the namespaces' processes,
delete the namespaces, unmount the chroots).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.apply.testbed import golden, kill_netns

RECIPE = 1  # bump when the build steps below change
EXTRA_PACKAGES = ("openssh-server",)
PREFIX = 24
PATH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _run(cmd: Sequence[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def golden_ssh(log: object = print) -> Path:
    """tests/apply/testbed.golden plus openssh-server, cached under its own key."""
    return golden(log, EXTRA_PACKAGES, "net-")


# ------------------------------------------------------------------------------------ network

SWITCH_ADDRESS = None  # the switch namespace holds only the bridge
DNS_ADDRESS = "192.0.2.53"


@dataclass
class Node:
    """A namespace on the test network; a Host when it also has a root (an overlay chroot)."""

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
class Host(Node):
    fqdn: str = ""
    root: Path = Path("/nonexistent")
    uts: Path = Path("/nonexistent")

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host: its network, its hostname, its root."""
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", f"--uts={self.uts}", "chroot", str(self.root), *cmd],
            check=check,
            text=True,
            capture_output=True,
            timeout=timeout,
            env=PATH_ENV,
        )


@dataclass
class Network:
    work: Path
    tag: str
    key: Path = Path()
    nodes: dict[str, Node] = field(default_factory=dict)
    _netns: list[str] = field(default_factory=list)
    _mounts: list[Path] = field(default_factory=list)  # unmounted in reverse, recursively
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls) -> Network:
        work = Path(tempfile.mkdtemp(prefix="pnet-", dir="/tmp"))
        net = cls(work, f"pn{os.getpid() % 100000}")
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "provisioner-network-test", "-f", work / "id_ed25519"])
        net.key = work / "id_ed25519"
        net._add_netns("sw")
        _run(["ip", "-n", net.ns("sw"), "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", net.ns("sw"), "link", "set", "br0", "up"])
        return net

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    def _add_netns(self, role: str) -> str:
        netns = self.ns(role)
        _run(["ip", "netns", "add", netns])
        self._netns.append(netns)
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        return netns

    def _plug(self, role: str, address: str) -> None:
        """A veth pair from the namespace's eth0 to a port of the bridge in the switch."""
        sw, netns = self.ns("sw"), self.ns(role)
        port = f"v-{role}"[:15]
        _run(["ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns])
        _run(["ip", "-n", sw, "link", "set", port, "master", "br0", "up"])
        _run(["ip", "-n", netns, "addr", "add", f"{address}/{PREFIX}", "dev", "eth0"])
        _run(["ip", "-n", netns, "link", "set", "eth0", "up"])

    def add_node(self, role: str, address: str) -> Node:
        self._add_netns(role)
        self._plug(role, address)
        node = Node(role, self.ns(role), address)
        self.nodes[role] = node
        return node

    def add_host(self, golden_root: Path, role: str, fqdn: str, address: str, hosts_lines: str = "") -> Host:
        """An overlay chroot of the golden rootfs with its own netns, hostname and sshd."""
        base = self.work / role
        root = base / "root"
        for d in ("upper", "work", "root"):
            (base / d).mkdir(parents=True)
        _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={golden_root},upperdir={base}/upper,workdir={base}/work", root])
        self._mounts.append(root)
        _run(["mount", "-t", "proc", "proc", root / "proc"])
        _run(["mount", "--bind", "/dev", root / "dev"])
        _run(["mount", "--bind", "/dev/pts", root / "dev/pts"])
        short = fqdn.split(".")[0]
        (root / "etc/hostname").write_text(f"{fqdn}\n")
        (root / "etc/mailname").write_text(f"{fqdn}\n")
        (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n{address} {fqdn} {short}\n{hosts_lines}")
        (root / "etc/resolv.conf").write_text(f"nameserver {DNS_ADDRESS}\noptions timeout:2 attempts:2\n")
        # Its own hostname: a persistent UTS namespace bound to a file.
        uts = base / "uts"
        uts.touch()
        _run(["unshare", f"--uts={uts}", "hostname", fqdn])
        self._mounts.append(uts)
        self._add_netns(role)
        self._plug(role, address)
        host = Host(role, self.ns(role), address, fqdn, root, uts)
        self.nodes[role] = host
        self._start_sshd(host)
        return host

    def _start_sshd(self, host: Host) -> None:
        root = host.root
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        (root / "etc/ssh/sshd_config.d/provisioner-test.conf").write_text(
            f"ListenAddress {host.address}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
        )
        (root / "run/sshd").mkdir(mode=0o755, exist_ok=True)
        host.run("ssh-keygen", "-A")
        host.run("/usr/sbin/sshd")
        self.wait_port(host, host.address, 22)

    def wait_port(self, node: Node, address: str, port: int, timeout: float = 20, closed: bool = False) -> None:
        """Until address:port answers from `node` (with `closed`: until it no longer does; a
        stopped Postfix master closes its listeners a moment after `service postfix stop`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (node.netns_exec("nc", "-z", "-w", "1", address, str(port), timeout=5).returncode == 0) != closed:
                return
            time.sleep(0.2)
        raise AssertionError(f"{address}:{port} {'still answers' if closed else 'does not answer'} in {node.role}")

    def start(self, role: str, *cmd: str | Path, log: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A controller process inside a namespace (killed with the namespace at close); `env` is added to ours."""
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(role), *map(str, cmd)], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self._procs.append(proc)
        return proc

    def ssh_inventory(
        self, path: Path, roles: Sequence[str], extra: dict[str, object] | None = None, per_host: dict[str, dict[str, object]] | None = None
    ) -> Path:
        """An Ansible inventory reaching each host over SSH through a netcat in its namespace."""
        import yaml

        hosts: dict[str, dict[str, object]] = {}
        for role in roles:
            host = self.nodes[role]
            hosts[role] = {
                "ansible_host": host.address,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": (
                    f"-o ProxyCommand='ip netns exec {host.netns} nc %h %p' -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
                ),
                "ansible_python_interpreter": "/usr/bin/python3",
                **(extra or {}),
                **(per_host or {}).get(role, {}),
            }
        path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=True))
        return path

    def ansible_env(self) -> dict[str, str]:
        """Connection multiplexing with sockets in this run's directory (none shared with others)."""
        (self.work / "cp").mkdir(exist_ok=True)
        return {
            "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist=120s -o ControlPath={self.work}/cp/%C",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_FORKS": "5",
        }

    def close(self) -> None:
        for netns in reversed(self._netns):
            kill_netns(netns)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for mount in reversed(self._mounts):
            subprocess.run(["umount", "-R", str(mount)], capture_output=True)
            if os.path.ismount(mount):
                subprocess.run(["umount", "-R", "-l", str(mount)], capture_output=True)
        for netns in reversed(self._netns):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        if not any(os.path.ismount(m) for m in self._mounts):
            shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------------------------------- DNS
