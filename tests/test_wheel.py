"""The package as a user installs it: `python -m build` (the sdist, then the wheel built from
that sdist, as a release is made), installed with pip into a fresh virtualenv outside the
checkout, run from a directory that is not the checkout. render, dns, check and plan must
find templates/ and roles/ inside the installed package (issue 12 item 2: the wheel had
neither, and render failed with TemplateNotFound).

plan needs a host: it runs against a host whose SSH port is closed, so Ansible has parsed the
installed playbook and resolved the installed role before it reports the host unreachable
(exit 1, host named); `ansible-playbook --syntax-check` checks the installed playbook and role
on their own. check asks a real nsd on loopback serving the zones the installed dns printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.dns.conftest import serve, stop

NSD_ADDRESS = "127.0.0.161"  # a loopback address of its own (tests/dns .153, tests/check .154)
SHIPPED = {"templates": sorted(p.name for p in (ROOT / "templates").iterdir() if p.is_file())}
ROLE_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "roles").rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@dataclass(frozen=True)
class Installed:
    dist: Path
    venv: Path
    work: Path  # a directory outside the checkout, holding a copy of the all-in-one example

    def run(self, *args: str, check: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PROVISION_DEBUG")}, **(env or {})}
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        done = subprocess.run(list(args), cwd=self.work, env=env, capture_output=True, text=True, timeout=300)
        if check:
            assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def provision(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.venv / "bin" / "provision"), *args, check=check)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    top = tmp_path_factory.mktemp("wheel")
    assert not top.is_relative_to(ROOT)
    dist = top / "dist"
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], check=True, capture_output=True, timeout=300)
    venv = top / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    (wheel,) = dist.glob("provisioner-*.whl")
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    work = top / "work"
    work.mkdir()
    shutil.copytree(EXAMPLES / "all-in-one", work / "all-in-one", ignore=shutil.ignore_patterns("state", "build"))
    return Installed(dist, venv, work)


def test_the_sdist_and_the_wheel_carry_templates_and_roles(installed: Installed) -> None:
    (sdist,) = installed.dist.glob("provisioner-*.tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    (wheel,) = installed.dist.glob("provisioner-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED["templates"]:
        assert f"templates/{name}" in in_sdist
        assert f"provisioner/templates/{name}" in in_wheel
    for name in ROLE_FILES:
        assert name in in_sdist
        assert f"provisioner/{name}" in in_wheel
    assert "provisioner/apply/playbook.yml" in in_wheel
    assert not [n for n in in_wheel if "__pycache__" in n or n.endswith(".pyc")]
    # every module of the checkout is in the wheel (pyproject lists the packages by name: a new
    # package left out of the list imports from a checkout and fails only when installed)
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "provisioner").rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(modules - in_wheel) == []


def test_the_installed_package_finds_its_data_inside_itself(installed: Installed) -> None:
    code = "import provisioner; from provisioner.templating import TEMPLATES; from provisioner.apply.plan import ROLES; print(provisioner.__file__, TEMPLATES, ROLES)"
    lines = installed.run(str(installed.venv / "bin" / "python"), "-c", code, check=True).stdout.split()
    package, templates, roles = (Path(line) for line in lines)
    site_packages = package.parent.parent
    assert not package.is_relative_to(ROOT)
    assert templates == site_packages / "provisioner" / "templates" and templates.is_dir()
    assert roles == site_packages / "provisioner" / "roles" and (roles / "mailhost" / "tasks" / "main.yml").is_file()


def test_render_and_dns_from_the_installed_package(installed: Installed) -> None:
    done = installed.provision("render", "all-in-one/site.yaml", "-o", "build")
    assert done.returncode == 0, done.stderr
    build = installed.work / "build"
    assert "smtpd_tls_security_level" in (build / "mail" / "etc" / "postfix" / "main.cf").read_text()
    assert (build / "mail" / "etc" / "opendkim.conf").is_file()  # opendkim.conf.j2: the template the wheel lacked
    assert (build / "dns" / "sheet.html").is_file()
    zone = installed.provision("dns", "all-in-one/site.yaml", "--format", "zone")
    assert zone.returncode == 0, zone.stderr
    assert re.search(r"^_dmarc\.smallco\.example\. \d+ IN TXT \"v=DMARC1;", zone.stdout, re.M)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the with ends: nothing listens there


def test_plan_from_the_installed_package_runs_the_installed_role(installed: Installed) -> None:
    if not (installed.work / "build" / "manifest.json").exists():
        installed.provision("render", "all-in-one/site.yaml", "-o", "build", check=True)
    where = installed.run(str(installed.venv / "bin" / "python"), "-c", "from provisioner.apply.plan import ROLES, PLAYBOOK; print(ROLES, PLAYBOOK)", check=True)
    roles, playbook = where.stdout.split()
    playbook_bin = str(installed.venv / "bin" / "ansible-playbook")
    installed.run(playbook_bin, "--syntax-check", "-i", "localhost,", playbook, env={"ANSIBLE_ROLES_PATH": roles}, check=True)
    inventory = installed.work / "unreachable.yml"
    inventory.write_text(f"all:\n  hosts:\n    mail:\n      ansible_host: 127.0.0.1\n      ansible_port: {_closed_port()}\n      ansible_user: root\n")
    done = installed.provision("plan", "all-in-one/site.yaml", "-i", str(inventory), "--build", "build")
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert "## mail: unreachable" in text, text
    # the task it failed at is the installed role's first task: the role was found and loaded
    failed_at = re.search(r"failed\*\* at `([^`]+)`", text)
    assert failed_at, text
    assert f"name: {failed_at.group(1)}" in (Path(roles) / "mailhost" / "tasks" / "main.yml").read_text()


@pytest.fixture
def nameserver(installed: Installed) -> Iterator[str]:
    if shutil.which("nsd") is None:
        pytest.fail("nsd is not installed: run tests/run.sh, which installs it")
    if not (installed.work / "all-in-one" / "state").exists():
        installed.provision("render", "all-in-one/site.yaml", "-o", "build")
    done = installed.provision("dns", "all-in-one/site.yaml", "--format", "zone", "--standalone")
    assert done.returncode == 0, done.stderr
    zones = {m.group(1).rstrip("."): m.group(0) for m in re.finditer(r"^\$ORIGIN (\S+)\n(?:(?!\$ORIGIN ).*\n?)*", done.stdout, re.M)}
    assert "smallco.example" in zones
    proc = serve(zones, installed.work / "nsd", NSD_ADDRESS, 53)
    try:
        yield NSD_ADDRESS
    finally:
        stop(proc)


def test_check_from_the_installed_package_against_nsd(installed: Installed, nameserver: str) -> None:
    done = installed.provision("check", "all-in-one/site.yaml", "--nameserver", nameserver, "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["resolver"].startswith(nameserver), report["resolver"]
    seen: dict[tuple[str, str], set[str]] = {}
    for domain in report["domains"]:
        for finding in domain["findings"]:
            seen.setdefault((domain["domain"], finding["category"]), set()).add(finding["severity"])
    # what nsd serves is what the installed package published: its MX, SPF, DKIM and DMARC rows pass
    for category in ("MX", "SPF", "DKIM", "DMARC"):
        assert seen.get(("smallco.example", category)) == {"pass"}, (category, seen)
