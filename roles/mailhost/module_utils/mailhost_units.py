"""The mailhost role's systemd helpers, shared by its modules (run on the host): read unit
states with one `systemctl show`, start and enable what is not running, stop retired units of
ours, and say read-only whether any of that is left to do (verify).

mailhost_services acts with them; mailhost_stage's probe asks verify on a re-apply (run by the
role's action plugin as plain python3, which loads this file beside mailhost_stage), so a host
already as built is one run on the host. Only the standard library is used here.
"""

from __future__ import annotations

import glob
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

SHOW = ("LoadState", "ActiveState", "UnitFileState")


class ServiceError(Exception):
    """systemctl refused: the task's message names the unit and what systemctl said."""


def unit_name(unit: str) -> str:
    return unit if "." in unit else f"{unit}.service"


def show(units: Sequence[str], properties: Sequence[str] = SHOW) -> dict[str, dict[str, str]]:
    """{unit: {property: value}} from one `systemctl show`; systemctl separates units by a blank line."""
    if not units:
        return {}
    unique = list(dict.fromkeys(units))
    out = systemctl("show", *[f"--property={p}" for p in ("Id", *properties)], "--", *[unit_name(u) for u in unique])
    blocks = out.strip("\n").split("\n\n")
    if len(blocks) != len(unique):
        raise ServiceError(f"systemctl show answered for {len(blocks)} of {len(unique)} units")
    return {unit: dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for unit, block in zip(unique, blocks, strict=True)}


def systemctl(*args: str) -> str:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise ServiceError(f"systemctl {' '.join(args)}: {said[-1] if said else f'exit {done.returncode}'}")
    return done.stdout


def ensure(units: Mapping[str, str], check: bool, states: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Start what is not active (in order), enable what is not enabled (by service name: the
    package's own unit, e.g. postfix, whose Wants= brings postfix@- at boot). `states`: what
    show() read of the units and the service names, where the caller read it already."""
    states = show([*units.values(), *units.keys()]) if states is None else states
    started: list[str] = []
    for name, unit in units.items():
        if states[unit].get("ActiveState") not in ("active", "reloading"):
            if not check:
                systemctl("start", "--", unit_name(unit))
            started.append(name)
    changed = list(started)
    for name in units:
        # Only a disabled unit is enabled: enabled, static (no [Install]), alias, generated need
        # nothing, and a masked one was masked by someone on purpose (enable would fail anyway).
        if states[name].get("UnitFileState") == "disabled":
            if not check:
                systemctl("enable", "--", unit_name(name))
            if name not in changed:
                changed.append(name)
    return {"provisioner": "services", "start": changed, "started": started, "stop": []}


OURS_MAX = 1 << 20  # bytes read of one file when telling whether a unit is ours


def ours(spec: Mapping[str, Any] | None) -> bool:
    """Whether a retired unit is one we set up: every file matching spec["path"] (a glob) holds
    spec["contains"], and there is at least one. No spec: the layout retires it whatever it is.
    A user's own nginx, or certbot renewing certificates of their own, is left running."""
    if not spec:
        return True
    found = sorted(glob.glob(str(spec["path"])))
    marker = str(spec["contains"]).encode()
    for path in found:
        try:
            with open(path, "rb") as handle:
                if marker not in handle.read(OURS_MAX):
                    return False
        except OSError:
            return False
    return bool(found)


def plain_units(units: Mapping[str, Any]) -> dict[str, str]:
    """stop's units by service name: NAME or {"unit": NAME, "ours": ...} -> NAME."""
    return {name: entry if isinstance(entry, str) else str(entry["unit"]) for name, entry in units.items()}


def stop(units: Mapping[str, Any], check: bool, states: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Stop and disable each unit that is installed and still active or enabled. A unit given as
    {"unit": NAME, "ours": {"path": GLOB, "contains": TEXT}} only when ours() says it is ours."""
    plain = plain_units(units)
    states = show(list(plain.values())) if states is None else states
    stopped: list[str] = []
    for name, unit in plain.items():
        state = states[unit]
        if state.get("LoadState", "not-found") == "not-found":
            continue
        entry = units[name]
        if not isinstance(entry, str) and not ours(entry.get("ours")):
            continue
        active = state.get("ActiveState") not in ("inactive", "failed")
        enabled = state.get("UnitFileState") == "enabled"
        if active or enabled:
            if not check:
                systemctl("disable", "--now", "--", unit_name(unit))
            stopped.append(name)
    return {"provisioner": "services", "start": [], "started": [], "stop": stopped}


def verify(units: Mapping[str, str], retired: Mapping[str, Any]) -> dict[str, Any]:
    """Read-only: what ensure and stop would do (by service name), and whether that is nothing:
    one `systemctl show` for both."""
    states = show([*units.values(), *units.keys(), *plain_units(retired).values()])
    would = ensure(units, check=True, states=states)
    would["stop"] = stop(retired, check=True, states=states)["stop"]
    return {**would, "provisioner": "verify", "converged": not (would["start"] or would["stop"])}
