"""provisioner.apply.report: one plan or apply result as Markdown and as JSON."""

from __future__ import annotations

import json

from provisioner.apply import FileChange, HostPlan, PlanResult, TaskEvent, plan_json, plan_markdown


def test_a_secret_file_is_marked_and_never_shown() -> None:
    result = PlanResult((HostPlan("mail", (FileChange("/etc/dovecot/users", "content", True),), ("/etc/postfix/virtual",), ("dovecot",)),))
    markdown = plan_markdown(result)
    assert "| `/etc/dovecot/users` (secret) | content |" in markdown
    assert "- lookup tables to compile: `/etc/postfix/virtual`" in markdown and "- services to reload: dovecot" in markdown
    assert json.loads(plan_json(result))["hosts"][0]["files"][0] == {"path": "/etc/dovecot/users", "why": "content", "secret": True}


def test_a_failed_task_is_named_in_markdown() -> None:
    failure = TaskEvent("mail", "Validate the staged Postfix main.cf", "failed", "non-zero return code postconf: fatal: bad")
    markdown = plan_markdown(PlanResult((HostPlan("mail", failures=(failure,)),)))
    assert "**failed** at `Validate the staged Postfix main.cf`: non-zero return code postconf: fatal: bad" in markdown
    assert markdown.rstrip().endswith("The plan failed; nothing was changed.")


def test_tasks_listed_as_starts_or_packages_are_not_repeated_as_other_changes() -> None:
    host = HostPlan(
        "mail",
        start=("postfix",),
        packages="postfix postfix-lmdb",
        changed_tasks=("Whatever starts things", "Whatever installs", "Create the vmail user"),
        listed_tasks=("Whatever starts things", "Whatever installs"),
    )
    markdown = plan_markdown(PlanResult((host,)))
    assert "- services to start or enable: postfix" in markdown and "- packages: postfix postfix-lmdb" in markdown
    assert "- other changes: Create the vmail user\n" in markdown
    data = json.loads(plan_json(PlanResult((host,))))["hosts"][0]
    assert data["changed_tasks"] == list(host.changed_tasks) and "listed_tasks" not in data  # the JSON shape is unchanged


def test_restart_and_reload_are_listed_apart() -> None:
    host = HostPlan(
        "mail", (FileChange("/etc/opendkim.conf", "content"), FileChange("/etc/dovecot/dovecot.conf", "content")), reload=("dovecot",), restart=("opendkim",)
    )
    markdown = plan_markdown(PlanResult((host,)))
    assert "- services to restart: opendkim\n- services to reload: dovecot\n" in markdown
    data = json.loads(plan_json(PlanResult((host,))))["hosts"][0]
    assert (data["restart"], data["reload"]) == (["opendkim"], ["dovecot"])
