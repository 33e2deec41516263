"""provisioner.apply.plan: the plan/apply summary from the callback's events.

The summary reads the mailhost_stage module's reports and the role's `provisioner_*` tags, never
a task's name: the events here are made by the real callback plugin from the real role's tasks
(a fake host answers them), and a copy of the role with every task renamed gives the same plan.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from provisioner.apply import FileChange, HostPlan, PlanResult, TaskEvent
from provisioner.apply.callback.provisioner_events import CallbackModule
from provisioner.apply.plan import PACKAGES, QUIET, STARTS, _summarise

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles/mailhost"

MANIFEST = {"hosts": {"mail": {"files": [{"path": "/etc/dovecot/users", "secret": True}, {"path": "/etc/postfix/main.cf", "secret": False}]}}}
INSPECT = {"provisioner": "inspect", "files": [{"path": "/etc/dovecot/users", "why": "content"}], "tables": ["/etc/postfix/virtual"], "reload": ["dovecot"]}
INSTALL = {"provisioner": "install", "changed": ["/etc/dovecot/users", "/etc/postfix/main.cf"], "reload": ["dovecot", "postfix"]}
APT_SUMMARY = "The following NEW packages will be installed:\n  postfix postfix-lmdb\n"


def _result(task: str, status: str, **extra: object) -> dict[str, object]:
    return {"event": "result", "host": "mail", "task": task, "status": status, **extra}


# ------------------------------------------------------------- the role through the callback


def role_tasks(role: Path) -> list[tuple[dict[str, Any], bool]]:
    """(task, is_handler) in the order Ansible runs them; a block's tags reach its tasks."""

    def flatten(tasks: list[dict[str, Any]], tags: list[str], block: bool) -> list[dict[str, Any]]:
        out = []
        for task in tasks:
            own = tags + list(task.get("tags") or [])
            included = task.get("ansible.builtin.include_tasks") or task.get("ansible.builtin.import_tasks")
            if "block" in task:
                out += flatten(task["block"], own, True)
            elif included == "stage.yml":  # staging: like a block, it does not run in check mode
                out += flatten(yaml.safe_load((role / "tasks" / included).read_text()), own, True)
            elif included:
                continue  # tls.source acme's tasks: the manifest here has no acme entry
            else:
                out.append({**task, "tags": own, "in_block": block})
        return out

    tasks = flatten(yaml.safe_load((role / "tasks/main.yml").read_text()), [], False)
    handlers = flatten(yaml.safe_load((role / "handlers/main.yml").read_text()), [], False)
    return [(t, False) for t in tasks] + [(h, True) for h in handlers]


CENSORED = {"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result"}


def _answer(task: dict[str, Any], check: bool, reports: Mapping[str, Mapping[str, Any]], bundle_status: str) -> tuple[str, dict[str, Any]] | None:
    """What a fresh Debian host answers to a task of the role (None: the task is skipped).
    Tasks are told apart by their module and arguments, never by their names."""
    registered = {"mailhost_inspect": "inspect", "mailhost_install": "install"}
    if task["in_block"] and check:
        return None  # the staging block does not run in check mode
    if task.get("listen"):
        service = task["ansible.builtin.service"]["name"]
        return ("changed", {}) if not check and service in reports.get("install", {}).get("reload", ()) else None
    if "ansible.builtin.copy" in task:
        return bundle_status, dict(CENSORED)
    if "mailhost_stage" in task:
        installs = task["mailhost_stage"]["action"] == "install" and reports.get("install", {}).get("changed")
        return ("changed" if installs else "ok"), dict(CENSORED)
    if "ansible.builtin.debug" in task:
        source = next(name for name in registered if name in str(task["ansible.builtin.debug"]["msg"]))
        report = reports.get(registered[source])
        return ("ok", {"msg": dict(report)}) if report else None
    if "ansible.builtin.apt" in task:
        return "changed", {"diff": {"prepared": APT_SUMMARY}} if check else {}
    if "ansible.builtin.service" in task and "loop" in task:
        return "changed", {"results": [{"item": s, "changed": True} for s in ("opendkim", "dovecot", "postfix")]}
    return "ok", dict(CENSORED) if task.get("no_log") else {}


def callback_events(role: Path, check: bool, reports: Mapping[str, Mapping[str, Any]], bundle_status: str = "changed") -> list[dict[str, Any]]:
    """The JSON lines the real provisioner_events callback prints for the role on one host."""
    callback = CallbackModule()
    out = io.StringIO()
    host = SimpleNamespace(get_name=lambda: "mail")
    with contextlib.redirect_stdout(out):
        for task, handler in role_tasks(role):
            fake = SimpleNamespace(name=task["name"], tags=task["tags"], get_name=lambda t=task: t["name"])
            if handler:
                callback.v2_playbook_on_handler_task_start(fake)
            else:
                callback.v2_playbook_on_task_start(fake, False)
            answer = _answer(task, check, reports, bundle_status)
            if answer is None:
                callback.v2_runner_on_skipped(SimpleNamespace(_host=host, _task=fake, _result={"skipped": True}))
                continue
            status, data = answer
            callback.v2_runner_on_ok(SimpleNamespace(_host=host, _task=fake, _result={**data, "changed": status == "changed"}))
        callback._emit(event="stats", hosts={"mail": {"changed": 1}})
    return [json.loads(line) for line in out.getvalue().splitlines()]


