"""provisioner.apply without hosts: inventory, bundles, summaries and their renderings."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from provisioner.apply import FileChange, HostPlan, PlanResult, TaskEvent, plan_json, plan_markdown, site_inventory, write_bundles
from provisioner.apply.plan import _summarise
from provisioner.errors import ProvisionError
from provisioner.site.validate import load_site

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("aio")
    out = work / "build"
    provision = str(Path(sys.executable).parent / "provision")
    subprocess.run(
        [provision, "render", str(REPO / "examples/all-in-one/site.yaml"), "-o", str(out), "--state", str(work / "state")], check=True, capture_output=True
    )
    return out


def test_inventory_from_the_multi_host_example_matches_inventories_example() -> None:
    site = load_site(REPO / "examples/multi-host/site.yaml").site
    data = site_inventory(site, Path("/b"))
    shipped = yaml.safe_load((REPO / "inventories/example/hosts.yml").read_text())
    assert data["all"]["hosts"] == shipped["all"]["hosts"]
    assert data["all"]["vars"] == {"mailhost_build_dir": "/b"}


def test_host_without_an_ansible_block_is_reached_at_its_fqdn() -> None:
    site = load_site(REPO / "examples/all-in-one/site.yaml").site
    assert site_inventory(site, Path("/b"))["all"]["hosts"] == {"mail": {"ansible_host": "mail.smallco.example"}}


def test_bundle_is_deterministic_and_carries_manifest_owners(build: Path) -> None:
    first = write_bundles(build)["mail"].read_bytes()
    (build / ".bundles/mail.tar").unlink()
    assert write_bundles(build)["mail"].read_bytes() == first
    manifest = json.loads((build / "manifest.json").read_text())["hosts"]["mail"]["files"]
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar}
    assert sorted(members) == sorted(f["path"].lstrip("/") for f in manifest)
    for entry in manifest:
        member = members[entry["path"].lstrip("/")]
        assert (f"{member.mode:04o}", member.uname, member.gname, member.mtime) == (entry["mode"], entry["owner"], entry["group"], 0)


def test_bundle_refuses_a_tree_edited_after_render(build: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "build"
    shutil.copytree(build, copy)
    (copy / "mail/etc/postfix/main.cf").write_text("edited\n")
    with pytest.raises(ProvisionError, match="differs from manifest.json"):
        write_bundles(copy)


def test_missing_manifest_says_render_first(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="provision render"):
        write_bundles(tmp_path)


MANIFEST = {"hosts": {"mail": {"files": [{"path": "/etc/dovecot/users", "secret": True}, {"path": "/etc/postfix/main.cf", "secret": False}]}}}


def _result(task: str, status: str, **extra: object) -> dict[str, object]:
    return {"event": "result", "host": "mail", "task": task, "status": status, **extra}


def test_plan_summary_marks_secrets_and_exit_codes() -> None:
    report = {"provisioner": "inspect", "files": [{"path": "/etc/dovecot/users", "why": "content"}], "tables": ["/etc/postfix/virtual"], "reload": ["dovecot"]}
    events = [
        {"event": "task", "task": "Report the differences", "handler": False},
        _result("Report the differences", "ok", report=report),
        _result("Ship the bundle", "changed"),
        {"event": "stats", "hosts": {"mail": {"changed": 1}}},
    ]
    hosts = _summarise(events, MANIFEST, live_report="Report the differences")
    assert hosts == (HostPlan("mail", (FileChange("/etc/dovecot/users", "content", True),), ("/etc/postfix/virtual",), ("dovecot",)),)
    result = PlanResult(hosts)
    assert result.exit_code == 2
    markdown = plan_markdown(result)
    assert "| `/etc/dovecot/users` (secret) | content |" in markdown
    assert json.loads(plan_json(result))["hosts"][0]["files"][0] == {"path": "/etc/dovecot/users", "why": "content", "secret": True}
    assert PlanResult((HostPlan("mail"),)).exit_code == 0


def test_a_failed_task_is_named_with_its_host_and_makes_exit_code_1() -> None:
    events = [
        {"event": "task", "task": "Validate the staged Postfix main.cf", "handler": False},
        _result("Validate the staged Postfix main.cf", "failed", message="non-zero return code", stderr="postconf: fatal: bad"),
    ]
    hosts = _summarise(events, MANIFEST, live_report="Report what went live")
    assert hosts[0].failures == (TaskEvent("mail", "Validate the staged Postfix main.cf", "failed", "non-zero return code postconf: fatal: bad"),)
    assert PlanResult(hosts).exit_code == 1
    assert "**failed** at `Validate the staged Postfix main.cf`" in plan_markdown(PlanResult(hosts))


def test_no_matching_host_is_an_error() -> None:
    assert PlanResult(()).exit_code == 1
