"""The mailhost role's first task, on the controller: read this host's part of the build, probe
the host, check its release, and say whether anything is left to do.

It does in one task what five did (read the host's file, check the build holds the host, probe,
name the probe's findings, check the release): each task is a worker process forked for every
host on the controller, and a re-apply of a host already as built is now this task and
`meta: end_host` (issue 13: a fleet at once). It decides nothing about mail: the build's
manifest names the services, files and units; the role's vars (mailhost_wanted_packages,
mailhost_prepare_paths, mailhost_retired in vars/main.yml) say what the host needs, and are
evaluated here with this host's manifest, exactly as the role's later tasks evaluate them.

The probe is mailhost_stage's `probe` (library/mailhost_stage.py, with module_utils/
mailhost_units.py), run on the host over the task's connection as a plain python3 program that
reads the two sources and its arguments on stdin, as Ansible's pipelining feeds a module. It is
read-only and runs on every host at every apply; an Ansible module run would add Ansible's
module loader (~0.15 CPU-s on the host, and the controller's AnsiballZ build), three times what
the probe itself costs. The digest key travels on stdin, never on a command line or in the
result, and nothing is logged on the host.

Its result (register it) carries `mailhost`: the manifest and what the probe found, for the
role's set_fact, and `as_built`: the host is as built (no missing package, no file, table,
directory, user or sieve script to change, every service running and enabled, no retired unit
of ours running).
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.executor.interpreter_discovery import InterpreterDiscoveryRequiredError, discover_interpreter
from ansible.executor.module_common import _get_shebang
from ansible.plugins.action import ActionBase

DERIVED = ("mailhost_wanted_packages", "mailhost_prepare_paths", "mailhost_retired")
HOST_FILE_MAX = 64 << 20  # bytes: the build's own file; a bound, not a limit anyone meets
ROLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The probe's code, in the order it is loaded on the host: mailhost_stage imports the shared
# systemd helpers as Ansible's module_utils.
SOURCES = (("ansible.module_utils.mailhost_units", "module_utils/mailhost_units.py"), ("mailhost_stage", "library/mailhost_stage.py"))
# Run on the host by python3 -c: stdin is {"sources": [[name, path, text], ...], "args": {...}};
# stdout one JSON line, mailhost_stage.probe(args). Only the standard library is needed there.
BOOT = """
import json, sys, types
given = json.loads(sys.stdin.buffer.read())
for package in ("ansible", "ansible.module_utils"):
    sys.modules.setdefault(package, types.ModuleType(package))
for name, path, text in given["sources"]:
    module = sys.modules[name] = types.ModuleType(name)
    exec(compile(text, path, "exec"), module.__dict__)
sys.stdout.write(json.dumps(module.probe(given["args"])) + "\\n")
"""


def read_host_file(path: str, host: str) -> dict[str, Any]:
    """This host's file of the build (provisioner.render.writer.host_file): {"manifest",
    "digest_key"}; a clear refusal where it is missing or not ours."""
    why = f"{path} is missing (no host {host} in the build, or it was written by an older provision): render the site again"
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.loads(handle.read(HOST_FILE_MAX))
    except (OSError, ValueError):
        raise AnsibleActionFail(why) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("manifest"), dict) or "os" not in doc["manifest"].get("layout", {}):
        raise AnsibleActionFail(why)
    return doc


def release_mismatch(inventory_host: str, host: str, layout: dict[str, Any], release: dict[str, str]) -> str | None:
    """The refusal where the host runs another release than the site declares: a configuration
    rendered for another release is never applied, not even in part (Dovecot 2.4 refuses 2.3's
    settings and the other way round)."""
    if release.get("id") == "debian" and release.get("version") == layout["os_major"]:
        return None
    found = "Debian" if release.get("id") == "debian" else release.get("id", "unknown")
    return (
        f"{inventory_host}: the site declares {layout['os']} for host {host}, but the host runs {found} "
        f"{release.get('debian_version') or release.get('version', 'unknown')} ({release.get('codename', 'unknown')}): "
        f"set hosts.{host}.os to the release it runs (or upgrade it) and render again; nothing was changed"
    )


def probe_args(manifest: dict[str, Any], derived: dict[str, Any], digest_key: str) -> dict[str, Any]:
    """mailhost_stage's probe arguments. tls.source acme always goes the whole way (certbot's
    state is not in the probe), so its services are not read."""
    layout = manifest["layout"]
    if missing := [name for name in layout["services"] if name not in layout["units"]]:
        raise AnsibleActionFail(f"the build names no unit for service(s) {', '.join(missing)}: render the site again")
    args: dict[str, Any] = {
        "packages": derived["mailhost_wanted_packages"],
        "paths": derived["mailhost_prepare_paths"],
        "sieve": layout.get("sieve") or [],
        "files": manifest["files"],
        "tables": manifest["postfix_tables"],
        "reload_on": layout["reload_on"],
        "restart_on": layout["restart_on"],
        "restart_postconf": layout["restart_postconf"],
        "digest_key": digest_key,
        "units": {name: layout["units"][name] for name in layout["services"]},
        "retired": derived["mailhost_retired"],
        "verify": "acme" not in layout,
    }
    if "dovecot" in layout["services"]:
        args["vmail"] = layout["vmail"]
    return args


def probe_input(args: dict[str, Any], role: str = ROLE) -> bytes:
    """What the probe reads on stdin: the role's sources and the arguments."""
    sources = []
    for name, path in SOURCES:
        with open(os.path.join(role, path), encoding="utf-8") as handle:
            sources.append([name, f"roles/mailhost/{path}", handle.read()])
    return json.dumps({"sources": sources, "args": args}).encode()


