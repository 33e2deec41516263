"""The mailhost role's file mover, run on the host as `python3 -c <this file> ACTION ...`.

It decides nothing about mail: the bundle (a tar the provisioner built from the rendered tree
and its manifest) already carries every path, mode and owner. This script only compares,
extracts, compiles the lookup tables Postfix is told about, and replaces live files atomically.
It prints one JSON object (paths and reasons, never file contents or digests); arguments come
on stdin. A secret file's entry carries `hmac_sha256` under this host's `digest_key` (never a
plain sha256, which would let anyone who sees it test guesses of the secret offline).
It runs as root: every file and directory it makes gets its mode explicitly, whatever the
umask, and a temporary file has a random name made with O_EXCL (a link planted there is never
followed).

  inspect         what differs between the manifest and the live files (read-only)
  stage B S       extract bundle B into a fresh staging directory S
  view S V        copy S to V with every shipped path pointing into V (to validate in place)
  compile S       compile stale lookup tables inside S (postmap / postalias)
  install S       move every staged file that differs from the live one into place
"""

import hashlib
import hmac
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile

SUFFIX = {"lmdb": ".lmdb", "hash": ".db", "btree": ".db", "cdb": ".cdb"}


def sha256(path, key=None):
    """Hex sha256 of the file, or its HMAC-SHA256 under `key` (RFC 2104)."""
    digest = hashlib.sha256() if key is None else hmac.new(key, digestmod=hashlib.sha256)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def same_content(live, want, key):
    if "hmac_sha256" in want:  # a secret file: only the keyed digest is known here
        return key is not None and hmac.compare_digest(sha256(live, key), want["hmac_sha256"])
    return sha256(live) == want["sha256"]


def difference(live, want, key=None):
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


def owner_name(uid):
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def make_dirs(path, mode):
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


def services_for(paths, reload_on):
    return sorted(service for service, prefixes in reload_on.items() if any(p.startswith(tuple(prefixes)) for p in paths))


def postconf(config_dir, name):
    return subprocess.run(["postconf", "-c", config_dir, "-h", name], check=True, capture_output=True, text=True).stdout.strip()


def table_suffix(config_dir):
    return SUFFIX.get(postconf(config_dir, "default_database_type"), ".db")


def inspect(args):
    """Read-only: files whose live copy differs, tables to compile, services to reload."""
    key = bytes.fromhex(args["digest_key"]) if args.get("digest_key") else None
    files = [{"path": f["path"], "why": why} for f in args["files"] for why in [difference(f["path"], f, key)] if why]
    changed = {f["path"] for f in files}
    try:
        suffix = table_suffix("/etc/postfix")
    except (OSError, subprocess.CalledProcessError):
        suffix = None  # Postfix is not installed yet: every table will be compiled
    tables = []
    for table in args["tables"]:
        db = table + (suffix or "")
        if suffix is None or table in changed or not os.path.exists(db) or os.path.getmtime(db) < os.path.getmtime(table):
            tables.append(table)
    return {"provisioner": "inspect", "files": files, "tables": tables, "reload": services_for(changed | set(tables), args["reload_on"])}


def stage(bundle, staged):
    """Extract the bundle into a fresh staging tree, owners and modes as the tar says."""
    shutil.rmtree(staged, ignore_errors=True)
    os.makedirs(staged, mode=0o700)
    count = 0
    with tarfile.open(bundle) as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if not member.isreg() or name.startswith(("/", "..")):
                raise SystemExit(f"bundle holds {member.name!r}, which is not a relative regular file")
            target = os.path.join(staged, name)
            make_dirs(os.path.dirname(target), 0o755)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(tar.extractfile(member), out)
                import grp
                import pwd

                os.fchown(out.fileno(), pwd.getpwnam(member.uname).pw_uid, grp.getgrnam(member.gname).gr_gid)
                os.fchmod(out.fileno(), member.mode)
            count += 1
    return {"provisioner": "stage", "files": count}


def staged_files(staged):
    for directory, _, names in os.walk(staged):
        for name in names:
            path = os.path.join(directory, name)
            yield path, "/" + os.path.relpath(path, staged)


def view(staged, view_dir):
    """A copy of the staged tree in which every shipped absolute path points into the copy,
    so validators that open the files a configuration names (opendkim -n) read the new ones."""
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


def compile_tables(staged, args):
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
        result = subprocess.run([tool, "-c", config_dir, source], capture_output=True, text=True)
        if result.returncode != 0 or result.stderr.strip():
            raise SystemExit(f"{tool} {table}: {(result.stderr or result.stdout).strip()}")
        compiled.append(table)
    return {"provisioner": "compile", "tables": compiled}


def entry_of(path):
    info = os.lstat(path)
    return {"sha256": sha256(path), "mode": f"{stat.S_IMODE(info.st_mode):04o}", "owner": owner_name(info.st_uid), "group": group_name(info.st_gid)}


def install(staged, args):
    """Replace each live file that differs from its staged copy: write beside it, then rename."""
    changed = []
    for path, live in sorted(staged_files(staged), key=lambda pair: pair[1]):
        if difference(live, entry_of(path)) is None:
            continue
        directory = os.path.dirname(live)
        make_dirs(directory, 0o755)
        replace(path, live)
        changed.append(live)
    return {"provisioner": "install", "changed": changed, "reload": services_for(changed, args["reload_on"])}


def replace(staged_file, live):
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


def main(argv):
    action = argv[1]
    args = json.loads(sys.stdin.read() or "{}") if action in ("inspect", "compile", "install") else {}
    if action == "inspect":
        report = inspect(args)
    elif action == "stage":
        report = stage(argv[2], argv[3])
    elif action == "view":
        report = view(argv[2], argv[3])
    elif action == "compile":
        report = compile_tables(argv[2], args)
    elif action == "install":
        report = install(argv[2], args)
    else:
        raise SystemExit(f"unknown action {action!r}")
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":  # run as `python3 -c <this file>`; tests import it
    main(sys.argv)
