"""A throwaway Debian host on this machine: golden rootfs, overlay chroot, network namespace.

docs/apply.md, "The test host". The golden rootfs is built once by debootstrap and cached
under /var/cache/provisioner-testbed/<key>/, the key a hash of everything that goes into it
(suite, base packages, the role's package list), so CI that starts from scratch builds its own
and a changed package list builds a new one. The mirror is reached only during that build;
the hosts install the mail packages from apt's cache (`apt-get install --download-only`).

Per test: an overlay mount (lower = golden, upper = throwaway), /proc and /dev inside it, a
network namespace with 192.0.2.10/24 and 2001:db8::10/64 on a veth (both ends inside), and a Python
wrapper that runs `nsenter --net=... chroot ROOT /usr/bin/python3`, so Ansible's local
connection runs every module inside the host. Teardown kills only the namespace's processes.

golden_booted(suite) builds the goldens of hosts that boot systemd as PID 1 (Debian 13 trixie,
Debian 12 bookworm) for tests/hosts/nspawn.py, each under its own key (sd-<suite>-...).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PROVISIONER_TESTBED_CACHE", "/var/cache/provisioner-testbed"))
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-apt", "ca-certificates", "openssl")
RECIPE = 1  # bump when the build steps below change


def role_packages() -> list[str]:
    """Every package the mailhost role may install (its defaults are the one list): per service,
    and per file of the tree (a smarthost's sasl_passwd asks for libsasl2-modules)."""
    defaults = yaml.safe_load((REPO / "roles/mailhost/defaults/main.yml").read_text())
    lists = [*defaults["mailhost_packages"].values(), *defaults.get("mailhost_file_packages", {}).values()]
    return sorted({p for packages in lists for p in packages})


def debian_mirror() -> str:
    """The machine's own Debian mirror, from its apt sources (deb822 or one-line)."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(path.read_text())
        except OSError:
            continue
    for uri in re.findall(r"(?:URIs:|^deb)\s+(?:\[[^]]*\]\s+)?(https?://\S+)", "\n".join(texts), re.M):
        if uri.rstrip("/").endswith("/debian"):
            return uri
    return "http://deb.debian.org/debian"


def _run(cmd: Sequence[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


SUITES = {"debian-13": "trixie", "debian-12": "bookworm"}  # the site's hosts.<name>.os -> Debian suite
# A host that boots systemd as PID 1 (tests/hosts/nspawn.py) needs its init, D-Bus and sshd.
BOOTED_PACKAGES = ("systemd-sysv", "dbus", "openssh-server")
BOOTED_RECIPE = 1  # bump when _finish_booted changes


def golden(log: object = print, extra_packages: tuple[str, ...] = (), key_prefix: str = "", suite: str = SUITE, booted: bool = False) -> Path:
    """The cached golden rootfs, built if missing (about a minute, needs the Debian mirror).

    extra_packages are installed too (tests/network adds openssh-server), cached under their
    own key_prefix. suite is the Debian release (bookworm, trixie); booted finishes the tree
    for systemd as PID 1 (golden_booted). The default golden's key is what it always was.
    """
    packages = role_packages()
    recipe: list[object] = [RECIPE, suite, BASE_PACKAGES, *([list(extra_packages)] if extra_packages else []), packages]
    if booted:
        recipe.append({"booted": BOOTED_RECIPE})
    key = key_prefix + hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]
    home = CACHE / key
    rootfs = home / "rootfs"
    if (home / "complete").exists():  # written after the rename: no lock needed to read it
        return rootfs
    CACHE.mkdir(parents=True, exist_ok=True)
    # The default goldens keep the one lock they always had; a booted golden locks only its own
    # key, so building one (a minute or two) never stalls a run that just needs another.
    with open(CACHE / (f".lock-{key}" if booted else ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "complete").exists():
            return rootfs
        build = home / "rootfs.building"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        started = time.monotonic()
        _run(["debootstrap", "--variant=minbase", suite, build, debian_mirror()])
        policy = build / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\n# test host: apt never starts daemons; `service X start` does\nexit 101\n")
        policy.chmod(0o755)
        shutil.copy("/etc/resolv.conf", build / "etc/resolv.conf")
        _run(["mount", "-t", "proc", "proc", build / "proc"])
        try:
            env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
            _run(["chroot", build, "apt-get", "update", "-qq"], env=env)
            _run(["chroot", build, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *BASE_PACKAGES, *extra_packages], env=env)
            _run(["chroot", build, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "--download-only", *packages], env=env)
        finally:
            _run(["umount", build / "proc"])
        (build / "etc/resolv.conf").write_text("# test network: no resolver\n")
        # SSH host keys are made per host at start (each host its own); none in the golden.
        for f in (build / "etc/ssh").glob("ssh_host_*"):
            f.unlink()
        if booted:
            _finish_booted(build)
        shutil.rmtree(rootfs, ignore_errors=True)
        build.rename(rootfs)
        (home / "complete").write_text(
            json.dumps({"suite": suite, "packages": [*extra_packages, *packages], "seconds": round(time.monotonic() - started)}) + "\n"
        )
        if callable(log):
            log(f"testbed: golden rootfs built in {time.monotonic() - started:.0f}s at {rootfs}")
        return rootfs


def golden_booted(suite: str, log: object = print) -> Path:
    """A golden rootfs that boots systemd as PID 1 (systemd-nspawn --boot): suite is
    "trixie" or "bookworm"; cached under its own key (sd-<suite>-...)."""
    return golden(log, BOOTED_PACKAGES, f"sd-{suite}-", suite=suite, booted=True)


# Units a throwaway booted host never needs: timers fire apt, man-db and fstrim jobs during a
# test; gettys would wait on a console nobody reads; first-boot would prompt on it.
BOOTED_MASKED = ("getty.target", "getty@.service", "console-getty.service", "container-getty@.service", "serial-getty@.service", "systemd-firstboot.service")


def _finish_booted(build: Path) -> None:
    """Make the tree a real systemd host: no policy-rc.d (apt starts what it installs, as on a
    server), an empty machine-id (each host gets its own at boot), timers and gettys masked."""
    (build / "usr/sbin/policy-rc.d").unlink()
    (build / "etc/machine-id").write_text("")
    units = build / "usr/lib/systemd/system"
    masked = [*BOOTED_MASKED, *(t.name for t in units.glob("*.timer"))]
    for unit in sorted(set(masked)):
        link = build / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


@dataclass(frozen=True)
class SandboxHost:
    name: str  # inventory name, the site's host name
    netns: str
    root: Path  # the overlay mount, the host's /
    python: Path  # the wrapper Ansible uses as ansible_python_interpreter
    ansible_tmp: Path  # bind-mounted at the same path inside the host

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host (its namespace, its root)."""
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", "chroot", str(self.root), *cmd],
            check=check,
            text=True,
            capture_output=True,
            timeout=timeout,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
        )

    def in_netns(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a controller command (e.g. this venv's python) inside the host's network only."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *cmd], text=True, capture_output=True, timeout=timeout)


@contextmanager
def sandbox_host(golden_root: Path, name: str, fqdn: str, ipv4: str = "192.0.2.10", ipv6: str = "2001:db8::10") -> Iterator[SandboxHost]:
    """An overlay chroot of the golden rootfs in a fresh network namespace; torn down on exit."""
    work = Path(tempfile.mkdtemp(prefix=f"tb-{name}-", dir="/tmp"))
    netns = f"tb-{name}-{os.getpid()}"
    root = work / "root"
    ansible_tmp = work / "ansible-tmp"
    mounts: list[Path] = []
    netns_made = False
    try:
        for d in ("upper", "work", "root", "ansible-tmp"):
            (work / d).mkdir()
        _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={golden_root},upperdir={work}/upper,workdir={work}/work", root])
        mounts.append(root)
        _run(["mount", "-t", "proc", "proc", root / "proc"])
        _run(["mount", "--bind", "/dev", root / "dev"])
        _run(["mount", "--bind", "/dev/pts", root / "dev/pts"])
        inside_tmp = root / str(ansible_tmp).lstrip("/")
        inside_tmp.mkdir(parents=True)
        _run(["mount", "--bind", ansible_tmp, inside_tmp])
        short = fqdn.split(".")[0]
        (root / "etc/hostname").write_text(f"{fqdn}\n")
        (root / "etc/mailname").write_text(f"{fqdn}\n")
        (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n::1 localhost\n{ipv4} {fqdn} {short}\n{ipv6} {fqdn} {short}\n")
        # a resolver line, as on every real host (rspamd needs one); nothing answers it here
        (root / "etc/resolv.conf").write_text("nameserver 192.0.2.53\noptions timeout:1 attempts:1\n")

        _run(["ip", "netns", "add", netns])
        netns_made = True
        for cmd in (
            ["link", "set", "lo", "up"],
            # No dummy driver on every kernel: a veth pair with both ends inside does the same.
            ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"],
            ["link", "set", "eth0-peer", "up"],
            ["addr", "add", f"{ipv4}/24", "dev", "eth0"],
            ["addr", "add", f"{ipv6}/64", "dev", "eth0", "nodad"],
            ["link", "set", "eth0", "up"],
        ):
            _run(["ip", "-n", netns, *cmd])

        python = work / "python3"
        python.write_text(f'#!/bin/sh\nexec nsenter --net=/run/netns/{netns} chroot {root} /usr/bin/python3 "$@"\n')
        python.chmod(0o755)
        yield SandboxHost(name, netns, root, python, ansible_tmp)
    finally:
        if netns_made:
            kill_netns(netns)
        if mounts:
            subprocess.run(["umount", "-R", str(root)], capture_output=True)
            if os.path.ismount(root):  # a process outside the namespace still holds it
                subprocess.run(["umount", "-R", "-l", str(root)], capture_output=True)
        if netns_made:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def kill_netns(netns: str) -> None:
    """Stop every process in the namespace (and only those): TERM, a grace period, KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(int(pid), sig)
            except ProcessLookupError:
                pass
        for _ in range(50):
            if not subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split():
                return
            time.sleep(0.1)
