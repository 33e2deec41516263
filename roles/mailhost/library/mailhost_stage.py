#!/usr/bin/python
"""The mailhost role's file mover: an Ansible module run on the host.

It decides nothing about mail: the bundle (a tar the provisioner built from the rendered tree
and its manifest) already carries every path, mode and owner. This module only compares,
extracts, compiles the lookup tables Postfix is told about, and replaces live files atomically.
Its results hold paths and reasons, never file contents or digests. A secret file's entry
carries `hmac_sha256` under this host's `digest_key` (never a plain sha256, which would let
anyone who sees it test guesses of the secret offline); `digest_key` is a no_log argument.
It runs as root: every file and directory it makes gets its mode explicitly, whatever the
umask, and a temporary file has a random name made with O_EXCL (a link planted there is never
followed).

Every result carries `provisioner_report`: {"provisioner": ACTION, ...}, the structured summary
provisioner.apply reads (through the role's report tasks), whatever the tasks are called.

`probe()` is not an action of the module: the role's first task (action_plugins/mailhost_probe.py)
runs it on the host as a plain python3 program, without Ansible's module loader, since it runs
on every host at every apply. It uses only the standard library and module_utils/mailhost_units.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ansible.module_utils.mailhost_units import ServiceError, verify

DOCUMENTATION = r"""
module: mailhost_stage
short_description: Compare, stage, validate-view, compile and install a provisioner bundle
description:
  - inspect compares the live files with the manifest entries (read-only, also in check mode).
  - stage extracts the bundle into a fresh staging directory.
  - view copies the staging tree with every shipped path pointing into the copy (for validators).
  - compile runs postmap/postalias on the staged lookup tables whose source changed.
  - install replaces each live file that differs from its staged copy, atomically.
  - prepare makes the directories and empty files the services need (mail store, sockets'
    directories, a log, the state directory) with their owner, group and mode, or corrects them.
  - In check mode nothing is written; the result says what would be done.
    In diff mode each differing file gets a diff entry naming why (never its content).
options:
  action: {type: str, required: true, choices: [inspect, stage, view, compile, install, prepare]}
  files: {type: list, elements: dict, default: [], description: manifest entries (inspect)}
  tables: {type: list, elements: str, default: [], description: live paths of the Postfix lookup tables}
  reload_on: {type: dict, default: {}, description: service -> live path prefixes it reads}
  restart_on: {type: dict, default: {}, description: service -> live path prefixes whose change restarts it}
  restart_postconf: {type: dict, default: {}, description: Postfix parameter -> the build's value (null for the default); a change restarts Postfix}
  digest_key: {type: str, no_log: true, description: hex key of this host's secret files' hmac_sha256}
  bundle: {type: path, description: the shipped tar (stage)}
  staged: {type: path, description: the staging directory (stage, view, compile, install)}
  view: {type: path, description: where view makes its copy}
  paths: {type: list, elements: dict, default: [], description: "prepare: {path, kind (directory or file), owner, group, mode}"}
"""

RETURN = r"""
provisioner_report:
  description: The action's summary; always has provisioner (the action's name).
  returned: always
  type: dict
  sample: {"provisioner": "inspect", "files": [{"path": "/etc/postfix/main.cf", "why": "content"}], "tables": [], "reload": ["postfix"], "restart": []}
"""

SUFFIX = {"lmdb": ".lmdb", "hash": ".db", "btree": ".db", "cdb": ".cdb"}
ACTIONS = ("inspect", "stage", "view", "compile", "install", "prepare")


class StageError(Exception):
    """A refusal or failure the task reports as its message (no contents in it)."""


def sha256(path: str, key: bytes | None = None) -> str:
    """Hex sha256 of the file, or its HMAC-SHA256 under `key` (RFC 2104)."""
    digest = hashlib.sha256() if key is None else hmac.new(key, digestmod=hashlib.sha256)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def same_content(live: str, want: Mapping[str, Any], key: bytes | None) -> bool:
    if "hmac_sha256" in want:  # a secret file: only the keyed digest is known here
        return key is not None and hmac.compare_digest(sha256(live, key), str(want["hmac_sha256"]))
    return sha256(live) == want["sha256"]


def difference(live: str, want: Mapping[str, Any], key: bytes | None = None) -> str | None:
    """Why the live file is not what the entry wants, or None.
    want: sha256 (or hmac_sha256 under `key`), mode, owner, group."""
    try:
        info = os.lstat(live)
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(info.st_mode):
        return "not a file"
    if not same_content(live, want, key):
        return "content"
    if f"{stat.S_IMODE(info.st_mode):04o}" != want["mode"]:
        return "mode"
    if (owner_name(info.st_uid), group_name(info.st_gid)) != (want["owner"], want["group"]):
        return "owner"
    return None


def owner_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def make_dirs(path: str, mode: int) -> None:
    """Make `path` and its missing parents with exactly `mode` (chmod after mkdir defeats the
    umask); existing directories are left as they are."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        os.mkdir(directory, mode)
        os.chmod(directory, mode)


