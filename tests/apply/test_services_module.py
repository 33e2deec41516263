"""roles/mailhost/library/mailhost_services.py, the role's service keeper, against a stand-in
`systemctl` on PATH that keeps unit states in a JSON file and logs every call (a fake for this
unit test only; the booted apply tests run the module against real systemd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loaders import role_module, role_module_utils, run_role_module

SYSTEMCTL = r"""#!PYTHON
import json, os, sys
state_file = os.environ["FAKE_UNITS"]
units = json.load(open(state_file))
args = sys.argv[1:]
with open(state_file + ".log", "a") as log:
    log.write(" ".join(args) + "\n")
verb = args[0]
names = args[args.index("--") + 1:]
if verb == "show":
    blocks = []
    for name in names:
        u = units.get(name, {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""})
        blocks.append("\n".join(f"{k}={v}" for k, v in [("Id", name), *u.items()]))
    print("\n\n".join(blocks))
    sys.exit(0)
for name in names:
    if name not in units or units[name].get("broken"):
        print(f"Failed to {verb} {name}: Unit {name} failed.", file=sys.stderr)
        sys.exit(1)
    if verb == "start":
        units[name]["ActiveState"] = "active"
    elif verb == "enable":
        units[name]["UnitFileState"] = "enabled"
    elif verb == "disable":
        units[name]["UnitFileState"] = "disabled"
        if "--now" in args:
            units[name]["ActiveState"] = "inactive"
