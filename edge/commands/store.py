"""``edge-face db|user|enroll|log|keys``: the database, its users, the access log and key rotation.

Passwords are never taken from the command line (they would sit in the shell history and ``ps``): they are
typed at a prompt, or read from standard input with ``--password-stdin``.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
import re
import shutil
import sys
import time
from pathlib import Path

from ..accesslog import AccessLog, write_csv
from ..atomic import FileLock, write_durable
from ..errors import ImageError, StoreError
from ..keys import init_keys, interactive_prompt, load_keyring
from ..store import (DB_FILE_NAME, ROLES, Store, StoreInputError, backup_path_for, lock_path_for,
                     read_verified)
from . import load_config


def register(sub) -> None:
    db = sub.add_parser("db", help="create, back up or restore the encrypted database")
    dbs = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = dbs.add_parser("init", help="create the key and an empty database (never overwrites)")
    p.add_argument("--if-missing", action="store_true",
                   help="do nothing (exit 0) when the database already exists, e.g. in a setup script")
    p.set_defaults(func=cmd_db_init)
    p = dbs.add_parser("backup", help="copy the database (still encrypted) to FILE")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_db_backup)
    p = dbs.add_parser("restore", help="replace the database with FILE after checking that it decrypts")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("file", metavar="FILE", nargs="?")
    src.add_argument("--previous", action="store_true", help="go back to the automatic previous generation")
    p.set_defaults(func=cmd_db_restore)
    p = dbs.add_parser("status", help="where the database is, its revision and size")
    p.set_defaults(func=cmd_db_status)

    user = sub.add_parser("user", help="manage the people who may open the door")
    us = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    p = us.add_parser("add", help="add a user (pending unless --active)")
    p.add_argument("username")
    p.add_argument("--email", default="")
    p.add_argument("--display-name", default="")
    p.add_argument("--role", choices=ROLES, default="member")
    p.add_argument("--admin", dest="role", action="store_const", const="admin", help="same as --role admin")
    p.add_argument("--active", action="store_true", help="may open the door at once")
    _password_options(p)
    p.set_defaults(func=cmd_user_add)
    p = us.add_parser("list", help="all users")
    p.set_defaults(func=cmd_user_list)
    for name, func, text in (("show", cmd_user_show, "one user with their face templates"),
                             ("disable", cmd_user_disable, "stop a user from opening the door"),
                             ("enable", cmd_user_enable, "let a user open the door"),
                             ("remove", cmd_user_remove, "delete a user and their face templates")):
        p = us.add_parser(name, help=text)
        p.add_argument("user", help="username, e-mail address or id")
        p.set_defaults(func=func)
    p = us.add_parser("role", help="make a user admin (which also activates them) or member")
    p.add_argument("user", help="username, e-mail address or id")
    p.add_argument("role", choices=ROLES)
    p.set_defaults(func=cmd_user_role)
    p = us.add_parser("password", help="set a user's admin-page password")
    p.add_argument("user", help="username, e-mail address or id")
    _password_options(p)
    p.set_defaults(func=cmd_user_password)

    p = sub.add_parser("enroll", help="add face templates for a user from photographs, or many users from a folder",
                       description="edge-face enroll USER IMAGE...  or  edge-face enroll --folder DIR (one sub-folder "
                                   "per person, named after the user; missing users are created as active members)")
    p.add_argument("user", nargs="?", help="username, e-mail address or id")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--folder", metavar="DIR", help="enrol every sub-folder of DIR as the user of that name")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("log", help="show the access log")
    p.add_argument("--since", help="ISO date/time (2024-05-01, 2024-05-01T08:00) or an age (30m, 12h, 7d)")
    p.add_argument("--user", help="only events of this username")
    p.add_argument("--kind", help="only events of this kind (grant, deny, ...)")
    p.add_argument("--csv", action="store_true", help="CSV on standard output")
    p.set_defaults(func=cmd_log)

    keys = sub.add_parser("keys", help="key management")
    ks = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    p = ks.add_parser("rotate", help="re-encrypt the database and the log under a new key")
    p.set_defaults(func=cmd_keys_rotate)


def _password_options(p) -> None:
    """Passwords never on the command line (visible in ps): a prompt, standard input, or none at all."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    g.add_argument("--no-password", action="store_true", help="no admin-page login (door only)")


# ------------------------------------------------------------------ helpers

