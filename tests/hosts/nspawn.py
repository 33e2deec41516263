"""Test hosts that boot systemd as PID 1: Debian 13 (trixie) and 12 (bookworm) under systemd-nspawn.

Made for a machine whose own PID 1 is not systemd and whose cgroups are hybrid (v1
controllers, cgroup2 at /sys/fs/cgroup/unified); docs/testing.md ("Booted hosts") says what
each piece is for. A Fleet is one switch namespace holding a bridge and any
number of hosts on it; each host is

- an overlay of a golden rootfs (tests/apply/testbed.golden_booted: systemd-sysv, dbus, sshd,
  the role's packages in apt's cache) with its own hostname, /etc/hosts, an EMPTY machine-id
  (systemd makes one at boot), fresh SSH host keys and the run's key in root's authorized_keys;
- its own network namespace (a veth into the bridge, 192.0.2.0/24 and 2001:db8::/64, the
  documentation ranges), named bh<pid>-<n>-<host> so it never meets tests/apply's tb-*
  namespaces nor another fleet's (add_node() puts a bare namespace on the same bridge);
- its own cgroup in both hierarchies of this machine (cgroup2 at /sys/fs/cgroup/unified and
  the v1 name=systemd one), entered by the launching shell BEFORE nspawn starts: nspawn makes
  payload/ and supervisor/ under the cgroup it runs in, and two containers must not share them;
- `systemd-nspawn --boot` with SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 (a pure cgroup2 inside, which
  systemd 257 requires), ready when `systemctl is-system-running --wait` (through nsenter)
  says running.

Ansible reaches a host over SSH through `ip netns exec NS nc %h %p`, each host with its own
ControlPath: hosts with one address in different namespaces would otherwise share an SSH master
and a play would silently run on the wrong host. Fleet.close() stops only what it started, by
PID: SIGTERM to nspawn (the container powers off), SIGKILL after 15 s, then whatever is left in
the host's namespace or cgroup, umount -R, ip netns del, rmdir of the cgroups.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.apply.testbed import SUITES, golden_booted, kill_netns

CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
PATH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
STOP_GRACE = 15.0  # seconds between SIGTERM to nspawn and SIGKILL
MAX_HOSTS = 200  # addresses .10 .. .209 of 192.0.2.0/24
_fleets = itertools.count()


UNANSWERED_RESOLVER = "192.0.2.53"  # see _write_identity

def _run(cmd: Sequence[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def suite_of(release: str) -> str:
    """The Debian suite of a site's hosts.<name>.os (debian-13 -> trixie); a suite passes through."""
    return SUITES.get(release, release)


def _cgroup_pids(cgroup: Path) -> list[int]:
    """Every process in a cgroup and its children."""
    pids: list[int] = []
    for procs in sorted(cgroup.rglob("cgroup.procs")) if cgroup.is_dir() else []:
        try:
            pids += [int(p) for p in procs.read_text().split()]
        except OSError:
            continue
    return pids


