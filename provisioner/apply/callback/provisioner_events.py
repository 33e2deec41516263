"""Ansible stdout callback: one JSON object per line, read by provisioner.apply.

ansible-core 2.19 ships no JSON callback (ansible.posix.json is a collection), so this small
one is loaded through ANSIBLE_CALLBACK_PLUGINS. It never prints file contents: results of
no_log tasks reach callbacks already censored, and of the rest only the status, the failure
message, the role's own reports (a dict with a "provisioner" key: the mailhost_stage module's
`provisioner_report`, shown by a debug task because the module's own task is no_log) and apt's
package summary pass through. A task's `provisioner_*` tags travel as its "marks", so the summary
knows what a task is for without reading its name.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: provisioner_events
type: stdout
short_description: JSON lines for provisioner plan and apply
description:
  - One JSON object per line for task starts, per-host results and the final stats.
"""

_LIMIT = 4000  # characters of stderr/msg kept from a failed task
MARK_PREFIX = "provisioner_"  # tags that say what a task is for (provisioner.apply.plan reads them)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "provisioner_events"

    def _emit(self, **event: Any) -> None:
        sys.stdout.write(json.dumps(event, sort_keys=True, default=str) + "\n")
        sys.stdout.flush()

    # ---------------------------------------------------------------- tasks

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._emit(event="play", name=play.get_name())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._emit(event="task", task=_name(task), handler=False)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._emit(event="task", task=_name(task), handler=True)

    def v2_playbook_on_no_hosts_matched(self) -> None:
        self._emit(event="no_hosts")

    # -------------------------------------------------------------- results

    def _result(self, result: Any, status: str, **extra: Any) -> None:
        data = result._result
        event: dict[str, Any] = {"event": "result", "host": result._host.get_name(), "task": _name(result._task), "status": status}
        marks = sorted(tag for tag in getattr(result._task, "tags", None) or () if isinstance(tag, str) and tag.startswith(MARK_PREFIX))
        if marks:
            event["marks"] = marks
        message = data.get("msg")
        report = data.get("provisioner_report")
        if isinstance(message, dict) and "provisioner" in message:
            event["report"] = message  # the role's own summaries: paths and reasons only
        elif isinstance(report, dict) and "provisioner" in report:
            event["report"] = report  # the module's result itself, where its task is not no_log
        if status in ("failed", "unreachable"):
            event["message"] = _text(message)
            items = data.get("results")
            if isinstance(items, list):  # a loop: which items failed, and why ("One or more items failed" alone names none)
                failed = [f"{_text(r.get('item'))}: {_text(r.get('msg'))}" for r in items if isinstance(r, dict) and r.get("failed")]
                if failed:
                    event["message"] = _text(f"{message}: " + "; ".join(failed))
            for key in ("stderr", "stdout", "rc"):
                if data.get(key) not in (None, ""):
                    event[key] = data[key] if key == "rc" else _text(data[key])
        diff = data.get("diff")
        if isinstance(diff, dict) and isinstance(diff.get("prepared"), str):
            event["prepared"] = diff["prepared"][:_LIMIT]  # apt: the packages it would install
        if isinstance(data.get("results"), list):
            event["items_changed"] = [_text(r.get("item")) for r in data["results"] if isinstance(r, dict) and r.get("changed")]
        event.update(extra)
        self._emit(**event)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result(result, "failed", ignored=ignore_errors)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result(result, "unreachable")

    # ---------------------------------------------------------------- stats

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._emit(event="stats", hosts={host: stats.summarize(host) for host in sorted(stats.processed)})


def _name(task: Any) -> str:
    """The task's own name, without the "role : " prefix Ansible adds for display."""
    return str(task.name or task.get_name())


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _LIMIT else text[:_LIMIT] + " ..."