def services_for(paths: set[str] | Sequence[str], reload_on: Mapping[str, Sequence[str]]) -> list[str]:
    return sorted(service for service, prefixes in reload_on.items() if any(p.startswith(tuple(prefixes)) for p in paths))


def postconf(config_dir: str, name: str, default: bool = False) -> str:
    flags = ["-d", "-h"] if default else ["-h"]
    return subprocess.run(["postconf", "-c", config_dir, *flags, name], check=True, capture_output=True, text=True).stdout.strip()


def postconf_words(value: str) -> str:
    """A list-valued parameter compared as its words (postconf(5): separated by space or comma)."""
    return " ".join(value.replace(",", " ").split())


def postconf_changes(live_dir: str, wanted: Mapping[str, str | None]) -> list[str]:
    """The parameters of `wanted` (value, or None for Postfix's default) whose live value differs.
    Without a live main.cf nothing differs: Postfix is not running it yet and will be started."""
    if not wanted or not os.path.exists(os.path.join(live_dir, "main.cf")):
        return []
    changed = []
    for name, value in sorted(wanted.items()):
        want = postconf(live_dir, name, default=True) if value is None else value
        if postconf_words(postconf(live_dir, name)) != postconf_words(want):
            changed.append(name)
    return changed


def restarts(paths: set[str], live_postconf: Sequence[str], args: Mapping[str, Any]) -> list[str]:
    """Services a change of `paths` (or of a restart parameter of Postfix) restarts."""
    found = set(services_for(paths, args.get("restart_on") or {}))
    if live_postconf:
        found.add("postfix")
    return sorted(found)


def table_suffix(config_dir: str) -> str:
    return SUFFIX.get(postconf(config_dir, "default_database_type"), ".db")


def diff_entry(path: str, why: str) -> dict[str, str]:
    """A diff Ansible can show that names the path and the reason, never a byte of content."""
    return {"before_header": path, "after_header": path, "before": f"{path}: {why}\n", "after": f"{path}: as the build has it\n"}


# ------------------------------------------------------------------------------ actions


def inspect(args: Mapping[str, Any]) -> dict[str, Any]:
    """Read-only: files whose live copy differs, tables to compile, services to reload."""
    key = bytes.fromhex(args["digest_key"]) if args.get("digest_key") else None
    files = [{"path": f["path"], "why": why} for f in args["files"] for why in [difference(f["path"], f, key)] if why]
    changed = {f["path"] for f in files}
    try:
        suffix: str | None = table_suffix("/etc/postfix")
    except (OSError, subprocess.CalledProcessError):
        suffix = None  # Postfix is not installed yet: every table will be compiled
    tables = []
    for table in args["tables"]:
        db = table + (suffix or "")
        if suffix is None or table in changed or not os.path.exists(db) or os.path.getmtime(db) < os.path.getmtime(table):
            tables.append(table)
    wanted = args.get("restart_postconf") or {}
    moved = postconf_changes("/etc/postfix", wanted) if "/etc/postfix/main.cf" in changed else []
    restart = restarts(changed, moved, args)
    reload = [name for name in services_for(changed | set(tables), args["reload_on"]) if name not in restart]
    return {"provisioner": "inspect", "files": files, "tables": tables, "reload": reload, "restart": restart, "postconf_changed": moved}


def bundle_members(bundle: str) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo, str]]:
    """Each member of the bundle with its normalised relative name; refuses anything else."""
    with tarfile.open(bundle) as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if not member.isreg() or name.startswith(("/", "..")):
                raise StageError(f"bundle holds {member.name!r}, which is not a relative regular file")
            yield tar, member, name