def _open(args, *, log: bool = True):
    cfg = load_config(args)
    ring = load_keyring(cfg, prompt=interactive_prompt())
    store = Store.open(cfg, keyring=ring)
    access_log = AccessLog.open(cfg, keyring=ring) if log else None
    return cfg, store, access_log


def _read_password(args) -> str | None:
    if getattr(args, "no_password", False):
        return None
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise StoreInputError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    if not os.isatty(0):
        raise StoreInputError("no terminal to type the password: use --password-stdin (or --no-password)")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise StoreInputError("the two passwords differ; nothing was changed")
    return first


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _audit(access_log: AccessLog, kind: str, user: str | None, **details) -> None:
    try:
        operator = getpass.getuser()
    except Exception:  # no passwd entry in a container: not worth failing a change for
        operator = str(os.getuid())
    access_log.append(kind, user=user, source="cli", operator=operator, **details)


# ------------------------------------------------------------------ db

def cmd_db_init(args) -> int:
    cfg = load_config(args)
    db_path = cfg.state_dir / DB_FILE_NAME
    if db_path.exists():
        if args.if_missing:
            print(f"database already exists at {db_path}; left as it is")
            return 0
        raise StoreError(f"a database already exists at {db_path}; `db init` never overwrites it")
    cfg.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    prompt = interactive_prompt()
    if cfg.store.key_source == "passphrase" and not cfg.store.passphrase_file and prompt is not None:
        first = getpass.getpass("New database passphrase: ")
        if getpass.getpass("Passphrase again: ") != first:
            raise StoreInputError("the two passphrases differ; nothing was created")
        prompt = lambda _text: first  # noqa: E731
    ring, created = init_keys(cfg, prompt=prompt)
    store = Store.create(db_path, ring, defaults=cfg)
    source = ring.source
    assert source is not None                  # init_keys always names where the key lives
    AccessLog.open(cfg, keyring=ring).append("settings_changed", source="cli", action="db_init")
    how = "new" if created else "existing"
    print(f"created {db_path} (revision {store.revision}); {how} {source.description}: {source.path}")
    if cfg.store.key_source == "file" and created:
        print(f"Back up {source.path} somewhere safe and separate: without it the database cannot be read.")
    return 0


def cmd_db_status(args) -> int:
    cfg, store, _ = _open(args, log=False)
    size = os.stat(store.path).st_size
    templates = sum(len(u.templates) for u in store.users())
    print(f"database  {store.path} ({size:,} bytes), revision {store.revision}")
    print(f"users     {len(store.users())} ({templates} face templates)")
    print(f"key       {store.keyring.source.description} {store.keyring.source.path} ({len(store.keyring)} key(s))")
    print(f"backup    {store.backup_path if store.backup_path.exists() else '-'}")
    return 0


def cmd_db_backup(args) -> int:
    cfg, store, _ = _open(args, log=False)
    target = Path(args.file)
    if target.exists() and not args.force:
        raise StoreError(f"{target} already exists; choose another name or add --force")
    with store.transaction():  # the lock: nobody commits while we copy
        data, revision = read_verified(store.path, store.keyring)
    if not target.parent.is_dir():
        raise StoreError(f"{target.parent} is not a folder")
    write_durable(target, data)
    print(f"backed up revision {revision} to {target} (encrypted; it needs the same key)")
    return 0