def _nspid(pid: int) -> list[str]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return line.split()[1:]
    except OSError:
        pass
    return []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: with the PID, names one process even if the PID is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _still_running(pid: int, start: str) -> bool:
    """The process that had this start time still runs. A zombie does not: it has ended and
    waits for its parent to collect it. A host's PID 1 orphaned by a killed nspawn is collected
    by this machine's own PID 1, which some CI machines do late or never; nothing of ours runs."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return bool(start) and len(fields) > 19 and fields[19] == start and fields[0] not in ("Z", "X")


@dataclass
class BootedHost:
    """One booted Debian host. run() executes inside it (all its namespaces), as systemd's
    children see the system; netns_exec() runs a controller command in its network only."""

    name: str  # inventory name
    fqdn: str
    suite: str
    address: str
    address6: str
    netns: str
    work: Path  # upper/, work/, root/, console.log
    cgroups: tuple[Path, ...]
    proc: subprocess.Popen[bytes] | None = None  # systemd-nspawn
    init_pid: int = 0  # the container's PID 1 (systemd), as this machine numbers it
    boot_seconds: float = 0.0
    port: str = ""  # its veth's name in the switch namespace
    exit_status: int | None = None  # nspawn's, after stop(): 0 when the container powered off by itself

    @property
    def root(self) -> Path:
        return self.work / "root"

    def run(self, *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host: its mounts, hostname, IPC, network, PIDs and cgroups."""
        if not self.init_pid:
            raise RuntimeError(f"{self.name} is not booted")
        return subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p", "-C", *cmd],
            check=check,
            text=True,
            capture_output=True,
            timeout=timeout,
            input=input,
            env=PATH_ENV,
        )

    def netns_exec(self, *cmd: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns, *map(str, cmd)], text=True, capture_output=True, timeout=timeout)

    def system_state(self) -> str:
        """systemctl is-system-running: running, degraded, starting, ..."""
        return self.run("systemctl", "is-system-running", check=False).stdout.strip()

    def failed_units(self) -> str:
        return self.run("systemctl", "--failed", "--no-legend", "--plain", check=False).stdout.strip()

    def pids(self) -> list[int]:
        """nspawn's and the container's processes (the host's own cgroup, recursively)."""
        return sorted(set(_cgroup_pids(self.cgroups[0])))

    def memory_pss_kib(self) -> int:
        """Proportional set size of every process of the host (shared pages split among them)."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return total


@dataclass
class Fleet:
    """Booted hosts on one bridge. add() prepares a host, boot() starts every prepared host in
    parallel and waits until each runs, inventory() writes the Ansible inventory, close() tears
    everything down (also after a failure: use the fleet() context manager)."""

    work: Path
    tag: str
    key: Path = Path()
    hosts: dict[str, BootedHost] = field(default_factory=dict)
    _netns: list[str] = field(default_factory=list)
    _goldens: dict[str, Path] = field(default_factory=dict)
    _started: list[tuple[int, str]] = field(default_factory=list)  # (pid, start time) of nspawn and each PID 1
    _closed: bool = False

    @classmethod
    def create(cls) -> Fleet:
        work = Path(tempfile.mkdtemp(prefix="bfleet-", dir="/tmp"))
        fleet = cls(work, f"bh{os.getpid() % 100000}-{next(_fleets)}")
        try:
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "provisioner-booted-test", "-f", work / "id_ed25519"])
            fleet.key = work / "id_ed25519"
            (work / "cp").mkdir(mode=0o700)
            sw = fleet._add_netns("sw")
            _run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", sw, "link", "set", "br0", "up"])
        except BaseException:
            fleet.close()
            raise
        return fleet

    def _add_netns(self, role: str) -> str:
        netns = f"{self.tag}-{role}"
        _run(["ip", "netns", "add", netns])
        self._netns.append(netns)
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        return netns

    def golden(self, suite: str) -> Path:
        if suite not in self._goldens:
            self._goldens[suite] = golden_booted(suite, log=print)
        return self._goldens[suite]

    def add(self, name: str, release: str = "debian-13", fqdn: str = "", address: str = "", address6: str = "") -> BootedHost:
        """Prepare a host (root, keys, network); boot() starts it. Addresses default to
        192.0.2.(10+i) and 2001:db8::(10+i) for the i-th host of the fleet."""
        host = self._reserve(name, release, fqdn, address, address6)
        self._prepare(host)
        return host

    def add_all(self, hosts: Mapping[str, str]) -> list[BootedHost]:
        """add() for {name: release}, prepared in parallel (SSH host keys take most of it)."""
        reserved = [self._reserve(name, release) for name, release in hosts.items()]
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(reserved)))) as pool:
            for future in [pool.submit(self._prepare, h) for h in reserved]:
                future.result()
        return reserved

    def _reserve(self, name: str, release: str, fqdn: str = "", address: str = "", address6: str = "") -> BootedHost:
        if name in self.hosts or not name.isascii() or not name.isalnum():
            raise ValueError(f"host name {name!r}: ASCII letters and digits, once per fleet")
        index = len(self.hosts)
        if index >= MAX_HOSTS:
            raise ValueError(f"at most {MAX_HOSTS} hosts per fleet")
        suite = suite_of(release)
        self.golden(suite)  # built (or found) before any host is prepared
        cgroups = tuple(base / f"{self.tag}-{name}" for base in CGROUP_ROOTS)
        host = BootedHost(
            name,
            fqdn or f"{name}.booted.test",
            suite,
            address or f"192.0.2.{10 + index}",
            address6 or f"2001:db8::{10 + index:x}",
            f"{self.tag}-{name}",
            self.work / name,
            cgroups,
            port=f"v{index}",
        )
        self.hosts[name] = host
        return host

    def _prepare(self, host: BootedHost) -> None:
        for d in ("upper", "work", "root"):
            (host.work / d).mkdir(parents=True)
        lower = self._goldens[host.suite]
        _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={host.work}/upper,workdir={host.work}/work", host.root])
        self._write_identity(host)
        self._plug(host)
        for cgroup in host.cgroups:
            cgroup.mkdir()

    def _write_identity(self, host: BootedHost) -> None:
        root, short = host.root, host.fqdn.split(".")[0]
        (root / "etc/hostname").write_text(f"{host.fqdn}\n")
        (root / "etc/mailname").write_text(f"{host.fqdn}\n")
        (root / "etc/hosts").write_text(
            f"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n{host.address} {host.fqdn} {short}\n{host.address6} {host.fqdn} {short}\n"
        )
        # Every real host has a resolver; rspamd refuses to start (and configtest fails) without
        # one. This address is on the test bridge's documentation range and nothing answers it:
        # a test that needs DNS points the host at its own nsd (tests/network/net.py).
        (root / "etc/resolv.conf").write_text(f"nameserver {UNANSWERED_RESOLVER}\noptions timeout:1 attempts:1\n")
        (root / "etc/machine-id").write_text("")  # systemd makes this host's own at boot
        # ...unless D-Bus has one: systemd copies /var/lib/dbus/machine-id (written by dbus's
        # postinst into the golden) before it makes one, and every host had the same. Debian
        # links it to /etc/machine-id.
        dbus_id = root / "var/lib/dbus/machine-id"
        dbus_id.unlink(missing_ok=True)
        dbus_id.symlink_to("/etc/machine-id")
        for old in (root / "etc/ssh").glob("ssh_host_*"):
            old.unlink()
        _run(["ssh-keygen", "-A", "-f", root])  # fresh host keys into ROOT/etc/ssh
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        (root / "etc/ssh/sshd_config.d/provisioner-test.conf").write_text("PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n")

    def _plug(self, host: BootedHost) -> None:
        """The host's namespace, a veth from its eth0 to a port of the bridge."""
        netns = self._add_netns(host.name)
        self._link(netns, host.port, host.address, host.address6)  # ports in the switch: v0, v1, ...

    def _link(self, netns: str, port: str, address: str, address6: str = "") -> None:
        sw = f"{self.tag}-sw"
        _run(["ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns])
        _run(["ip", "-n", sw, "link", "set", port, "master", "br0", "up"])
        _run(["ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0"])
        if address6:
            _run(["ip", "-n", netns, "addr", "add", f"{address6}/64", "dev", "eth0", "nodad"])
        _run(["ip", "-n", netns, "link", "set", "eth0", "up"])

    def add_node(self, name: str, address: str, address6: str = "") -> str:
        """A bare network namespace on the bridge, without a root or systemd, for a process of
        this machine (a DNS server, a test peer started with `ip netns exec`): its name.
        close() kills what runs there and deletes it; leftovers() reports it like a host's."""
        if name in self.hosts or not name.isascii() or not name.isalnum() or f"{self.tag}-{name}" in self._netns:
            raise ValueError(f"node name {name!r}: ASCII letters and digits, once per fleet")
        netns = self._add_netns(name)
        self._link(netns, f"n-{name}"[:15], address, address6)  # IFNAMSIZ is 16
        return netns

    def boot(self, timeout: float = 120) -> None:
        """Start every prepared host at once, then wait until each says `running`; a degraded
        or stuck host raises naming it and its failed units (the fleet stays up for close())."""
        waiting = [h for h in self.hosts.values() if h.proc is None]
        started = time.monotonic()
        for host in waiting:
            self._start(host)
        with ThreadPoolExecutor(max_workers=max(1, len(waiting))) as pool:
            errors = [e for e in pool.map(lambda h: self._wait_running(h, started, timeout), waiting) if e]
        if errors:
            raise AssertionError("\n".join(errors))

    def _start(self, host: BootedHost) -> None:
        # The shell moves itself into the host's cgroups, then becomes nspawn: nspawn (and only
        # it) runs there, and never in another host's cgroup or the test runner's.
        enter = " && ".join(f'echo $$ > "{c}/cgroup.procs"' for c in host.cgroups)
        console = open(host.work / "console.log", "wb")  # noqa: SIM115
        with console:
            host.proc = subprocess.Popen(
                [
                    "sh", "-c", f'{enter} && exec "$@"', "sh",
                    "systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit", "--console=passive", "--link-journal=no",
                    "--resolv-conf=off", "--timezone=off", f"--network-namespace-path=/run/netns/{host.netns}",
                    f"--machine={host.name}", "-D", str(host.root),
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env={**PATH_ENV, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
                start_new_session=True,
            )
        self._started.append((host.proc.pid, _start_time(host.proc.pid)))

    def _find_init(self, host: BootedHost) -> int:
        """The container's PID 1: in the host's cgroup, PID 1 of a namespace of its own."""
        for pid in host.pids():
            nspid = _nspid(pid)
            if len(nspid) > 1 and nspid[-1] == "1":
                return pid
        return 0

    def _wait_running(self, host: BootedHost, started: float, timeout: float) -> str:
        assert host.proc is not None
        deadline = started + timeout
        state = "not started"
        while time.monotonic() < deadline:
            if host.proc.poll() is not None:
                return f"{host.name}: systemd-nspawn exited {host.proc.returncode}: {self.console(host)[-2000:]}"
            if not host.init_pid and (init := self._find_init(host)):
                host.init_pid = init
                self._started.append((init, _start_time(init)))
            # Until nspawn's child has exec'ed systemd, systemctl there says "offline".
            if host.init_pid and _comm(host.init_pid) == "systemd":
                left = max(1.0, deadline - time.monotonic())
                try:
                    result = host.run("systemctl", "is-system-running", "--wait", check=False, timeout=left)
                    state = result.stdout.strip()
                except subprocess.TimeoutExpired:
                    state = "starting (timed out)"
                if state == "running":
                    host.boot_seconds = time.monotonic() - started
                    return ""
                if state in ("degraded", "maintenance", "stopping"):
                    break
                # Before systemd opens its bus, systemctl cannot connect ("offline"): try again.
            time.sleep(0.1)
        failed = host.failed_units() if host.init_pid else ""
        return f"{host.name} ({host.suite}): system {state!r} after {time.monotonic() - started:.1f}s; failed units: {failed or 'none'}"

    def reboot(self, host: BootedHost, timeout: float = 120, allow_degraded: bool = False) -> str:
        """Power the host off (SIGTERM to nspawn, as stop() does) and boot it again on the same
        root, network and cgroups; returns the system state once it settled. A degraded host
        raises naming its failed units unless allow_degraded (e.g. a service whose old
        configuration the new release refuses, until the next apply)."""
        assert host.proc is not None, f"{host.name} is not booted"
        host.proc.send_signal(signal.SIGTERM)
        try:
            host.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            host.proc.kill()
            host.proc.wait()
        host.exit_status = host.proc.returncode
        if self.control_path(host).exists():  # the old sshd is gone: a new master next time
            subprocess.run(["ssh", "-o", f"ControlPath={self.control_path(host)}", "-O", "exit", host.address], capture_output=True, timeout=10)
        host.proc, host.init_pid = None, 0
        started = time.monotonic()
        self._start(host)
        error = self._wait_running(host, started, timeout)
        state = host.system_state() if host.init_pid else "not started"
        if error and not (allow_degraded and state == "degraded"):
            raise AssertionError(error)
        return state

    def console(self, host: BootedHost) -> str:
        try:
            return (host.work / "console.log").read_text(errors="replace")
        except OSError:
            return ""

    def inventory(self, path: Path | None = None, names: Sequence[str] = (), extra: Mapping[str, object] | None = None) -> Path:
        """An Ansible inventory of the hosts (all, or `names`): SSH to ansible_host through a
        netcat in the host's namespace, each host with its own SSH master socket."""
        path = path or self.work / "inventory.yml"
        hosts: dict[str, dict[str, object]] = {}
        for name in names or list(self.hosts):
            host = self.hosts[name]
            hosts[name] = {
                "ansible_host": host.address,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": (
                    f"-o ProxyCommand='ip netns exec {host.netns} nc %h %p' -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
                ),
                # One master per host, in this fleet's directory: Ansible's default ControlPath
                # (%C: addresses, port, user) is shared by hosts that have the same address in
                # different namespaces, and a play then runs on the wrong host.
                "ansible_ssh_args": f"-C -o ControlMaster=auto -o ControlPersist=60s -o ControlPath={self.control_path(host)}",
                "ansible_python_interpreter": "/usr/bin/python3",
                **(extra or {}),
            }
        path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=True))
        return path

    def control_path(self, host: BootedHost) -> Path:
        return self.work / "cp" / host.name

    def ansible_env(self) -> dict[str, str]:
        """Environment for ansible/ansible-playbook/provision against this fleet: forks at least
        the number of hosts."""
        return {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_FORKS": str(max(5, len(self.hosts)))}

    # ---------------------------------------------------------------------------- teardown

    def stop(self, host: BootedHost) -> None:
        """Power the host off and remove everything it had; only its own processes, by PID."""
        if host.proc is not None and host.proc.poll() is None:
            host.proc.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
            try:
                host.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                host.proc.kill()
                host.proc.wait()
        if host.proc is not None:
            host.exit_status = host.proc.returncode
        if self.control_path(host).exists():
            subprocess.run(["ssh", "-o", f"ControlPath={self.control_path(host)}", "-O", "exit", host.address], capture_output=True, timeout=10)
        kill_netns(host.netns)
        for sig in (signal.SIGTERM, signal.SIGKILL):  # whatever is left in its cgroups
            pids = [p for c in host.cgroups for p in _cgroup_pids(c)]
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            for _ in range(50):
                if not any(_cgroup_pids(c) for c in host.cgroups):
                    break
                time.sleep(0.1)
        if os.path.ismount(host.root):
            subprocess.run(["umount", "-R", str(host.root)], capture_output=True)
            if os.path.ismount(host.root):
                subprocess.run(["umount", "-R", "-l", str(host.root)], capture_output=True)
        if host.netns in self._netns:
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
            self._netns.remove(host.netns)
        for cgroup in host.cgroups:  # nspawn's payload/, supervisor/ and systemd's slices, deepest first
            if cgroup.is_dir():
                for below in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                    below.rmdir()
                cgroup.rmdir()
        host.proc, host.init_pid = None, 0

    def close(self) -> None:
        """Stop every host (in parallel), delete the switch, remove the work directory."""
        if self._closed:
            return
        self._closed = True
        hosts = list(self.hosts.values())
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            for future in [pool.submit(self.stop, h) for h in hosts]:
                if future.exception() is not None:
                    errors.append(future.exception())  # type: ignore[arg-type]
        for netns in reversed(self._netns):
            kill_netns(netns)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        self._netns.clear()
        if not any(os.path.ismount(h.root) for h in hosts):
            shutil.rmtree(self.work, ignore_errors=True)
        if errors:
            raise errors[0]

    def leftovers(self) -> list[str]:
        """What close() should have removed and did not: namespaces, mounts, cgroups, processes."""
        found = []
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        found += [f"netns {n}" for n in names if n.startswith(f"{self.tag}-")]
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        found += [f"mount {line.split()[4]}" for line in mounts if line.split()[4].startswith(f"{self.work}/")]
        for host in self.hosts.values():
            found += [f"cgroup {c}" for c in host.cgroups if c.exists()]
        found += [f"process {pid} ({_comm(pid)})" for pid, start in self._started if _still_running(pid, start)]
        if self.work.exists():
            found.append(f"directory {self.work}")
        return found


@contextmanager
def fleet(hosts: Mapping[str, str], timeout: float = 120) -> Iterator[Fleet]:
    """Booted hosts {name: release ("debian-13", "debian-12", or a suite)} on one bridge,
    running when the block starts, gone when it ends (also after an error)."""
    booted = Fleet.create()
    try:
        booted.add_all(hosts)
        booted.boot(timeout)
        yield booted
    finally:
        booted.close()