def stage(bundle: str, staged: str, check: bool = False) -> dict[str, Any]:
    """Extract the bundle into a fresh staging tree, owners and modes as the tar says."""
    if check:
        return {"provisioner": "stage", "files": sum(1 for _ in bundle_members(bundle))}
    import grp
    import pwd

    shutil.rmtree(staged, ignore_errors=True)
    os.makedirs(staged, mode=0o700)
    count = 0
    for tar, member, name in bundle_members(bundle):
        target = os.path.join(staged, name)
        make_dirs(os.path.dirname(target), 0o755)
        source = tar.extractfile(member)
        assert source is not None  # a regular member always has data
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out)
            os.fchown(out.fileno(), pwd.getpwnam(member.uname).pw_uid, grp.getgrnam(member.gname).gr_gid)
            os.fchmod(out.fileno(), member.mode)
        count += 1
    return {"provisioner": "stage", "files": count}


def staged_files(staged: str) -> Iterator[tuple[str, str]]:
    for directory, _, names in os.walk(staged):
        for name in names:
            path = os.path.join(directory, name)
            yield path, "/" + os.path.relpath(path, staged)


def view(staged: str, view_dir: str, check: bool = False) -> dict[str, Any]:
    """A copy of the staged tree in which every shipped absolute path points into the copy,
    so validators that open the files a configuration names (opendkim -n) read the new ones."""
    if check:
        return {"provisioner": "view", "dir": view_dir}
    shutil.rmtree(view_dir, ignore_errors=True)
    shutil.copytree(staged, view_dir, symlinks=True)
    live_paths = sorted((live for _, live in staged_files(staged)), key=len, reverse=True)
    for path, _live in staged_files(view_dir):
        with open(path, "rb") as handle:
            text = handle.read()
        new = text
        for shipped in live_paths:
            new = new.replace(shipped.encode(), (view_dir + shipped).encode())
        if new != text:
            with open(path, "wb") as handle:
                handle.write(new)
    return {"provisioner": "view", "dir": view_dir}


def entry_of(path: str) -> dict[str, str]:
    info = os.lstat(path)
    return {"sha256": sha256(path), "mode": f"{stat.S_IMODE(info.st_mode):04o}", "owner": owner_name(info.st_uid), "group": group_name(info.st_gid)}


def compile_tables(staged: str, args: Mapping[str, Any], check: bool = False) -> dict[str, Any]:
    """postmap (postalias for alias_database) the tables whose source changed or whose
    database is missing; the database lands beside the staged source, ready to go live."""
    config_dir = staged + "/etc/postfix"
    suffix = table_suffix(config_dir)
    aliases = {entry.split(":", 1)[-1] for entry in postconf(config_dir, "alias_database").replace(",", " ").split()}
    compiled = []
    for table in args["tables"]:
        source = staged + table
        live_db = table + suffix
        fresh = os.path.exists(live_db) and os.path.getmtime(live_db) >= os.path.getmtime(table) and difference(table, entry_of(source)) is None
        if fresh:
            continue
        tool = "postalias" if table in aliases else "postmap"
        if not check:
            result = subprocess.run([tool, "-c", config_dir, source], capture_output=True, text=True)
            if result.returncode != 0 or result.stderr.strip():
                raise StageError(f"{tool} {table}: {(result.stderr or result.stdout).strip()}")
        compiled.append(table)
    return {"provisioner": "compile", "tables": compiled}


def install(staged: str, args: Mapping[str, Any], check: bool = False) -> dict[str, Any]:
    """Replace each live file that differs from its staged copy: write beside it, then rename.
    Before anything moves, the restart parameters of the staged main.cf are compared with the
    live ones (a change restarts Postfix instead of reloading it)."""
    changed = []
    why = {}
    staged_main = staged + "/etc/postfix/main.cf"
    moved: list[str] = []
    if os.path.exists(staged_main) and difference("/etc/postfix/main.cf", entry_of(staged_main)) is not None:
        names = args.get("restart_postconf") or {}
        moved = postconf_changes("/etc/postfix", {name: postconf(staged + "/etc/postfix", name) for name in names})
    for path, live in sorted(staged_files(staged), key=lambda pair: pair[1]):
        reason = difference(live, entry_of(path))
        if reason is None:
            continue
        if not check:
            make_dirs(os.path.dirname(live), 0o755)
            replace(path, live)
        changed.append(live)
        why[live] = reason
    restart = restarts(set(changed), moved, args)
    reload = [name for name in services_for(changed, args["reload_on"]) if name not in restart]
    return {"provisioner": "install", "changed": changed, "reload": reload, "restart": restart, "postconf_changed": moved, "why": why}


