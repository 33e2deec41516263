"""One writing provision at a time per state directory (provisioner.statelock): a second one
waits and says so, then goes on; one that waits too long is refused naming the directory; no
file is made for the lock, and nothing the command started keeps it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.errors import ProvisionError
from provisioner.statelock import lock_holder, state_lock
from tests.conftest import EXAMPLES
from tests.test_cli import provision

# Holds the flock of argv[1] until stdin closes; says "held" once it has it.
HOLDER = "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"


def hold(directory: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=10)


def test_the_lock_stands_on_the_directory_holding_the_state_even_before_the_state_exists(tmp_path: Path) -> None:
    assert lock_holder(tmp_path / "state") == tmp_path
    assert lock_holder(tmp_path / "not/made/yet/state") == tmp_path  # the nearest directory there
    (tmp_path / "state").mkdir()
    assert lock_holder(tmp_path / "state") == tmp_path  # the same lock before and after the first command makes it


def test_a_second_waits_saying_so_once_then_is_refused_naming_the_state_directory(tmp_path: Path) -> None:
    holder = hold(tmp_path)
    said: list[str] = []
    try:
        start = time.monotonic()
        with pytest.raises(ProvisionError, match=rf"another provision has been using the state directory {tmp_path / 'state'} for more than 0.6 s"):
            with state_lock(tmp_path / "state", wait=0.6, waiting=said.append):
                pytest.fail("entered a lock another process holds")
        assert time.monotonic() - start >= 0.6
        assert said == [f"waiting for another provision that is using the state directory {tmp_path / 'state'} (up to 0.6 s)"]
    finally:
        release(holder)
    with state_lock(tmp_path / "state", wait=0):  # free again: no wait
        pass
    assert sorted(os.listdir(tmp_path)) == []  # no lock file, nothing left behind


def test_what_the_command_started_does_not_keep_the_lock(tmp_path: Path) -> None:
    """ansible-playbook's SSH masters (ControlPersist) outlive provision: the descriptor is not theirs."""
    with state_lock(tmp_path / "state"):
        child = subprocess.Popen(["sleep", "30"])
    try:
        with state_lock(tmp_path / "state", wait=0):
            pass
    finally:
        child.kill()
        child.wait()


def test_a_command_that_writes_the_state_waits_for_the_one_before_it(tmp_path: Path) -> None:
    site = tmp_path / "site" / "site.yaml"
    shutil.copytree(EXAMPLES / "all-in-one", site.parent, ignore=shutil.ignore_patterns("state", "build"))
    holder = hold(site.parent)
    try:
        keys = subprocess.Popen(
            [sys.executable, "-m", "provisioner.cli", "keys", str(site)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"}
        )
        time.sleep(1.5)
        assert keys.poll() is None and not (site.parent / "state").exists()  # waiting: nothing made yet
    finally:
        release(holder)
    out, err = keys.communicate(timeout=120)
    assert keys.returncode == 0, err
    assert f"note: waiting for another provision that is using the state directory {site.parent / 'state'}" in err
    assert "keys generated in" in out and (site.parent / "state").is_dir()


def test_a_command_that_only_reads_does_not_wait(tmp_path: Path) -> None:
    site = tmp_path / "site" / "site.yaml"
    shutil.copytree(EXAMPLES / "all-in-one", site.parent, ignore=shutil.ignore_patterns("state", "build"))
    holder = hold(site.parent)
    try:
        start = time.monotonic()
        assert provision("validate", str(site)).returncode == 0
        assert time.monotonic() - start < 30
    finally:
        release(holder)
