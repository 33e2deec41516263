"""One writing provision at a time per state directory.

render, keys, dns, dns push, plan and apply write the state directory (DKIM keys, certificates,
dkim.yaml, dkim-served.json, dns-pushed.json) and the build. Two at once in the same directory
(a person and a timer on a deploy host, a runner that keeps its working directory, two
terminals) could each make a new domain's DKIM key, publish one and install the other, or push
zones over each other. Pipelines on separate runners each have their own checkout: there the
CI's own setting serializes applies (examples/gitops: `concurrency`). Each command that writes
takes an exclusive flock(2) on the directory that holds the state directory (the site file's
own directory by default): no lock file is made, nothing is left behind, and a process that
dies releases it. A second command waits, saying so once on stderr, up to `wait` seconds, then
refuses naming the state directory. check, inspect and validate only read and take no lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner.errors import ProvisionError

LOCK_WAIT = 600.0  # seconds: longer than a cold apply of a large fleet is not a wait but a hang
POLL = 0.2


def lock_holder(state_dir: Path) -> Path:
    """The directory whose flock stands for `state_dir`: its parent, which exists before the
    first command makes the state directory (the same lock for the one that makes it and the
    ones after), or the nearest directory above it that exists."""
    holder = state_dir.absolute().parent
    while not holder.is_dir() and holder != holder.parent:
        holder = holder.parent
    return holder


@contextmanager
def state_lock(state_dir: Path, wait: float = LOCK_WAIT, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the state directory's lock for the `with` block. The descriptor is close-on-exec, so
    nothing the command starts (ansible-playbook, SSH masters that outlive it) keeps the lock."""
    holder = lock_holder(state_dir)
    try:
        fd = os.open(holder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ProvisionError(f"cannot lock the state directory {state_dir} (through {holder}): {exc.strerror}") from None
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ProvisionError(
                        f"another provision has been using the state directory {state_dir} for more than {wait:g} s: "
                        "let it finish (or stop it) and run this again"
                    ) from None
                if not told and waiting is not None:
                    waiting(f"waiting for another provision that is using the state directory {state_dir} (up to {wait:g} s)")
                    told = True
                time.sleep(POLL)
        yield
    finally:
        os.close(fd)
