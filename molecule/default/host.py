"""Bring the molecule scenario's test host up or down: `host.py up|down EPHEMERAL_DIR`.

The host is tests/apply/testbed.py's sandbox host (an overlay chroot of the golden Debian
rootfs in a network namespace), which that module only offers as a context manager. `up`
enters it and leaves the process without running its exit (os._exit), so the host outlives
this process; what `down` needs to tear it down goes to EPHEMERAL_DIR/host/state.json.

For the inventory (molecule.yml), EPHEMERAL_DIR/host/ holds two stable paths:
  python3      the host's wrapper interpreter (ansible_python_interpreter)
  ansible-tmp  a symlink to the testbed's shared module directory, made on both sides of
               the chroot, so a module Ansible writes there is found inside (ansible_remote_tmp)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.apply.testbed import golden, kill_netns, sandbox_host  # noqa: E402

NAME = "mail"
FQDN = "mail.smallco.example"
IPV4 = "192.0.2.10"
IPV6 = "2001:db8::10"


def up(ephemeral: Path) -> None:
    home = ephemeral / "host"
    down(ephemeral)  # a host left over from an interrupted run
    home.mkdir(parents=True)
    rootfs = golden(log=lambda line: print(line, file=sys.stderr))
    context = sandbox_host(rootfs, NAME, FQDN, IPV4, IPV6)
    host = context.__enter__()  # on failure here the context manager has cleaned up
    try:
        state = {"netns": host.netns, "root": str(host.root), "work": str(host.root.parent), "ansible_tmp": str(host.ansible_tmp)}
        (home / "state.json").write_text(json.dumps(state) + "\n")
        (home / "python3").symlink_to(host.python)
        (home / "ansible-tmp").symlink_to(host.ansible_tmp)
        inside = host.root / str(home).lstrip("/")
        inside.mkdir(parents=True, exist_ok=True)
        (inside / "ansible-tmp").symlink_to(host.ansible_tmp)
        print(json.dumps(state))
    except BaseException:
        context.__exit__(*sys.exc_info())
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip the context manager's teardown: the host stays up until `down`


def down(ephemeral: Path) -> None:
    """The context manager's teardown, from the recorded state; nothing recorded, nothing to do."""
    home = ephemeral / "host"
    state_file = home / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        netns, root, work = state["netns"], Path(state["root"]), Path(state["work"])
        if Path(f"/run/netns/{netns}").exists():
            kill_netns(netns)
        if os.path.ismount(root):
            subprocess.run(["umount", "-R", str(root)], capture_output=True)
            if os.path.ismount(root):  # a process outside the namespace still holds it
                subprocess.run(["umount", "-R", "-l", str(root)], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        if os.path.ismount(root):
            raise SystemExit(f"{root} is still mounted; not removing {work}")
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        raise SystemExit("usage: host.py up|down EPHEMERAL_DIR")
    ephemeral = Path(argv[1]).absolute()
    up(ephemeral) if argv[0] == "up" else down(ephemeral)


if __name__ == "__main__":
    main(sys.argv[1:])
