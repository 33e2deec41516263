"""plan (check mode) and apply (for real): run the playbook, read its JSON lines, summarise.

Exit-code contract for plan: 0 nothing would change, 2 changes, 1 error (a failed or
unreachable host). apply: 0 success, 1 a host failed (the result names host and task).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provisioner.apply.bundle import read_manifest, write_bundles
from provisioner.apply.inventory import site_inventory, write_inventory
from provisioner.datadir import data_dir
from provisioner.errors import ProvisionError
from provisioner.site.model import Site

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "playbook.yml"
ROLLOUT = HERE / "rollout.yml"  # apply --serial N: the MX hosts N at a time, then the rest
CALLBACKS = HERE / "callback"
ROLES = data_dir("roles")  # the checkout's roles/, or the wheel's provisioner/roles

TaskStatus = Literal["ok", "changed", "failed", "skipped", "unreachable"]
# What the summary reads, never a task's name (renaming a task must not change a plan):
# - the mailhost_stage module's reports ({"provisioner": "inspect" | "install" | ...}), which the
#   callback forwards from the role's report tasks;
# - the role's `provisioner_*` tags, which the callback forwards as an event's "marks".
Report = Literal["inspect", "install"]
QUIET = "provisioner_quiet"  # bookkeeping whose change is shown otherwise (shipping the bundle)
STARTS = "provisioner_start"  # starts or enables services: the items that changed are listed
PACKAGES = "provisioner_packages"  # installs packages: apt's summary is listed


@dataclass(frozen=True)
class TaskEvent:
    """One task's result on one host, as the progress line and the summaries see it."""

    host: str
    task: str
    status: TaskStatus
    message: str = ""  # for failures: Ansible's msg, then stderr (never file contents)
    handler: bool = False


@dataclass(frozen=True)
class FileChange:
    path: str
    why: str  # missing | content | mode | owner | not a file
    secret: bool = False


@dataclass(frozen=True)
class HostPlan:
    host: str
    files: tuple[FileChange, ...] = ()
    tables: tuple[str, ...] = ()  # lookup tables to compile
    reload: tuple[str, ...] = ()  # services to reload
    restart: tuple[str, ...] = ()  # services to restart (a setting a reload does not apply: layout.RESTART_*)
    start: tuple[str, ...] = ()  # services to start (or enable)
    packages: str = ""  # apt's summary of what it would install
    changed_tasks: tuple[str, ...] = ()
    listed_tasks: tuple[str, ...] = ()  # changed tasks whose change is listed above (start, packages)
    failures: tuple[TaskEvent, ...] = ()
    unreachable: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.files or self.tables or self.changed_tasks)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unreachable


@dataclass(frozen=True)
class PlanResult:
    hosts: tuple[HostPlan, ...]
    log: tuple[str, ...] = ()  # what ansible-playbook printed besides events (warnings)
    returncode: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode in (0, 2) and all(h.ok for h in self.hosts) and bool(self.hosts)

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts)

    @property
    def exit_code(self) -> int:
        return 1 if not self.ok else 2 if self.changed else 0


@dataclass(frozen=True)
class ApplyResult:
    hosts: tuple[HostPlan, ...]  # what changed (files that went live, tasks that changed)
    stats: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    log: tuple[str, ...] = ()
    returncode: int = 0

    @property
    def failures(self) -> tuple[TaskEvent, ...]:
        return tuple(f for h in self.hosts for f in h.failures)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and all(h.ok for h in self.hosts) and bool(self.hosts)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


TaskListener = Callable[[TaskEvent], None]  # called with each task result as it comes


def plan(
    site_path: Path | None,
    build_dir: Path,
    inventory: Path | None = None,
    limit: str | None = None,
    env: Mapping[str, str] | None = None,
    progress: TaskListener | None = None,
) -> PlanResult:
    """What apply would change on each host: ansible-playbook --check --diff, summarised."""
    events, log, returncode = _run(site_path, build_dir, inventory, limit, check=True, env=env, progress=progress)
    return PlanResult(_summarise(events, read_manifest(build_dir.absolute()), live_report="inspect"), tuple(log), returncode)