def replace(staged_file: str, live: str) -> None:
    """Put a copy of staged_file at `live` atomically, with its owner and mode before any byte."""
    info = os.lstat(staged_file)
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(live)}.provisioner-", dir=os.path.dirname(live))
    try:
        with os.fdopen(fd, "wb") as target, open(staged_file, "rb") as source:
            os.fchown(target.fileno(), info.st_uid, info.st_gid)
            os.fchmod(target.fileno(), stat.S_IMODE(info.st_mode))
            shutil.copyfileobj(source, target)
            target.flush()
            os.utime(target.fileno(), ns=(info.st_atime_ns, info.st_mtime_ns))
            os.fsync(target.fileno())
        os.replace(temporary, live)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def prepare(paths: Sequence[Mapping[str, str]], check: bool = False) -> dict[str, Any]:
    """Each {path, kind, owner, group, mode}: made where missing (parents 0755), its owner, group
    and mode corrected where they differ; a link or the other kind at the path is refused (never
    followed, never replaced). An owner not there yet (a plan of a fresh host, where the package
    or the user is still to come) is reported in check mode and refused otherwise."""
    import grp
    import pwd

    changed = []
    for entry in paths:
        path, kind, mode = entry["path"], entry["kind"], int(entry["mode"], 8)
        try:
            info: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            info = None
        want_dir = kind == "directory"
        if info is not None and (stat.S_ISDIR(info.st_mode) != want_dir or not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode))):
            raise StageError(f"{path} is not a {kind}: left as it is")
        try:
            uid, gid = pwd.getpwnam(entry["owner"]).pw_uid, grp.getgrnam(entry["group"]).gr_gid
        except KeyError:
            if not check:
                raise StageError(f"{path}: no user {entry['owner']} or group {entry['group']} on this host") from None
            changed.append({"path": path, "why": "missing" if info is None else "owner"})
            continue
        if info is None:
            why = "missing"
            if not check:
                make_dirs(os.path.dirname(path), 0o755)
                if want_dir:
                    os.mkdir(path, mode)
                else:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode))
        elif (info.st_uid, info.st_gid) != (uid, gid):
            why = "owner"
        elif stat.S_IMODE(info.st_mode) != mode:
            why = "mode"
        else:
            continue
        if not check:
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, mode)  # after chown, which clears setgid
        changed.append({"path": path, "why": why})
    return {"provisioner": "prepare", "changed": changed}


NOLOGIN = "/usr/sbin/nologin"  # the shell the role gives vmail
SYSTEMD_RUNTIME = "/run/systemd/system"  # exists where systemd is PID 1 (sd_booted(3))


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    """KEY=value lines of os-release(5), values unquoted as a shell would."""
    import shlex

    found: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(1 << 16).splitlines()
    except OSError:
        return found
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip().isidentifier():
            try:
                words = shlex.split(value)
            except ValueError:
                continue
            found[key.strip()] = words[0] if words else ""
    return found


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(4096).strip()
    except OSError:
        return ""


def installed_packages(names: Sequence[str]) -> set[str]:
    """Which of `names` dpkg has installed (status ii); a name it does not know (a virtual
    package) is not, and apt decides."""
    if not names:
        return set()
    done = subprocess.run(
        ["dpkg-query", "--show", "--showformat", "${Package} ${db:Status-Abbrev}\\n", "--", *names], capture_output=True, text=True, timeout=60
    )
    return {words[0] for words in (line.split() for line in done.stdout.splitlines()) if len(words) >= 2 and words[1] == "ii"}


def vmail_differs(vmail: Mapping[str, Any] | None) -> bool:
    """Whether the vmail user and group are not as the role's user and group tasks make them."""
    import grp
    import pwd

    if not vmail:
        return False
    try:
        user, group = pwd.getpwnam(str(vmail["user"])), grp.getgrnam(str(vmail["user"]))
    except KeyError:
        return True
    uid = int(vmail["uid"])
    return (user.pw_uid, user.pw_gid, group.gr_gid, user.pw_dir, user.pw_shell) != (uid, uid, uid, str(vmail["home"]), NOLOGIN)


def sieve_stale(scripts: Sequence[str]) -> bool:
    """Whether a script has no compiled .svbin beside it, or one older than itself."""
    for script in scripts:
        try:
            if os.stat(os.path.splitext(script)[0] + ".svbin").st_mtime < os.stat(script).st_mtime:
                return True
        except OSError:
            return True
    return False


