#!/usr/bin/python
"""The mailhost role's service keeper under systemd: an Ansible module run on the host.

One call does what a loop of ansible.builtin.service did one unit per module run (each a Python
start on the host and a round trip): it reads every unit's state with ONE `systemctl show`, then
starts, in the order given, only the units that are not active, enables only the services not
enabled, and (action stop) stops and disables retired units that are still there. A re-apply
where everything runs is one `systemctl show` and nothing else.

The order matters and is kept: the role gives the milters and Dovecot before Postfix (a start
of several units in one `systemctl start` would run them in parallel).

Its result carries `provisioner_report`: {"provisioner": "services", "start": [...], "started":
[...], "stop": [...]} (service names, as the manifest's layout names them): `start` started or
enabled, which `provision plan` lists; `started` only those started (the handlers do not reload
a service that has just started with the new configuration).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.module_utils.mailhost_units import ServiceError, ensure, show, stop, systemctl, unit_name

DOCUMENTATION = r"""
module: mailhost_services
short_description: Start and enable a mail host's services, or stop retired ones, in one call
description:
  - ensure starts (in order) the units that are not active and enables the services that are
    not enabled at boot; one systemctl show reads every state first.
  - stop stops and disables the retired units that exist; a unit not installed is left alone.
  - settle stops the retired units, then waits until every service's unit has been active for
    min_up seconds (a daemon that rejects its configuration after forking dies within its first
    seconds), up to wait seconds; the report's dead names the ones that are not.
  - recycle (rspamd) waits until the hyperscan cache is compiled and loaded (every <hash>.hs
    has its .hs.unser), and restarts the unit once if any of it was compiled after the unit
    started: workers that started before the cache existed keep PCRE's copies (~90 MiB each,
    against 10-17 MiB for a worker that starts with the cache). It waits up to wait seconds
    (then restarts anyway if something was compiled, else leaves it).
  - In check mode nothing is changed (settle does not wait); the result says what would be done.
options:
  action: {type: str, required: true, choices: [ensure, stop, settle, recycle]}
  services: {type: list, elements: str, default: [], description: service names, in start order}
  units: {type: dict, default: {}, description: service name -> systemd unit (stop - unit or {unit, ours})}
  retired: {type: dict, default: {}, description: "settle: what stop takes as units"}
  min_up: {type: float, default: 3, description: "settle: seconds a unit must have been active"}
  wait: {type: float, default: 10, description: "settle, recycle: seconds to wait at most"}
  cache_dir: {type: path, default: /var/lib/rspamd, description: "recycle: rspamd's hyperscan cache directory"}
"""

RETURN = r"""
provisioner_report:
  description: What changed, by service name.
  returned: always
  type: dict
  sample: {"provisioner": "services", "start": ["dovecot", "postfix"], "started": ["postfix"], "stop": []}
"""

def not_running(units: Mapping[str, str], min_up: float) -> list[str]:
    """`name (unit: state)` of each service whose unit is not active, or active for less than
    min_up seconds (systemd's ActiveEnterTimestampMonotonic against CLOCK_MONOTONIC)."""
    states = show(list(units.values()), ("ActiveState", "ActiveEnterTimestampMonotonic"))
    now = time.clock_gettime(time.CLOCK_MONOTONIC)
    dead = []
    for name, unit in units.items():
        state = states[unit].get("ActiveState") or "not found"
        since = int(states[unit].get("ActiveEnterTimestampMonotonic") or 0) / 1e6
        if state == "active" and now - since >= min_up:
            continue
        if state == "active":
            state = f"active for less than {min_up:g} s"
        dead.append(f"{name} ({unit_name(unit)}: {state})")
    return dead


def settle(units: Mapping[str, str], retired: Mapping[str, Any], check: bool, min_up: float = 3, wait: float = 10) -> dict[str, Any]:
    """Stop what is retired, then wait (asking once a second) until every unit runs: a re-apply
    where all have run for long is one `systemctl show`."""
    report = stop(retired, check) if retired else {"provisioner": "services", "start": [], "started": [], "stop": []}
    report["dead"] = []
    if check:
        return report
    deadline = time.monotonic() + wait
    while (dead := not_running(units, min_up)) and time.monotonic() < deadline:
        time.sleep(1)
    report["dead"] = dead
    return report


HS_HELPER = "rspamd: hs_helper"


def children_titled(parent: int, prefixes: Sequence[str], proc: str = "/proc") -> dict[int, str]:
    """{pid: title} of the children of `parent` whose process title starts with one of `prefixes`."""
    found = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"{proc}/{entry}/cmdline", "rb") as handle:
                title = handle.read(256).replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and title.startswith(tuple(prefixes)):
            found[int(entry)] = title
    return found