def apply(
    site_path: Path | None,
    build_dir: Path,
    inventory: Path | None = None,
    limit: str | None = None,
    env: Mapping[str, str] | None = None,
    progress: TaskListener | None = None,
    serial: int | None = None,
) -> ApplyResult:
    """Run the playbook for real; progress(event) is called for each task result as it comes.

    With `serial` the site's MX hosts (mx, backup-mx) go first, `serial` at a time, and the first
    failure stops the rollout (rollout.yml): the MX hosts not yet reached keep serving."""
    events, log, returncode = _run(site_path, build_dir, inventory, limit, check=False, env=env, progress=progress, serial=serial)
    stats: dict[str, dict[str, int]] = {}
    for event in events:
        if event.get("event") == "stats":
            stats = event["hosts"]
    hosts = _summarise(events, read_manifest(build_dir.absolute()), live_report="install")
    return ApplyResult(hosts, stats, tuple(log), returncode)


# ------------------------------------------------------------------------------ running


def ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        raise ProvisionError("ansible-playbook not found: install ansible-core (pip install 'ansible-core>=2.19,<2.20')")
    return found


def _run(
    site_path: Path | None,
    build_dir: Path,
    inventory: Path | None,
    limit: str | None,
    check: bool,
    env: Mapping[str, str] | None,
    progress: TaskListener | None,
    serial: int | None = None,
) -> tuple[list[dict[str, Any]], list[str], int]:
    if serial is not None and (serial < 1 or site_path is None):
        raise ProvisionError("--serial needs a number of hosts of at least 1 and the site file (it names the MX hosts)")
    build_dir = build_dir.absolute()
    manifest = read_manifest(build_dir)
    if not ROLES.is_dir():
        raise ProvisionError(f"the Ansible roles are not at {ROLES}: the installation is incomplete, reinstall provisioner")
    write_bundles(build_dir)
    with tempfile.TemporaryDirectory(prefix="provision-apply-") as work:
        site = None
        if inventory is None or serial is not None:
            if site_path is None:
                raise ProvisionError("no inventory: give -i INVENTORY or a site file with ansible: blocks")
            from provisioner.site.validate import load_site

            site = load_site(site_path).site
        if inventory is None:
            assert site is not None
            unknown = sorted(set(site.hosts) - set(manifest["hosts"]))
            if unknown:
                raise ProvisionError(f"{build_dir} holds no tree for host(s) {', '.join(unknown)}: render the site again")
            inventory = write_inventory(site_inventory(site, build_dir), Path(work) / "inventory.yml")
        command = [ansible_playbook(), "-i", str(inventory), *playbook_args(build_dir, site, serial)]
        if limit:
            command += ["--limit", limit]
        if check:
            command += ["--check", "--diff"]
        run_env = {
            **os.environ,
            "ANSIBLE_ROLES_PATH": str(ROLES),
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_STDOUT_CALLBACK": "provisioner_events",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_PIPELINING": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        return _stream(command, run_env, progress)


def playbook_args(build_dir: Path, site: Site | None = None, serial: int | None = None) -> list[str]:
    """The playbook and its extra vars: playbook.yml (every host at once), or with `serial`
    rollout.yml with the site's MX hosts (in the site's order of names) to go `serial` at a time."""
    variables: dict[str, Any] = {"mailhost_build_dir": str(build_dir)}
    if serial is None or site is None:
        return [str(PLAYBOOK), "-e", json.dumps(variables)]
    mx = sorted(name for name, host in site.hosts.items() if host.receives_internet_mail)
    variables |= {"mailhost_serial": serial, "mailhost_rollout_mx": mx}
    return [str(ROLLOUT), "-e", json.dumps(variables)]


def _stream(command: list[str], env: Mapping[str, str], progress: TaskListener | None) -> tuple[list[dict[str, Any]], list[str], int]:
    events: list[dict[str, Any]] = []
    log: list[str] = []
    handler = False
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env)) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if not isinstance(event, dict) or "event" not in event:
                if line.strip():
                    log.append(line.rstrip())
                continue
            events.append(event)
            if event["event"] == "task":
                handler = bool(event.get("handler"))
            if event["event"] == "result" and progress is not None:
                progress(_task_event(event, handler))
        log.extend(line.rstrip() for line in proc.stderr.read().splitlines() if line.strip())
        returncode = proc.wait()
    return events, log, returncode


