"""examples/gitops/pipeline.yml, run here as GitHub Actions would run it (issue 12 item 3).

The workflow file is parsed and its steps executed in order, in a clone of a site repository
made for the test (the all-in-one example, its DKIM keys ansible-vault encrypted, as the
example's README says a site repository keeps them), with the environment the workflow and
its jobs and steps declare, secrets filled in, and $GITHUB_ENV, $GITHUB_PATH,
$GITHUB_STEP_SUMMARY, $RUNNER_TEMP and $HOME in temporary directories. `uses:` steps are
stood in for: checkout of the site is the clone, checkout of provisioner is a clone of this
repository at its HEAD commit (as PROVISIONER_COMMIT pins it), setup-python puts this
Python first on PATH, upload-artifact only checks its file.

How far this machine allows: everything up to Ansible. The site's host is 127.0.0.1 with a
closed SSH port (no test host is started here; tests/apply has one), so the plan job installs
provisioner from the commit with pip, writes the vault password and SSH key 0600, validates,
renders with the encrypted keys and runs the installed role until the host is unreachable:
the Plan step fails with exit 1 and the summary names the host. The 0/2/other exit-code
logic of both plan steps is run against a stand-in `provision` for every code.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES, ROOT

PIPELINE = EXAMPLES / "gitops" / "pipeline.yml"
VAULT_PASSWORD = "correct horse battery staple"
SECRETS = {"VAULT_PASSWORD": VAULT_PASSWORD, "SSH_PRIVATE_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----", "SMARTHOST_PASSWORD": ""}
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def workflow() -> dict[str, Any]:
    data = yaml.safe_load(PIPELINE.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


@dataclass
class Runner:
    """One job's runner: workspace, RUNNER_TEMP, HOME and what steps add to the environment."""

    workspace: Path
    temp: Path
    home: Path
    event: str
    commit: str
    env: dict[str, str] = field(default_factory=dict)  # from $GITHUB_ENV
    path: list[str] = field(default_factory=list)  # from $GITHUB_PATH, newest first
    summary: Path = field(init=False)

    def __post_init__(self) -> None:
        self.summary = self.temp / "step-summary.md"
        self.summary.touch()

    def expand(self, text: str, scope: Mapping[str, str]) -> str:
        def value(match: re.Match[str]) -> str:
            expr = match.group(1)
            kind, _, name = expr.partition(".")
            if kind == "secrets":
                return SECRETS[name]
            if kind == "env":
                return scope[name]
            known = {"github.event_name": self.event, "github.workspace": str(self.workspace), "runner.temp": str(self.temp)}
            if expr in known:
                return known[expr]
            raise AssertionError(f"the test does not stand in for ${{{{ {expr} }}}}: teach it, or keep the example simpler")

        return EXPRESSION.sub(value, text)

    def run_step(self, step: dict[str, Any], scope: Mapping[str, str], fake_bin: Path | None = None) -> subprocess.CompletedProcess[str]:
        env_file, path_file = self.temp / "github-env", self.temp / "github-path"
        env_file.write_text("")
        path_file.write_text("")
        step_env = {k: self.expand(str(v), scope) for k, v in (step.get("env") or {}).items()}
        search = [*([str(fake_bin)] if fake_bin else []), *self.path, str(self.temp / "python-bin"), "/usr/local/bin", "/usr/bin", "/bin"]
        env = {
            **{k: os.environ[k] for k in ("LANG", "LC_ALL", "PIP_CERT", "PIP_FIND_LINKS", "PIP_DEFAULT_TIMEOUT") if k in os.environ},
            **scope,
            **self.env,
            **step_env,
            "HOME": str(self.home),
            "PATH": ":".join(search),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_ENV": str(env_file),
            "GITHUB_PATH": str(path_file),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_EVENT_NAME": self.event,
            "CI": "true",
        }
        script = self.expand(step["run"], {**scope, **step_env})
        # GitHub's default shell for run: bash --noprofile --norc -eo pipefail {0}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=self.workspace, env=env, capture_output=True, text=True, timeout=600)
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            self.env[name] = value
        self.path[:0] = reversed(path_file.read_text().splitlines())
        return done

    def uses(self, step: dict[str, Any], scope: Mapping[str, str]) -> None:
        action = step["uses"].split("@")[0]
        options = {k: self.expand(str(v), scope) for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout" and "repository" in options:
            assert re.fullmatch(r"[0-9a-f]{40}", options["ref"]), "pin provisioner by a full commit id"
            target = self.workspace / options["path"]
            subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True, capture_output=True)
            subprocess.run(["git", "-C", str(target), "checkout", "-q", "--detach", options["ref"]], check=True, capture_output=True)
        elif action == "actions/checkout":
            assert (self.workspace / ".git").is_dir()  # the clone of the site repository
        elif action == "actions/setup-python":
            bin_dir = self.temp / "python-bin"
            bin_dir.mkdir(exist_ok=True)
            for name in ("python", "python3"):
                if not (bin_dir / name).exists():
                    (bin_dir / name).symlink_to(sys.executable)
        elif action == "actions/upload-artifact":
            pass
        else:
            raise AssertionError(f"the test does not stand in for {action}")