def started_at(pid: int, proc: str = "/proc") -> float:
    """When process `pid` started, in seconds since the epoch (its stat's starttime after the
    boot time in /proc/stat: the kernel's own clock, also inside a container)."""
    with open(f"{proc}/{pid}/stat", encoding="utf-8", errors="replace") as handle:
        ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
    with open(f"{proc}/stat", encoding="utf-8") as handle:
        boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def cache_state(cache_dir: str, since: float) -> tuple[bool, bool]:
    """(settled, compiled since `since`) of rspamd's hyperscan cache. hs_helper writes each
    class's database as <hash>.hs (by way of .hs.new) and then tells the processes that scan,
    which map each as <hash>.hs.unser: settled once every .hs has its .unser, no newer than it,
    and nothing is half-written."""
    try:
        names = set(os.listdir(cache_dir))
    except OSError:
        return False, False
    compiled = [n for n in names if n.endswith(".hs")]
    if not compiled or any(n.endswith(".hs.new") for n in names):
        return False, False
    fresh, settled = False, True
    for name in compiled:
        try:
            made = os.stat(os.path.join(cache_dir, name)).st_mtime
        except OSError:  # removed as stale meanwhile
            settled = False
            continue
        fresh = fresh or made >= since
        try:
            settled = settled and os.stat(os.path.join(cache_dir, name + ".unser")).st_mtime >= made
        except OSError:
            settled = False
    return settled, fresh


def recycle(units: Mapping[str, str], cache_dir: str, wait: float, check: bool) -> dict[str, Any]:
    """Restart each unit once, where its hs_helper compiled the hyperscan cache after the unit
    started and the scanning processes have loaded it (see DOCUMENTATION). A start that found
    the cache valid compiled nothing: left alone."""
    report: dict[str, Any] = {"provisioner": "services", "start": [], "started": [], "stop": [], "restarted": [], "waited": []}
    for name, unit in units.items():
        main = int(show([unit], ("MainPID",))[unit].get("MainPID") or 0)
        if not main or not children_titled(main, [HS_HELPER]):  # not running, or no hyperscan on this CPU (hs_helper exits at once)
            continue
        since = started_at(main) - 1  # the clock's tick and the file system's time stamps
        deadline = time.monotonic() + wait
        while not (state := cache_state(cache_dir, since))[0] and time.monotonic() < deadline:
            time.sleep(1)
        settled, fresh = state
        if not settled:
            report["waited"].append(name)
        if fresh:
            if not check:
                systemctl("restart", "--", unit_name(unit))
            report["restarted"].append(name)
    return report


def run(params: Mapping[str, Any], check: bool = False) -> tuple[dict[str, Any], bool]:
    names, known = list(params.get("services") or ()), params.get("units") or {}
    if missing := [n for n in names if n not in known]:
        raise ServiceError(f"no unit named for service(s) {', '.join(missing)}")
    units = {name: known[name] for name in names}
    if params["action"] == "ensure":
        report = ensure(units, check)
    elif params["action"] == "recycle":
        report = recycle(units, str(params.get("cache_dir") or "/var/lib/rspamd"), float(params.get("wait", 10)), check)
        return report, bool(report["restarted"])
    elif params["action"] == "settle":
        report = settle(units, params.get("retired") or {}, check, float(params.get("min_up", 3)), float(params.get("wait", 10)))
    else:
        report = stop(units, check)
    return report, bool(report["start"] or report["stop"])


ARGUMENT_SPEC: dict[str, Any] = {
    "action": {"type": "str", "required": True, "choices": ["ensure", "stop", "settle", "recycle"]},
    "services": {"type": "list", "elements": "str", "default": []},
    "units": {"type": "dict", "default": {}},
    "retired": {"type": "dict", "default": {}},
    "min_up": {"type": "float", "default": 3},
    "wait": {"type": "float", "default": 10},
    "cache_dir": {"type": "path", "default": "/var/lib/rspamd"},
}


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        report, changed = run(module.params, check=module.check_mode)
    except (ServiceError, OSError, subprocess.TimeoutExpired) as exc:
        module.fail_json(msg=str(exc), provisioner_report={"provisioner": "services", "error": True})
        return
    module.exit_json(changed=changed, provisioner_report=report)


if __name__ == "__main__":
    main()