def probe(args: Mapping[str, Any]) -> dict[str, Any]:
    """Read-only: the host's release, its init system, which of `packages` dpkg has not installed,
    and whether nothing of the build is left to do here (`clean`; `pending` names what is, never
    a content): no missing package, no file or table that differs (as inspect), every path of
    `paths` as prepare would leave it, the vmail user as declared, every sieve script compiled.
    A clean host asked to `verify` under systemd also has its services read (`services`): every
    unit of `units` active, none disabled, no unit of `retired` of ours running or enabled, as
    mailhost_services would leave them; `converged` says the whole role has nothing to do."""
    release = os_release()
    wanted = list(dict.fromkeys(args.get("packages") or ()))
    missing = sorted(set(wanted) - installed_packages(wanted))
    pending = ["packages"] if missing else []
    if not pending:
        if vmail_differs(args.get("vmail")):
            pending.append("vmail user")
        try:
            if prepare(args.get("paths") or (), check=True)["changed"]:
                pending.append("directories")
        except StageError:
            pending.append("directories")
        looked = inspect(args)
        if looked["files"] or looked["tables"]:
            pending.append("files")
        if sieve_stale(args.get("sieve") or ()):
            pending.append("sieve")
    init = "systemd" if os.path.isdir(SYSTEMD_RUNTIME) else "other"
    services: dict[str, Any] = {"start": [], "stop": [], "converged": False}
    if not pending and args.get("verify") and init == "systemd":
        try:
            looked_at = verify(args.get("units") or {}, args.get("retired") or {})
        except ServiceError as exc:  # a unit systemd does not know: the role's own tasks say which
            looked_at = {"start": [], "stop": [], "converged": False, "error": str(exc)}
        services = {k: looked_at[k] for k in ("start", "stop", "converged", "error") if k in looked_at}
    return {
        "provisioner": "probe",
        "release": {
            "id": release.get("ID", "unknown"),
            "version": release.get("VERSION_ID", "unknown"),
            "codename": release.get("VERSION_CODENAME", "unknown"),
            "debian_version": read_text("/etc/debian_version"),
        },
        "init": init,
        "missing_packages": missing,
        "pending": pending,
        "clean": not pending,
        "services": services,
    }


def run(params: Mapping[str, Any], check: bool = False) -> tuple[dict[str, Any], bool, list[dict[str, str]]]:
    """(report, changed, diff) of one action; raises StageError on a refusal."""
    action = params["action"]
    for needed in {"stage": ("bundle", "staged"), "view": ("staged", "view"), "compile": ("staged",), "install": ("staged",)}.get(action, ()):
        if not params.get(needed):
            raise StageError(f"action {action} needs {needed}")
    if action == "inspect":
        report = inspect(params)
        return report, False, [diff_entry(f["path"], f["why"]) for f in report["files"]]
    if action == "stage":
        return stage(params["bundle"], params["staged"], check), True, []
    if action == "view":
        return view(params["staged"], params["view"], check), True, []
    if action == "compile":
        report = compile_tables(params["staged"], params, check)
        return report, bool(report["tables"]), []
    if action == "prepare":
        report = prepare(params["paths"], check)
        return report, bool(report["changed"]), [diff_entry(c["path"], c["why"]) for c in report["changed"]]
    if action == "install":
        report = install(params["staged"], params, check)
        why = report.pop("why")
        return report, bool(report["changed"]), [diff_entry(path, why[path]) for path in report["changed"]]
    raise StageError(f"unknown action {action!r}")


ARGUMENT_SPEC: dict[str, Any] = {
    "action": {"type": "str", "required": True, "choices": list(ACTIONS)},
    "files": {"type": "list", "elements": "dict", "default": []},
    "tables": {"type": "list", "elements": "str", "default": []},
    "reload_on": {"type": "dict", "default": {}},
    "restart_on": {"type": "dict", "default": {}},
    "restart_postconf": {"type": "dict", "default": {}},
    "digest_key": {"type": "str", "no_log": True},
    "bundle": {"type": "path"},
    "staged": {"type": "path"},
    "view": {"type": "path"},
    "paths": {"type": "list", "elements": "dict", "default": []},
}


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        report, changed, diff = run(module.params, check=module.check_mode)
    except (StageError, OSError, subprocess.CalledProcessError, tarfile.TarError, KeyError) as exc:
        module.fail_json(msg=f"{module.params['action']}: {exc}", provisioner_report={"provisioner": module.params["action"], "error": True})
        return
    result: dict[str, Any] = {"changed": changed, "provisioner_report": report, **{k: v for k, v in report.items() if k != "provisioner"}}
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
