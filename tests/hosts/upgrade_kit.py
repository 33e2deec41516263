"""An offline dist-upgrade of a booted test host: Debian 12 (bookworm) to 13 (trixie).

The hosts of tests/hosts/nspawn.py have no route to a Debian mirror, as a server behind a
strict firewall with a local mirror would. The controller builds, once, an "upgrade kit": in
an overlay of the bookworm booted golden (tests/apply/testbed.golden_booted) with the role's
packages installed, as on a host the role applied to, the sources are switched to trixie and
`apt-get update` and `apt-get dist-upgrade --download-only` fill apt's lists and archives.
The kit keeps those lists, the .debs and the sources.list; it is cached like the goldens under
/var/cache/provisioner-testbed/up-<from>-<to>-<hash>/, built under a lock of its own.

dist_upgrade(host, kit) puts the kit into a running host (lists, archives, sources.list) and
runs the real `apt-get dist-upgrade` inside it as a transient systemd unit (systemd-run), with
`--no-download`: nothing leaves the host's network. Conffiles keep the live version
(--force-confold), as an operator answering "keep your currently-installed version" does: the
role's files stay until `provision apply` replaces them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.apply.testbed import CACHE, _run, debian_mirror, golden_booted, role_packages
from tests.hosts.nspawn import BootedHost

KIT_RECIPE = 1  # bump when the build steps below change
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


@dataclass(frozen=True)
class UpgradeKit:
    source: str  # suite upgraded from
    target: str  # suite upgraded to
    home: Path  # lists/, archives/, sources.list, complete

    @property
    def lists(self) -> Path:
        return self.home / "lists"

    @property
    def archives(self) -> Path:
        return self.home / "archives"

    @property
    def sources(self) -> Path:
        return self.home / "sources.list"

    def info(self) -> dict[str, object]:
        """What the build wrote: seconds, bytes, packages."""
        return dict(json.loads((self.home / "complete").read_text()))


def upgrade_kit(source: str = "bookworm", target: str = "trixie", log: object = print) -> UpgradeKit:
    """The cached kit, built if missing (needs the Debian mirror, a few minutes)."""
    golden = golden_booted(source, log=log)
    packages = role_packages()
    recipe = [KIT_RECIPE, source, target, golden.parent.name, packages, debian_mirror()]
    key = f"up-{source}-{target}-" + hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]
    kit = UpgradeKit(source, target, CACHE / key)
    if (kit.home / "complete").exists():  # written last: no lock needed to read it
        return kit
    with open(CACHE / f".lock-{key}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (kit.home / "complete").exists():
            return kit
        started = time.monotonic()
        shutil.rmtree(kit.home, ignore_errors=True)
        work = kit.home / "building"
        for d in ("upper", "work", "root"):
            (work / d).mkdir(parents=True)
        root = work / "root"
        _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={golden},upperdir={work}/upper,workdir={work}/work", root])
        try:
            _run(["mount", "-t", "proc", "proc", root / "proc"])
            try:
                _fill(root, source, target, packages)
            finally:
                _run(["umount", root / "proc"])
            shutil.copytree(root / "var/lib/apt/lists", kit.lists, ignore=shutil.ignore_patterns("lock", "partial"))
            kit.archives.mkdir()
            debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
            for deb in debs:
                shutil.copy2(deb, kit.archives / deb.name)
            shutil.copy2(root / "etc/apt/sources.list", kit.sources)
        finally:
            _run(["umount", root])
            shutil.rmtree(work, ignore_errors=True)
        size = sum(f.stat().st_size for f in kit.home.rglob("*") if f.is_file())
        info = {"source": source, "target": target, "debs": len(debs), "bytes": size, "seconds": round(time.monotonic() - started)}
        (kit.home / "complete").write_text(json.dumps(info) + "\n")
        if callable(log):
            log(f"upgrade kit {source} -> {target}: {len(debs)} packages, {size / 2**20:.0f} MiB in {info['seconds']}s at {kit.home}")
        return kit


def _fill(root: Path, source: str, target: str, packages: list[str]) -> None:
    """In the kit's overlay: the role's packages installed (from the golden's cache, no daemon
    started), then trixie's lists and every .deb a dist-upgrade of that system needs."""
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    policy = root / "usr/sbin/policy-rc.d"  # a chroot: nothing may start here
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    chroot: list[str | Path] = ["chroot", root]
    _run([*chroot, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "--no-download", *packages], env=APT_ENV, timeout=900)
    sources = root / "etc/apt/sources.list"
    sources.write_text(sources.read_text().replace(f" {source} ", f" {target} "))
    _run([*chroot, "apt-get", "clean"], env=APT_ENV)
    _run([*chroot, "apt-get", "update", "-qq"], env=APT_ENV, timeout=900)
    _run([*chroot, "apt-get", "dist-upgrade", "-y", "-qq", "--download-only"], env=APT_ENV, timeout=1800)


def dist_upgrade(host: BootedHost, kit: UpgradeKit, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Upgrade a running host to the kit's release with the real apt-get dist-upgrade, under the
    host's systemd; returns its output. The host should be rebooted after it (Fleet.reboot)."""
    if host.suite != kit.source:
        raise ValueError(f"{host.name} runs {host.suite}, the kit upgrades {kit.source}")
    root = host.root  # the overlay the container runs on: what is written here, it sees
    lists = root / "var/lib/apt/lists"
    for old in lists.iterdir():
        if old.is_file() and old.name != "lock":
            old.unlink()
    for item in kit.lists.iterdir():
        if item.is_file():
            shutil.copy2(item, lists / item.name)
    for deb in kit.archives.iterdir():
        shutil.copy2(deb, root / "var/cache/apt/archives" / deb.name)
    shutil.copy2(kit.sources, root / "etc/apt/sources.list")
    result = host.run(
        "systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--unit=provisioner-dist-upgrade",
        "--setenv=DEBIAN_FRONTEND=noninteractive", "--setenv=LC_ALL=C",
        "apt-get", "dist-upgrade", "-y", "--no-download", "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-confdef",
        check=False, timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"{host.name}: apt-get dist-upgrade exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    host.suite = kit.target
    return result