def job_scope(data: dict[str, Any], job: dict[str, Any], runner: Runner) -> dict[str, str]:
    scope = {k: str(v) for k, v in data.get("env", {}).items()}
    scope["PROVISIONER_COMMIT"] = runner.commit  # the pinned commit: here, this repository's HEAD
    scope.update({k: runner.expand(str(v), scope) for k, v in job.get("env", {}).items()})
    return scope


def job_runs_on(job: dict[str, Any], event: str) -> bool:
    found = re.fullmatch(r"github\.event_name == '(\w+)'", job["if"])
    assert found, f"the test reads only `github.event_name == '...'` conditions, not {job['if']!r}"
    return found.group(1) == event


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ran:
    runner: Runner
    scope: dict[str, str]
    steps: list[tuple[dict[str, Any], subprocess.CompletedProcess[str] | None]]


def site_repository(top: Path) -> Path:
    """A site repository as the example README describes: site.yaml, state/ vault-encrypted, known_hosts."""
    repo = top / "site-repo"
    repo.mkdir()
    text = (EXAMPLES / "all-in-one" / "site.yaml").read_text()
    text = text.replace("    mx_priority: 10\n", f"    mx_priority: 10\n    ansible: {{host: 127.0.0.1, port: {_closed_port()}, user: root}}\n", 1)
    (repo / "site.yaml").write_text(text)
    (repo / "known_hosts").write_text("")
    (repo / ".gitignore").write_text("build/\n")
    password = top / "vault-pass-for-setup"
    password.write_text(VAULT_PASSWORD + "\n")
    password.chmod(0o600)
    keys = subprocess.run([sys.executable, "-m", "provisioner.cli", "keys", "site.yaml", "--vault-password-file", str(password)], cwd=repo, capture_output=True, text=True)
    assert keys.returncode == 0, keys.stderr
    private = [p for p in (repo / "state").rglob("*") if p.is_file() and p.read_bytes().startswith(b"$ANSIBLE_VAULT")]
    assert private, "the keys in state/ are vault-encrypted"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.example", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "site"], check=True)
    return repo