def probe_command(interpreter: str) -> str:
    """The probe's command line: the interpreter as Ansible would write it after #! (it may
    carry words, `/usr/bin/env python3`), then -c and BOOT."""
    return " ".join(shlex.quote(word) for word in [*shlex.split(interpreter), "-c", BOOT])


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def well_formed(report: Any) -> bool:
    """Whether a host's answer has the probe's shape (a host is not trusted more than its answer)."""
    if not isinstance(report, dict) or report.get("provisioner") != "probe":
        return False
    release, services = report.get("release"), report.get("services")
    return (
        isinstance(release, dict)
        and all(isinstance(release.get(k), str) for k in ("id", "version", "codename", "debian_version"))
        and report.get("init") in ("systemd", "other")
        and _strings(report.get("missing_packages"))
        and _strings(report.get("pending"))
        and isinstance(report.get("clean"), bool)
        and isinstance(services, dict)
        and isinstance(services.get("converged"), bool)
        and _strings(services.get("start"))
        and _strings(services.get("stop"))
    )


def probe_report(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The probe's report from its output; a clear refusal where it did not answer as the probe."""
    lines = stdout.strip().splitlines()
    if rc == 0 and lines:
        try:
            report = json.loads(lines[-1])
        except ValueError:
            report = None
        if well_formed(report):
            return dict(report)
    said = (stderr.strip().splitlines() or stdout.strip().splitlines() or [f"exit {rc}"])[-1]
    raise AnsibleActionFail(f"the probe did not answer (exit {rc}): {said[:2000]}")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("host_file", "host"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        host = str(self._task.args["host"])
        doc = read_host_file(str(self._task.args["host_file"]), host)
        manifest, layout = doc["manifest"], doc["manifest"]["layout"]
        named = {
            "mailhost_manifest": manifest,
            "mailhost_services": layout["services"],
            "mailhost_reload_here": layout["reload_on"],
            "mailhost_vmail": layout["vmail"],
        }
        templar = self._templar.copy_with_new_env(available_variables={**task_vars, **named})
        derived = {name: templar.resolve_variable_expression(name) for name in DERIVED}
        interpreter, facts = self._interpreter(task_vars)
        done = self._low_level_execute_command(
            self._compute_environment_string() + probe_command(interpreter), in_data=probe_input(probe_args(manifest, derived, str(doc["digest_key"])))
        )
        report = probe_report(int(done["rc"]), str(done.get("stdout", "")), str(done.get("stderr", "")))
        if facts:
            result["ansible_facts"] = facts
        refusal = release_mismatch(str(task_vars.get("inventory_hostname", host)), host, layout, report["release"])
        if refusal:
            return {**result, "failed": True, "msg": refusal, "provisioner_report": report}
        systemd = report["init"] == "systemd"
        result.update(
            changed=False,
            provisioner_report=report,
            as_built=bool(report["clean"] and report["services"]["converged"]),
            mailhost={
                **{name.removeprefix("mailhost_"): value for name, value in named.items()},
                "release": report["release"],
                "service_mgr": report["init"],
                "missing_packages": report["missing_packages"],
                # systemd runs Postfix's master as postfix@- (layout.UNITS); Debian's init scripts
                # by the service's own name where PID 1 is not systemd (the chroot test host).
                "units": layout["units"] if systemd else {name: name for name in layout["services"]},
            },
        )
        return result

    def _interpreter(self, task_vars: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The host's Python as Ansible picks it for a module (ansible_python_interpreter, else
        its discovery, whose finding goes back as the fact Ansible itself would set)."""
        remote_is_local = bool(getattr(self._connection, "_remote_is_local", False))
        try:
            return str(_get_shebang("/usr/bin/python", task_vars, self._templar, remote_is_local=remote_is_local)[1]), {}
        except InterpreterDiscoveryRequiredError as needed:
            found = discover_interpreter(action=self, interpreter_name=needed.interpreter_name, discovery_mode=needed.discovery_mode, task_vars=task_vars)
            return str(found), {f"discovered_interpreter_{needed.interpreter_name}": found}