def _task_event(event: Mapping[str, Any], handler: bool = False) -> TaskEvent:
    message = " ".join(str(event[k]).strip() for k in ("message", "stderr") if event.get(k) and event.get(k) != "None")
    return TaskEvent(event["host"], event["task"], event["status"], message, handler)


# ------------------------------------------------------------------------------ summaries


def _summarise(events: list[dict[str, Any]], manifest: Mapping[str, Any], live_report: Report) -> tuple[HostPlan, ...]:
    """Per host: the files from the `live_report` kind of report (inspect: what differs, for a
    plan; install: what went live), other changed tasks by name, failures."""
    secret = {(host, f["path"]) for host, entry in manifest["hosts"].items() for f in entry["files"] if f.get("secret")}
    per_host: dict[str, dict[str, Any]] = {}
    handler = False
    for event in events:
        if event["event"] == "task":
            handler = bool(event.get("handler"))
            continue
        if event["event"] == "stats":
            for host in event["hosts"]:
                per_host.setdefault(host, {})
            continue
        if event["event"] != "result":
            continue
        host = per_host.setdefault(event["host"], {})
        status, task, marks = event["status"], event["task"], set(event.get("marks") or ())
        report = event.get("report") or {}
        kind = report.get("provisioner")
        if kind == live_report == "inspect":
            host["files"] = tuple(FileChange(f["path"], f["why"], (event["host"], f["path"]) in secret) for f in report["files"])
            host["tables"] = tuple(report["tables"])
            host["reload"] = tuple(report["reload"])
            host["restart"] = tuple(report.get("restart", ()))
        elif kind == live_report == "install":
            host["files"] = tuple(FileChange(p, "installed", (event["host"], p) in secret) for p in report["changed"])
            host["reload"] = tuple(report["reload"])
            host["restart"] = tuple(report.get("restart", ()))
        elif kind == "compile":
            host["tables"] = tuple(report["tables"])
        elif kind == "services" and STARTS in marks:  # mailhost_services: started or enabled, by name
            host.setdefault("start", []).extend(report.get("start", ()))
        if status == "changed" and QUIET not in marks:
            host.setdefault("changed_tasks", []).append(task)
            if event.get("prepared"):
                host["packages"] = event["prepared"]
            if STARTS in marks:
                host.setdefault("start", []).extend(event.get("items_changed", []))
            if marks & {STARTS, PACKAGES}:
                host.setdefault("listed_tasks", []).append(task)
        elif status == "failed" and not event.get("ignored"):
            host.setdefault("failures", []).append(_task_event(event, handler))
        elif status == "unreachable":
            host["unreachable"] = True
            host.setdefault("failures", []).append(_task_event(event, handler))
    plans = []
    for name, data in sorted(per_host.items()):
        plans.append(
            HostPlan(
                host=name,
                files=data.get("files", ()),
                tables=data.get("tables", ()),
                reload=tuple(sorted(data.get("reload", ()))),
                restart=tuple(sorted(data.get("restart", ()))),
                start=tuple(dict.fromkeys(data.get("start", ()))),
                packages=data.get("packages", ""),
                changed_tasks=tuple(dict.fromkeys(data.get("changed_tasks", ()))),
                listed_tasks=tuple(dict.fromkeys(data.get("listed_tasks", ()))),
                failures=tuple(data.get("failures", ())),
                unreachable=data.get("unreachable", False),
            )
        )
    return tuple(plans)
