"""Plan and apply results as JSON and Markdown (one result, several renderings).

Only paths, reasons, service and task names: secret files are marked, never shown. Host names,
task names and messages come from the inventory and the hosts: in Markdown each line has their
controls made visible (provisioner.textsafe); JSON carries the exact text.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from provisioner.apply.plan import ApplyResult, HostPlan, PlanResult
from provisioner.textsafe import visible


def _host_data(host: HostPlan) -> dict[str, Any]:
    data = asdict(host)
    del data["listed_tasks"]  # a rendering detail: changed_tasks has them all
    data["changed"] = host.changed
    data["ok"] = host.ok
    return data


def plan_json(result: PlanResult) -> str:
    return json.dumps(
        {"changed": result.changed, "ok": result.ok, "exit_code": result.exit_code, "hosts": [_host_data(h) for h in result.hosts]},
        indent=2,
        sort_keys=True,
    )


def apply_json(result: ApplyResult) -> str:
    return json.dumps(
        {"ok": result.ok, "exit_code": result.exit_code, "stats": result.stats, "hosts": [_host_data(h) for h in result.hosts]},
        indent=2,
        sort_keys=True,
    )


def plan_markdown(result: PlanResult, title: str = "Plan") -> str:
    lines = [f"# {title}", ""]
    if not result.hosts:
        lines += ["No host matched.", ""]
    for host in result.hosts:
        state = "unreachable" if host.unreachable else "failed" if host.failures else "changes" if host.changed else "no changes"
        lines += [f"## {host.host}: {state}", ""]
        for failure in host.failures:
            lines.append(f"- **failed** at `{failure.task}`: {failure.message or 'see the Ansible log'}")
        if host.files:
            lines += ["| file | why |", "|---|---|"]
            lines += [f"| `{f.path}`{' (secret)' if f.secret else ''} | {f.why} |" for f in host.files]
            lines.append("")
        if host.tables:
            lines.append("- lookup tables to compile: " + ", ".join(f"`{t}`" for t in host.tables))
        if host.restart:
            lines.append("- services to restart: " + ", ".join(host.restart))
        if host.reload:
            lines.append("- services to reload: " + ", ".join(host.reload))
        if host.start:
            lines.append("- services to start or enable: " + ", ".join(host.start))
        if host.packages:
            lines.append("- packages: " + " ".join(host.packages.split()))
        other = [t for t in host.changed_tasks if t not in host.listed_tasks]
        if other:
            lines.append("- other changes: " + "; ".join(other))
        lines.append("")
    total = sum(1 for h in result.hosts if h.changed)
    lines.append(f"{total} of {len(result.hosts)} host(s) would change." if result.ok else "The plan failed; nothing was changed.")
    return "\n".join(visible(line) for line in lines) + "\n"
