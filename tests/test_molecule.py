"""The molecule scenario (molecule/default): the mailhost role on booted test hosts.

`molecule test -s default` boots one systemd host per release (tests/hosts/nspawn.py: mail13 on
Debian 13, mail12 on Debian 12; root, systemd-nspawn, overlayfs, network namespaces; the golden
rootfs are built on first use), then prepare (render the all-in-one example for each release),
converge, idempotence, verify (services running under systemd, system `running`, SMTP banner)
and destroy. Part of CI like the other testbed tests; PROVISIONER_SKIP_TESTBED=1 skips it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")


def test_molecule_default_scenario() -> None:
    bin_dir = Path(sys.executable).parent
    molecule = bin_dir / "molecule"
    assert molecule.exists() or shutil.which("molecule"), "molecule is not installed in this environment"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # molecule calls ansible-config, ansible-playbook
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [str(molecule) if molecule.exists() else "molecule", "test", "-s", "default"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
    )
    tail = "\n".join(result.stdout.splitlines()[-80:])
    assert result.returncode == 0, f"molecule test exited {result.returncode}:\n{tail}"