def renamed_role(target: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the role with every task and handler renamed; old name -> new name."""
    shutil.copytree(ROLE, target)
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        names[match.group(2)] = new = f"Step {len(names) + 1} (was {match.group(2)!r})"
        return f"{match.group(1)}- name: {json.dumps(new)}"

    for path in [*sorted((target / "tasks").glob("*.yml")), target / "handlers/main.yml"]:
        path.write_text(re.sub(r"^(\s*)- name: (.+)$", rename, path.read_text(), flags=re.M))
    return target, names


def _without_names(plan: HostPlan) -> HostPlan:
    return HostPlan(plan.host, plan.files, plan.tables, plan.reload, plan.start, plan.packages)


def test_renaming_every_task_of_the_role_changes_no_plan_and_no_apply_summary(tmp_path: Path) -> None:
    copy, names = renamed_role(tmp_path / "mailhost")
    assert len(names) > 20 and all(old != new for old, new in names.items())
    for check, kind, reports in ((True, "inspect", {"inspect": INSPECT}), (False, "install", {"inspect": INSPECT, "install": INSTALL})):
        (before,) = _summarise(callback_events(ROLE, check, reports), MANIFEST, live_report=kind)  # type: ignore[arg-type]
        (after,) = _summarise(callback_events(copy, check, reports), MANIFEST, live_report=kind)  # type: ignore[arg-type]
        assert _without_names(after) == _without_names(before)
        assert after.changed_tasks == tuple(names[t] for t in before.changed_tasks)
        assert after.listed_tasks == tuple(names[t] for t in before.listed_tasks)
        # What the summary is made of: nothing of it may come from a task's name.
        assert before.files and before.reload and before.start == ("opendkim", "dovecot", "postfix")
        assert PlanResult((after,)).exit_code == PlanResult((before,)).exit_code == 2
    (plan,) = _summarise(callback_events(ROLE, True, {"inspect": INSPECT}), MANIFEST, live_report="inspect")
    assert plan.files == (FileChange("/etc/dovecot/users", "content", True),) and plan.tables == ("/etc/postfix/virtual",)
    assert plan.packages == APT_SUMMARY
    (applied,) = _summarise(callback_events(ROLE, False, {"inspect": INSPECT, "install": INSTALL}), MANIFEST, live_report="install")
    assert [(f.path, f.why) for f in applied.files] == [("/etc/dovecot/users", "installed"), ("/etc/postfix/main.cf", "installed")]
    assert applied.reload == ("dovecot", "postfix")


def test_the_role_carries_every_mark_the_summary_reads() -> None:
    tagged = {tag for task, _ in role_tasks(ROLE) for tag in task["tags"]}
    assert {QUIET, STARTS, PACKAGES} <= tagged


def test_shipping_the_bundle_alone_is_not_a_change_to_review() -> None:
    nothing = {"provisioner": "inspect", "files": [], "tables": [], "reload": []}
    (plan,) = _summarise(callback_events(ROLE, True, {"inspect": nothing}, bundle_status="changed"), MANIFEST, live_report="inspect")
    assert not plan.files and not plan.tables and all("bundle" not in t.lower() for t in plan.changed_tasks)


def test_plan_summary_marks_secrets() -> None:
    events = [
        {"event": "task", "task": "any name", "handler": False},
        _result("any name", "ok", report=INSPECT),
        _result("another name", "changed", marks=[QUIET]),
        {"event": "stats", "hosts": {"mail": {"changed": 1}}},
    ]
    hosts = _summarise(events, MANIFEST, live_report="inspect")
    assert hosts == (HostPlan("mail", (FileChange("/etc/dovecot/users", "content", True),), ("/etc/postfix/virtual",), ("dovecot",)),)
    assert PlanResult(hosts).exit_code == 2
    assert PlanResult((HostPlan("mail"),)).exit_code == 0


def test_an_apply_reads_the_install_report_and_a_plan_the_inspect_report() -> None:
    events = [_result("a", "ok", report=INSPECT), _result("b", "ok", report=INSTALL)]
    (plan,) = _summarise(events, MANIFEST, live_report="inspect")
    (applied,) = _summarise(events, MANIFEST, live_report="install")
    assert [f.why for f in plan.files] == ["content"]
    assert [f.why for f in applied.files] == ["installed", "installed"]


def test_a_failed_task_is_named_with_its_host_and_makes_exit_code_1() -> None:
    events = [
        {"event": "task", "task": "Validate the staged Postfix main.cf", "handler": False},
        _result("Validate the staged Postfix main.cf", "failed", message="non-zero return code", stderr="postconf: fatal: bad"),
    ]
    hosts = _summarise(events, MANIFEST, live_report="install")
    assert hosts[0].failures == (TaskEvent("mail", "Validate the staged Postfix main.cf", "failed", "non-zero return code postconf: fatal: bad"),)
    assert PlanResult(hosts).exit_code == 1


def test_no_matching_host_is_an_error() -> None:
    assert PlanResult(()).exit_code == 1
