"""`provision apply --serial N`: the site's MX hosts N at a time, a failure stops the rollout, then
the other hosts; without --serial (and for every plan) the one playbook of all hosts at once.

The rollout runs the real provisioner/apply/rollout.yml through the real ansible-playbook, with a
stand-in `mailhost` role on local connections that records the order hosts were reached in and
fails where told: what a user would see of the order, never of the mail configuration.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.apply.flow import Target, plan_command
from provisioner.apply.plan import PLAYBOOK, ROLLOUT, ansible_playbook, apply, playbook_args
from provisioner.errors import ProvisionError
from provisioner.site.validate import load_site

REPO = Path(__file__).resolve().parents[2]
MULTI = REPO / "examples/multi-host/site.yaml"  # mx1 (mx), mx2 (backup-mx), out1 (relay)

STAND_IN = """\
- name: Record that this host was reached
  ansible.builtin.shell: "echo {{ inventory_hostname }} >> {{ record }}"
  changed_when: false
- name: Fail where told
  ansible.builtin.fail:
    msg: broken on purpose
  when: inventory_hostname in failing
- name: Record that this host was done
  ansible.builtin.shell: "echo {{ inventory_hostname }} done >> {{ record }}"
  changed_when: false
"""


def extra_vars(args: list[str]) -> dict[str, object]:
    assert args[1] == "-e"
    data: dict[str, object] = json.loads(args[2])
    return data


def test_without_serial_every_host_is_applied_by_the_one_playbook() -> None:
    site = load_site(MULTI).site
    args = playbook_args(Path("/b"), site, None)
    assert args[0] == str(PLAYBOOK) and extra_vars(args) == {"mailhost_build_dir": "/b"}


def test_serial_names_the_mx_and_backup_mx_hosts_of_the_site() -> None:
    site = load_site(MULTI).site
    args = playbook_args(Path("/b"), site, 1)
    assert args[0] == str(ROLLOUT)
    assert extra_vars(args) == {"mailhost_build_dir": "/b", "mailhost_serial": 1, "mailhost_rollout_mx": ["mx1", "mx2"]}


def test_the_rollout_plays_mx_hosts_in_batches_that_stop_at_a_failure_then_the_rest() -> None:
    mx, rest = yaml.safe_load(ROLLOUT.read_text())
    assert mx["serial"] == "{{ mailhost_serial | default(1) }}" and mx["max_fail_percentage"] == 0
    assert "serial" not in rest and "max_fail_percentage" not in rest
    assert mx["roles"] == rest["roles"] == yaml.safe_load(PLAYBOOK.read_text())[0]["roles"]


def test_serial_needs_the_site_and_at_least_one_host(tmp_path: Path) -> None:
    for site, serial in ((None, 1), (MULTI, 0)):
        with pytest.raises(ProvisionError, match="--serial"):
            apply(site, tmp_path / "missing", tmp_path / "inventory.yml", serial=serial)


def test_plan_ignores_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[object, ...]] = []
    monkeypatch.setattr("provisioner.apply.flow.plan", lambda *args, **kw: seen.append(args) or "planned")
    monkeypatch.setattr(Target, "render", lambda self, *a: None)
    target = Target(MULTI, tmp_path, None, {}, serial=1)
    assert plan_command(target) == "planned"
    assert seen == [(MULTI, tmp_path, None, None)]


def rollout(tmp_path: Path, hosts: list[str], mx: list[str], serial: int, failing: list[str]) -> tuple[list[str], int]:
    """Run rollout.yml with the stand-in role; (the record, in order; ansible-playbook's exit)."""
    role = tmp_path / "roles/mailhost/tasks"
    role.mkdir(parents=True, exist_ok=True)
    (role / "main.yml").write_text(STAND_IN)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {h: {"ansible_connection": "local"} for h in hosts}}}))
    record = tmp_path / "record"
    record.unlink(missing_ok=True)
    variables = {"mailhost_serial": serial, "mailhost_rollout_mx": mx, "record": str(record), "failing": failing}
    env = {"ANSIBLE_ROLES_PATH": str(tmp_path / "roles"), "ANSIBLE_FORKS": "10", "ANSIBLE_RETRY_FILES_ENABLED": "0", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [ansible_playbook(), "-i", str(inventory), str(ROLLOUT), "-e", json.dumps(variables)], env=env, capture_output=True, text=True, timeout=120
    )
    return (record.read_text().splitlines() if record.exists() else []), done.returncode


def test_a_failing_first_mx_leaves_the_second_untouched(tmp_path: Path) -> None:
    record, code = rollout(tmp_path, ["mx1", "mx2", "out1"], ["mx1", "mx2"], 1, failing=["mx1"])
    assert code != 0
    assert record == ["mx1"]  # mx2 keeps serving as it was; out1 is not reached either


def test_a_good_rollout_finishes_each_mx_before_the_next_then_the_rest(tmp_path: Path) -> None:
    record, code = rollout(tmp_path, ["mx1", "mx2", "out1", "out2"], ["mx1", "mx2"], 1, failing=[])
    assert code == 0
    assert record[:4] == ["mx1", "mx1 done", "mx2", "mx2 done"]
    assert sorted(record[4:]) == ["out1", "out1 done", "out2", "out2 done"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mx_count=st.integers(1, 4), serial=st.integers(1, 3), data=st.data())
def test_any_failing_mx_stops_the_rollout_at_its_batch(tmp_path: Path, mx_count: int, serial: int, data: st.DataObject) -> None:
    mx = [f"mx{i}" for i in range(mx_count)]
    failing = data.draw(st.sampled_from(mx))
    record, code = rollout(tmp_path, [*mx, "out1"], mx, serial, failing=[failing])
    assert code != 0
    batch = mx.index(failing) // serial
    reached = [h for h in record if not h.endswith(" done")]
    # every MX of the batches before, and of the failing batch, and none after (nor the rest)
    assert sorted(reached) == sorted(mx[: (batch + 1) * serial])
    assert f"{failing} done" not in record