@pytest.fixture(scope="module")
def plan_job(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    top = tmp_path_factory.mktemp("gitops")
    repo = site_repository(top)
    workspace = top / "workspace"
    subprocess.run(["git", "clone", "-q", str(repo), str(workspace)], check=True)
    (top / "runner-temp").mkdir()
    (top / "home").mkdir()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    runner = Runner(workspace, top / "runner-temp", top / "home", "pull_request", commit)
    data = workflow()
    job = data["jobs"]["plan"]
    assert job_runs_on(job, "pull_request") and not job_runs_on(data["jobs"]["apply"], "pull_request")
    scope = job_scope(data, job, runner)
    steps: list[tuple[dict[str, Any], subprocess.CompletedProcess[str] | None]] = []
    failed = False
    for step in job["steps"]:
        if failed and "always()" not in str(step.get("if", "")):
            steps.append((step, None))
            continue
        if "uses" in step:
            runner.uses(step, scope)
            steps.append((step, None))
            continue
        done = runner.run_step(step, scope)
        steps.append((step, done))
        failed = failed or done.returncode != 0
    return Ran(runner, scope, steps)


def _step(ran: Ran, name_or_command: str) -> subprocess.CompletedProcess[str]:
    for step, done in ran.steps:
        if name_or_command in (step.get("name"), step.get("run", "").strip()):
            assert done is not None, f"{name_or_command} did not run"
            return done
    raise AssertionError(f"no step {name_or_command!r}")


def test_provisioner_is_installed_from_the_repository_never_from_pypi() -> None:
    text = PIPELINE.read_text()
    installs = re.findall(r"pip\"? install[^\n]*", text)
    assert installs and all(re.search(r"install (--quiet )?\./\.provisioner$", line) for line in installs), installs
    assert "pip install provisioner" not in text


def test_the_plan_job_installs_validates_renders_and_reaches_the_host(plan_job: Ran) -> None:
    install = _step(plan_job, "Install provisioner from the pinned commit")
    assert install.returncode == 0, install.stderr
    installed = plan_job.runner.temp / "venv" / "bin" / "provision"
    assert installed.exists() and str(installed.parent) in plan_job.runner.path
    located = subprocess.run([str(installed.parent / "python"), "-c", "import provisioner; print(provisioner.__file__)"], cwd=plan_job.runner.workspace, capture_output=True, text=True, check=True)
    assert not Path(located.stdout.strip()).is_relative_to(ROOT)  # the installed package, not this checkout

    secrets = _step(plan_job, "Vault password and SSH key (private files, outside the checkout)")
    assert secrets.returncode == 0, secrets.stderr
    vault_file = Path(plan_job.runner.env["ANSIBLE_VAULT_PASSWORD_FILE"])
    assert not vault_file.is_relative_to(plan_job.runner.workspace)
    for private in (vault_file, plan_job.runner.home / ".ssh" / "id_ed25519"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert stat.S_IMODE((plan_job.runner.home / ".ssh").stat().st_mode) == 0o700

    validate = _step(plan_job, "provision validate site.yaml")
    assert validate.returncode == 0, validate.stderr

    plan = _step(plan_job, "Plan")
    summary = plan_job.runner.summary.read_text()
    # rendered with the encrypted keys (the vault password reached it), then Ansible ran the
    # installed role until the host: unreachable is an error, exit 1, and the job fails
    assert (plan_job.runner.workspace / "build" / "manifest.json").is_file()
    assert "## mail: unreachable" in summary, summary + plan.stderr
    assert plan.returncode == 1, plan.stderr
    assert "plan failed with exit code 1" in plan.stderr
    assert VAULT_PASSWORD not in summary + plan.stdout + plan.stderr


def test_without_the_vault_password_render_stops_at_the_encrypted_keys(plan_job: Ran) -> None:
    """The bug the example had: plan re-renders, and without the password it cannot read state/."""
    env = {**os.environ, "PATH": f"{plan_job.runner.temp / 'venv' / 'bin'}:{os.environ['PATH']}"}
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    done = subprocess.run(["provision", "render", "site.yaml", "-o", str(plan_job.runner.temp / "b")], cwd=plan_job.runner.workspace, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "vault" in done.stderr.lower(), done.stderr


def test_the_apply_job_sets_up_as_the_plan_job_and_does_not_apply_on_error(plan_job: Ran) -> None:
    """Its setup steps are the plan job's (run above); its plan step, run for real, stops at the
    unreachable host with exit 1 and never reaches apply."""
    data = workflow()
    apply_job, plan_steps = data["jobs"]["apply"], data["jobs"]["plan"]["steps"]
    assert job_runs_on(apply_job, "push")
    first_command = next(i for i, s in enumerate(plan_steps) if re.search(r"^\s*provision\s", s.get("run", ""), re.M))
    setup = plan_steps[:first_command]
    assert len(setup) >= 5
    assert apply_job["steps"][: len(setup)] == setup
    assert apply_job["env"] == data["jobs"]["plan"]["env"]
    step = next(s for s in apply_job["steps"] if s.get("name") == "Plan, then apply if there are changes")
    done = plan_job.runner.run_step(step, plan_job.scope)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "plan failed with exit code 1" in done.stderr
    plan = (plan_job.runner.workspace / "plan.json").read_text()
    assert '"unreachable"' in plan or "unreachable" in plan


def _fake_provision(bin_dir: Path, plan_code: int, log: Path) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "provision"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\ncase "$1" in plan) echo "# Plan"; exit {plan_code} ;; apply) exit 0 ;; esac\nexit 99\n')
    script.chmod(0o755)


@pytest.mark.parametrize("code", [0, 1, 2, 3, 64, 70, 130])
def test_the_plan_steps_accept_0_and_2_only(code: int, tmp_path: Path) -> None:
    """0 and 2 are a plan; 1 (error), 64 (a typo in the workflow), 70 (a bug) and the rest fail the
    step, and the apply job applies only on 2 (the exit-code logic, against a stand-in provision)."""
    data = workflow()
    for d in ("ws", "temp", "home"):
        (tmp_path / d).mkdir()
    runner = Runner(tmp_path / "ws", tmp_path / "temp", tmp_path / "home", "pull_request", "0" * 40)
    log = tmp_path / "calls"
    _fake_provision(tmp_path / "bin", code, log)
    plan_step = next(s for s in data["jobs"]["plan"]["steps"] if s.get("name") == "Plan")
    done = runner.run_step(plan_step, job_scope(data, data["jobs"]["plan"], runner), fake_bin=tmp_path / "bin")
    assert (done.returncode == 0) == (code in (0, 2)), (code, done.returncode, done.stderr)
    if code not in (0, 2):
        assert done.returncode == code
    assert "# Plan" in runner.summary.read_text()

    log.write_text("")
    apply_step = next(s for s in data["jobs"]["apply"]["steps"] if s.get("name") == "Plan, then apply if there are changes")
    done = runner.run_step(apply_step, job_scope(data, data["jobs"]["apply"], runner), fake_bin=tmp_path / "bin")
    calls = log.read_text().splitlines()
    assert (done.returncode == 0) == (code in (0, 2)), (code, done.returncode, done.stderr)
    assert calls == (["plan site.yaml --format json", "apply site.yaml --yes"] if code == 2 else ["plan site.yaml --format json"])


def test_the_readme_describes_the_pipeline() -> None:
    text = (EXAMPLES / "gitops" / "README.md").read_text()
    for words in ("PROVISIONER_COMMIT", "VAULT_PASSWORD", "64"):
        assert words in text, words
    assert shutil.which("git")