json.dump(units, open(state_file, "w"))
"""


services = role_module("mailhost_services")
units_util = role_module_utils()["mailhost_units"]  # shared with mailhost_stage's probe


@pytest.fixture
def units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write the units' states; returns (write, calls): calls() lists the systemctl calls so far."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "systemctl"
    tool.write_text(SYSTEMCTL.replace("PYTHON", sys.executable))
    tool.chmod(0o755)
    state = tmp_path / "units.json"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_UNITS", str(state))

    def write(**states: tuple[str, str]) -> None:
        state.write_text(json.dumps({f"{n}.service": {"LoadState": "loaded", "ActiveState": a, "UnitFileState": f} for n, (a, f) in states.items()}))

    def calls() -> list[str]:
        log = Path(f"{state}.log")
        return log.read_text().splitlines() if log.exists() else []

    return write, calls


DEBIAN_13 = {"rspamd": "rspamd", "dovecot": "dovecot", "postfix": "postfix"}
ORDER = ["rspamd", "dovecot", "postfix"]


def test_a_host_where_everything_runs_is_one_systemctl_show_and_no_change(units) -> None:
    write, calls = units
    write(rspamd=("active", "enabled"), dovecot=("active", "enabled"), postfix=("active", "enabled"))
    report, changed = services.run({"action": "ensure", "services": ORDER, "units": DEBIAN_13})
    assert not changed and report["start"] == [] and report["started"] == []
    assert [c.split()[0] for c in calls()] == ["show"]


def test_units_not_active_start_in_the_given_order_and_disabled_ones_are_enabled(units) -> None:
    write, calls = units
    write(rspamd=("inactive", "enabled"), dovecot=("active", "disabled"), postfix=("failed", "enabled"))
    report, changed = services.run({"action": "ensure", "services": ORDER, "units": DEBIAN_13})
    assert changed
    assert report["started"] == ["rspamd", "postfix"]  # dovecot ran: the handlers may reload it
    assert report["start"] == ["rspamd", "postfix", "dovecot"]
    assert calls()[1:] == ["start -- rspamd.service", "start -- postfix.service", "enable -- dovecot.service"]
    again, changed = services.run({"action": "ensure", "services": ORDER, "units": DEBIAN_13})
    assert not changed and again["start"] == []


def test_debian_12_starts_postfix_at_its_instance_and_enables_the_package_unit(units) -> None:
    write, calls = units
    write(**{"postfix@-": ("failed", "static"), "postfix": ("active", "disabled")})
    report, _ = services.run({"action": "ensure", "services": ["postfix"], "units": {"postfix": "postfix@-"}})
    assert report["started"] == ["postfix"]
    assert calls()[1:] == ["start -- postfix@-.service", "enable -- postfix.service"]


def test_check_mode_says_what_it_would_do_and_does_nothing(units) -> None:
    write, calls = units
    write(rspamd=("inactive", "disabled"), dovecot=("active", "enabled"), postfix=("active", "masked"))
    report, changed = services.run({"action": "ensure", "services": ORDER, "units": DEBIAN_13}, check=True)
    assert changed and report["start"] == ["rspamd"]  # a masked unit is someone's decision: left alone
    assert [c.split()[0] for c in calls()] == ["show"]


def test_stop_disables_a_retired_unit_and_leaves_one_never_installed_alone(units) -> None:
    write, calls = units
    write(opendkim=("active", "enabled"))
    report, changed = services.run({"action": "stop", "services": ["opendkim", "ghost"], "units": {"opendkim": "opendkim", "ghost": "ghost"}})
    assert changed and report["stop"] == ["opendkim"]
    assert calls()[1:] == ["disable --now -- opendkim.service"]
    again, changed = services.run({"action": "stop", "services": ["opendkim"], "units": {"opendkim": "opendkim"}})
    assert not changed and again["stop"] == []


def test_a_unit_that_will_not_start_fails_naming_it(units) -> None:
    write, _ = units
    write(dovecot=("failed", "enabled"), postfix=("inactive", "enabled"))
    state = Path(os.environ["FAKE_UNITS"])
    data = json.loads(state.read_text())
    data["dovecot.service"]["broken"] = True
    state.write_text(json.dumps(data))
    with pytest.raises(services.ServiceError, match=r"start -- dovecot.service: Failed to start dovecot.service"):
        services.run({"action": "ensure", "services": ["dovecot", "postfix"], "units": {"dovecot": "dovecot", "postfix": "postfix"}})
    with pytest.raises(services.ServiceError, match="no unit named for service"):
        services.run({"action": "ensure", "services": ["nginx"], "units": {}})


def test_run_as_ansible_runs_it(units, tmp_path: Path) -> None:
    write, _ = units
    write(dovecot=("inactive", "enabled"))
    args = {"action": "ensure", "services": ["dovecot"], "units": {"dovecot": "dovecot"}, "_ansible_check_mode": True}
    code, result, stderr = run_role_module("mailhost_services", args, tmp_path / "args.json")
    assert code == 0 and result["changed"] is True and result["provisioner_report"]["started"] == ["dovecot"], (result, stderr)


def _entered(seconds_ago: float) -> str:
    return str(int((time.clock_gettime(time.CLOCK_MONOTONIC) - seconds_ago) * 1e6))


def test_settle_stops_the_retired_and_names_what_does_not_run(units) -> None:
    write, calls = units
    write(opendkim=("active", "enabled"), dovecot=("active", "enabled"), postfix=("failed", "enabled"))
    state = Path(os.environ["FAKE_UNITS"])
    data = json.loads(state.read_text())
    data["dovecot.service"]["ActiveEnterTimestampMonotonic"] = _entered(600)
    state.write_text(json.dumps(data))
    params = {
        "action": "settle",
        "services": ["dovecot", "postfix"],
        "units": {"dovecot": "dovecot", "postfix": "postfix"},
        "retired": {"opendkim": "opendkim"},
        "wait": 0,
    }
    report, changed = services.run(params)
    assert changed and report["stop"] == ["opendkim"]
    assert report["dead"] == ["postfix (postfix.service: failed)"]
    assert "disable --now -- opendkim.service" in calls()


def test_settle_waits_for_a_unit_just_started_and_a_long_running_host_is_one_show(units) -> None:
    write, calls = units
    write(dovecot=("active", "enabled"))
    state = Path(os.environ["FAKE_UNITS"])
    data = json.loads(state.read_text())
    data["dovecot.service"]["ActiveEnterTimestampMonotonic"] = _entered(0.5)
    state.write_text(json.dumps(data))
    params = {"action": "settle", "services": ["dovecot"], "units": {"dovecot": "dovecot"}, "wait": 0}
    report, _ = services.run(params)
    assert report["dead"] == ["dovecot (dovecot.service: active for less than 3 s)"]  # might yet die
    report, _ = services.run({**params, "wait": 5})  # asked again each second until it has run 3 s
    assert report["dead"] == []
    data["dovecot.service"]["ActiveEnterTimestampMonotonic"] = _entered(3600)
    state.write_text(json.dumps(data))
    before = len(calls())
    report, changed = services.run({**params, "wait": 10})
    assert report["dead"] == [] and not changed and len(calls()) == before + 1  # one systemctl show
    planned, _ = services.run({**params, "wait": 10}, check=True)
    assert planned["dead"] == [] and len(calls()) == before + 1  # a plan neither waits nor asks


@pytest.mark.parametrize(
    ("states", "pending"),
    [
        ({}, None),  # every unit active and enabled, the retired one stopped: converged
        ({"dovecot": ("failed", "enabled")}, ("start", "dovecot")),
        ({"rspamd": ("active", "disabled")}, ("start", "rspamd")),
        ({"opendkim": ("active", "disabled")}, ("stop", "opendkim")),
        ({"opendkim": ("inactive", "enabled")}, ("stop", "opendkim")),
    ],
)
def test_verify_changes_nothing_and_says_what_ensure_or_stop_would_do(units, states: dict[str, tuple[str, str]], pending: tuple[str, str] | None) -> None:
    """The probe's look at the services on a re-apply (module_utils/mailhost_units.verify): a host
    is done only where nothing would start, be enabled or be stopped; one `systemctl show`."""
    write, calls = units
    write(
        **{"rspamd": ("active", "enabled"), "dovecot": ("active", "enabled"), "postfix": ("active", "static"), "opendkim": ("inactive", "disabled"), **states}
    )
    report = units_util.verify({name: DEBIAN_13[name] for name in ORDER}, {"opendkim": "opendkim"})
    assert report["provisioner"] == "verify"
    assert report["converged"] is (pending is None), report
    if pending:
        assert report[pending[0]] == [pending[1]], report
    assert [c.split()[0] for c in calls()] == ["show"]  # read-only, whatever it finds, in one call


# ------------------------------------------------------------------------------ recycle (rspamd)


def cache(directory: Path, entries: dict[str, float]) -> Path:
    """A hyperscan cache directory: file name -> mtime."""
    directory.mkdir(exist_ok=True)
    for name, mtime in entries.items():
        (directory / name).write_bytes(b"db")
        os.utime(directory / name, (mtime, mtime))
    return directory


@pytest.mark.parametrize(
    ("entries", "state"),
    [
        ({}, (False, False)),  # nothing compiled yet
        ({"a.hs": 200, "b.hs.new": 201}, (False, False)),  # hs_helper is still writing
        ({"a.hs": 200, "b.hs": 201, "a.hs.unser": 202}, (False, True)),  # compiled, b not loaded yet
        ({"a.hs": 200, "b.hs": 201, "a.hs.unser": 202, "b.hs.unser": 202}, (True, True)),  # compiled and loaded: restart
        ({"a.hs": 50, "a.hs.unser": 60}, (True, False)),  # the cache was there before the start: nothing to do
        ({"a.hs": 200, "a.hs.unser": 150}, (False, True)),  # an old mapping of a new database
    ],
)
def test_cache_state_says_when_the_cache_is_loaded_and_whether_it_was_compiled_since(
    tmp_path: Path, entries: dict[str, float], state: tuple[bool, bool]
) -> None:
    assert services.cache_state(str(cache(tmp_path / "cache", entries)), since=100) == state
    assert services.cache_state(str(tmp_path / "none"), since=100) == (False, False)


def test_started_at_is_when_the_process_started() -> None:
    before = time.time()
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert before - 1 <= services.started_at(child.pid) <= time.time() + 1
    finally:
        child.kill()
        child.wait()


def test_children_titled_finds_the_helper_among_the_main_process_children(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    rows = [
        (10, 1, b"rspamd: main process\0"),
        (11, 10, b"rspamd: normal process (localhost:11333)\0"),
        (12, 10, b"rspamd: hs_helper process\0"),
        (13, 1, b"rspamd: hs_helper process\0"),
    ]
    for pid, ppid, title in rows:
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "stat").write_text(f"{pid} (rspamd) S {ppid} 1 1 0 -1\n")
        (proc / str(pid) / "cmdline").write_bytes(title)
    (proc / "self").mkdir()
    assert list(services.children_titled(10, [services.HS_HELPER], str(proc))) == [12]
    assert services.children_titled(11, [services.HS_HELPER], str(proc)) == {}


@pytest.mark.parametrize(
    ("entries", "restarted", "waited"),
    [
        ({"a.hs": 200, "a.hs.unser": 201}, True, False),  # compiled after the start, loaded: restart at once
        ({"a.hs": 200}, True, True),  # compiled, never loaded within `wait`: restart anyway
        ({"a.hs": 50, "a.hs.unser": 60}, False, False),  # valid before the start: nothing
        ({}, False, True),  # nothing compiled within `wait`: left as it is
    ],
)
def test_recycle_restarts_once_only_where_the_cache_was_compiled_after_the_start(
    units, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: dict[str, float], restarted: bool, waited: bool
) -> None:
    """Workers that started before the hyperscan cache existed hold PCRE's copies: a restart once
    the cache is loaded (the new workers find it) gives the memory back."""
    write, calls = units
    write(rspamd=("active", "enabled"))
    state = Path(os.environ["FAKE_UNITS"])
    data = json.loads(state.read_text())
    data["rspamd.service"]["MainPID"] = "4000"
    state.write_text(json.dumps(data))
    monkeypatch.setattr(services, "children_titled", lambda parent, prefixes: {4242: "rspamd: hs_helper process"} if parent == 4000 else {})
    monkeypatch.setattr(services, "started_at", lambda pid: 101.0)
    directory = cache(tmp_path / "cache", entries)
    args = {"action": "recycle", "services": ["rspamd"], "units": {"rspamd": "rspamd"}, "cache_dir": str(directory), "wait": 2 if waited else 30}
    started = time.monotonic()
    report, changed = services.run(args)
    assert time.monotonic() - started < 10  # it waits only while the cache is not settled
    assert changed is restarted and report["restarted"] == (["rspamd"] if restarted else [])
    assert report["waited"] == (["rspamd"] if waited else [])
    assert ("restart -- rspamd.service" in calls()) is restarted


# ------------------------------------------------------------------- the probe's look (verify)


@pytest.mark.parametrize(
    ("systemd", "clean", "stopped", "converged"),
    [(True, True, None, True), (True, True, "dovecot", False), (True, False, None, False), (False, True, None, False)],
)
def test_the_probe_reads_the_services_only_of_a_clean_host_under_systemd(
    units, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, systemd: bool, clean: bool, stopped: str | None, converged: bool
) -> None:
    """mailhost_stage.probe asks verify (one `systemctl show`) only where nothing else is left to
    do and systemd is PID 1; its `converged` is what ends a host's play early."""
    write, calls = units
    write(**{"rspamd": ("active", "enabled"), "dovecot": ("active", "enabled"), "postfix": ("active", "static"), **({stopped: ("inactive", "enabled")} if stopped else {})})
    stage = role_module("mailhost_stage")
    monkeypatch.setattr(stage, "SYSTEMD_RUNTIME", str(tmp_path if systemd else tmp_path / "no-such-dir"))
    script = tmp_path / "junk.sieve"
    script.write_text("keep;\n")
    if clean:
        (tmp_path / "junk.svbin").write_bytes(b"compiled")
    args = {"files": [], "tables": [], "reload_on": {}, "packages": ["dpkg"], "sieve": [str(script)], "units": DEBIAN_13, "retired": {}, "verify": True}
    report = stage.probe(args)
    assert (report["init"], report["clean"], report["services"]["converged"]) == ("systemd" if systemd else "other", clean, converged), report
    assert report["services"]["start"] == ([stopped] if stopped else [])
    assert [c.split()[0] for c in calls()] == (["show"] if systemd and clean else [])
