"""A plan with a copy of the role whose every task is renamed is the same plan, on a real host.

tests/apply/test_plan.py proves it with the callback's events; this runs both roles through
ansible-playbook against the throwaway Debian host of tests/apply/testbed.py (check mode only:
the host stays fresh). Needs root and debootstrap; PROVISIONER_SKIP_TESTBED=1 skips it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from provisioner.apply import HostPlan, plan, plan_json
from tests.apply.test_plan import renamed_role
from tests.apply.test_testbed_apply import ADDRESS, FQDN, _env, _inventory
from tests.apply.testbed import golden, sandbox_host

pytestmark = pytest.mark.skipif(os.environ.get("PROVISIONER_SKIP_TESTBED") == "1", reason="PROVISIONER_SKIP_TESTBED=1")


def test_a_renamed_role_plans_the_same_changes(rendered_build: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.fail("the test host needs root and debootstrap: run tests/run.sh as root, which installs it")
    roles = tmp_path / "roles"
    _, names = renamed_role(roles / "mailhost")
    with sandbox_host(golden(log=print), "mail", FQDN, ADDRESS) as host:
        inventory = _inventory(host, tmp_path / "hosts.yml")
        original = plan(None, rendered_build, inventory, env=_env(host))
        renamed = plan(None, rendered_build, inventory, env={**_env(host), "ANSIBLE_ROLES_PATH": str(roles)})
    assert original.exit_code == renamed.exit_code == 2, plan_json(renamed) + "\n".join(renamed.log)
    (before,), (after,) = original.hosts, renamed.hosts
    assert after.changed_tasks and all(task.startswith("Step ") for task in after.changed_tasks)  # the copy really ran
    assert after.changed_tasks == tuple(names[t] for t in before.changed_tasks)

    def facts(p: HostPlan) -> tuple[object, ...]:
        return (p.files, p.tables, p.reload, p.start, p.packages, p.failures, p.unreachable)

    assert facts(after) == facts(before)
    assert {"/etc/postfix/main.cf", "/etc/dovecot/users"} <= {f.path for f in before.files}