def cmd_db_restore(args) -> int:
    cfg = load_config(args)
    ring = load_keyring(cfg, prompt=interactive_prompt())
    db_path = cfg.state_dir / DB_FILE_NAME
    backup_path = backup_path_for(db_path)
    source = backup_path if args.previous else Path(args.file)
    data, revision = read_verified(source, ring)  # refuses anything that does not decrypt with our key
    with FileLock(lock_path_for(db_path), what="the database"):
        current_ok = False
        if db_path.exists():
            try:
                read_verified(db_path, ring)
                current_ok = True
            except StoreError:
                aside = db_path.with_name(f"{db_path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
                shutil.copy2(db_path, aside)
                os.chmod(aside, 0o600)
                print(f"the current database does not decrypt; kept it as {aside}")
        keep = backup_path if current_ok else None  # a damaged file must not replace a good backup
        write_durable(db_path, data, keep_previous=keep)
    AccessLog.open(cfg, keyring=ring).append("settings_changed", source="cli", action="db_restore",
                                             revision=revision)
    note = f"; the replaced database is now {backup_path}" if keep else ""
    print(f"restored revision {revision} from {source}{note}")
    return 0


# ------------------------------------------------------------------ users

def cmd_user_add(args) -> int:
    cfg, store, access_log = _open(args)
    password = _read_password(args)
    user = store.add_user(username=args.username, email=args.email, password=password,
                          display_name=args.display_name, role=args.role,
                          status="active" if args.active else "pending")
    _audit(access_log, "user_changed", user.username, user_id=user.id, action="added", role=user.role, status=user.status)
    print(f"added {user.username} ({user.role}, {user.status}), id {user.id}")
    return 0


def cmd_user_list(args) -> int:
    cfg, store, _ = _open(args, log=False)
    users = store.users()
    if not users:
        print("no users yet: add one with `edge-face user add NAME`")
        return 0
    rows = [("USERNAME", "ROLE", "STATUS", "FACES", "E-MAIL", "NAME")]
    rows += [(u.username, u.role, u.status, str(len(u.templates)), u.email or "-", u.display_name or "-")
             for u in users]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_user_show(args) -> int:
    cfg, store, _ = _open(args, log=False)
    u = store.user(args.user)
    current_model = _current_model_id(cfg)
    print(f"username      {u.username}\nid            {u.id}\ne-mail        {u.email or '-'}")
    print(f"display name  {u.display_name or '-'}\nrole          {u.role}\nstatus        {u.status}")
    print(f"password      {'set' if u.has_password else 'none (no admin-page login)'}")
    print(f"created       {_when(u.created)}\nupdated       {_when(u.updated)}")
    print(f"face templates: {len(u.templates)}")
    for t in u.templates:
        stale = current_model is not None and t.model_id != current_model
        flag = "  (other model: ignored, enrol again)" if stale else ""
        quality = f"{t.quality:.2f}" if t.quality is not None else "-"
        print(f"  {t.id}  {t.model_id}  {t.source:6}  quality {quality}  {_when(t.created)}{flag}")
    return 0


def _current_model_id(cfg) -> str | None:
    """The id templates must carry to be used, from the model manifest (None if it cannot be read)."""
    try:
        from ..recognition import models as _models
        manifest = _models.load_manifest(cfg.models_dir)
        return _models.versioned_id(_models.model_entry(manifest, cfg.recognition.model))
    except Exception:  # a missing model must not stop `user show`; the column is just not checked
        return None


def _set_status(args, status: str) -> int:
    cfg, store, access_log = _open(args)
    user = store.user(args.user)
    user = store.update_user(user.id, status=status)
    _audit(access_log, "user_changed", user.username, user_id=user.id, action=status)
    print(f"{user.username} is now {status}")
    return 0


def cmd_user_disable(args) -> int:
    return _set_status(args, "disabled")


def cmd_user_enable(args) -> int:
    return _set_status(args, "active")


def cmd_user_role(args) -> int:
    cfg, store, access_log = _open(args)
    user = store.set_role(store.user(args.user).id, args.role)   # refuses to demote the last active admin
    _audit(access_log, "user_changed", user.username, user_id=user.id, action=f"make-{args.role}")
    print(f"{user.username} is now {user.role} ({user.status})")
    return 0


def cmd_user_remove(args) -> int:
    cfg, store, access_log = _open(args)
    user = store.remove_user(store.user(args.user).id)
    _audit(access_log, "user_changed", user.username, user_id=user.id, action="removed", templates=len(user.templates))
    print(f"removed {user.username} and {len(user.templates)} face template(s)")
    return 0


def cmd_user_password(args) -> int:
    cfg, store, access_log = _open(args)
    user = store.user(args.user)
    store.set_password(user.id, _read_password(args))
    _audit(access_log, "user_changed", user.username, user_id=user.id, action="password")
    print(f"password of {user.username} changed")
    return 0


# ------------------------------------------------------------------ enroll

def cmd_enroll(args) -> int:
    if args.folder:
        if args.user or args.images:
            raise StoreInputError("give either --folder DIR or a user and photographs, not both")
        return _enroll_folder(args)
    if not args.user or not args.images:
        raise StoreInputError("give a user and at least one photograph (edge-face enroll USER IMAGE...), "
                              "or --folder DIR")
    cfg, store, access_log = _open(args)
    user = store.user(args.user)
    from ..recognition import FaceEngine, load_image

    from ..enrolment import enrol

    images: list = []
    for path in args.images:
        try:
            images.append((path, load_image(path)))
        except ImageError as exc:
            images.append((path, exc))
    engine = FaceEngine.from_config(cfg)
    try:
        results = enrol(store, engine, user.id, images, source="cli")   # the web page's enrolment too
    finally:
        engine.close()
    for r in results:
        if r.ok:
            print(f"{r.name}: accepted (template {r.template_id}, quality {r.quality:.2f})")
        else:
            print(f"{r.name}: rejected: {'; '.join(r.reasons)}")
    accepted = sum(r.ok for r in results)
    _audit(access_log, "enrol", user.username, user_id=user.id, accepted=accepted, rejected=len(args.images) - accepted)
    if not accepted:
        print(f"no photograph was accepted for {user.username}", file=sys.stderr)
        return 1
    print(f"{user.username}: {accepted} of {len(args.images)} photograph(s) enrolled")
    return 0


def _enroll_folder(args) -> int:
    from ..decision import door_policy
    from ..enrol_folder import enrol_folder, person_folders
    from ..recognition import FaceEngine

    person_folders(args.folder)                      # a wrong folder fails before the key is asked for
    cfg, store, access_log = _open(args)
    engine = FaceEngine.from_config(cfg)
    try:
        people = len(set(store.gallery(engine.model_id).user_ids))
        policy, _ = door_policy(cfg.decision, store.settings, security=engine.security,
                                model_threshold=engine.threshold, people=people)
        report = enrol_folder(store, engine, args.folder, threshold=policy.threshold)
    finally:
        engine.close()
    for name in report.created:
        _audit(access_log, "user_changed", name, action="added", role="member", status="active")
    for name, count in report.enrolled.items():
        _audit(access_log, "enrol", name, accepted=count)
        print(f"{name}: {count} photograph(s) enrolled{' (new user)' if name in report.created else ''}")
    for path, other, score in report.lookalikes:
        print(f"warning: {path} looks like {other} (similarity {score:.3f}): the door could mistake one for the "
              "other; check that these are different people")
    if report.skipped:
        print(f"skipped {len(report.skipped)}:")
        for path, reason in report.skipped:
            print(f"  {path}: {reason}")
    print(f"{report.templates} template(s) for {len(report.enrolled)} user(s); {len(report.created)} user(s) "
          f"created; {len(report.skipped)} skipped")
    return 0 if report.enrolled else 1


# ------------------------------------------------------------------ log

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> float:
    text = text.strip()
    m = _AGE.match(text)
    if m:
        return time.time() - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise StoreInputError(f"--since {text!r}: use a date/time such as 2024-05-01 or 2024-05-01T08:00, "
                              "or an age such as 30m, 12h, 7d") from None
    if when.tzinfo is None:
        when = when.astimezone()
    return when.timestamp()


COLUMNS = ("time", "kind", "user", "similarity", "decision", "source")


def cmd_log(args) -> int:
    cfg = load_config(args)
    ring = load_keyring(cfg, prompt=interactive_prompt())
    access_log = AccessLog.open(cfg, keyring=ring)
    since = parse_since(args.since) if args.since else None
    events = access_log.events(since=since, user=args.user, kind=args.kind)
    if args.csv:
        write_csv(events, sys.stdout)          # the same export as the admin page's log.csv
    else:
        count = 0
        for e in events:
            count += 1
            sim = "" if e.get("similarity") is None else f"{e['similarity']:.3f}"
            details = " ".join(f"{k}={v}" for k, v in e.items() if k not in COLUMNS)
            parts = [_when(e.get("time")), f"{e.get('kind', '?'):16}", e.get("user") or "-", sim,
                     e.get("decision") or "", e.get("source") or "", details]
            print("  ".join(p for p in parts if p))
        if not count:
            print("no events" + (" match" if (args.since or args.user or args.kind) else ""))
    if access_log.skipped:
        print(f"edge-face: {access_log.skipped} unreadable line(s) skipped (see the warnings above)",
              file=sys.stderr)
    return 0


# ------------------------------------------------------------------ keys

def cmd_keys_rotate(args) -> int:
    from ..eventfaces import EventFaces
    from ..keyrotation import rotate

    cfg, store, access_log = _open(args)
    dropped = rotate(store, access_log, EventFaces.open(cfg, store.keyring))
    _audit(access_log, "settings_changed", None, action="keys_rotated")
    print(f"keys rotated: the database, the access log and the face thumbnails are encrypted with a new key; {dropped} old key(s) "
          "removed. Backups made before now need the old key: take a fresh `edge-face db backup`.")
    return 0
