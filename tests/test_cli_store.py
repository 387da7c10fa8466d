"""`edge-face db|user|enroll|log|keys` through the real entry point, on real files."""

from __future__ import annotations

import csv
import io
import sys

import pytest

from edge.cli import main
from edge.keys import FileKeySource, KeyRing
from edge.store import Store


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nstate_dir = "state"\n')

    def run(*argv, stdin=""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["--config", str(config), *argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    run.state = tmp_path / "state"
    run.config = config
    return run


def open_store(state):
    return Store(state / "edge-face.db", KeyRing(FileKeySource(state / "db.key")))


def test_user_lifecycle_and_log(cli):
    assert cli("db", "init")[0] == 0
    code, out, err = cli("db", "init")
    assert code == 2 and "never overwrites" in err
    code, out, _ = cli("user", "add", "Åsa", "--email", "asa@example.org", "--admin", "--active",
                       "--display-name", "Åsa Öberg", "--password-stdin", stdin="a long password\n")
    assert code == 0 and "added Åsa (admin, active)" in out
    assert cli("user", "add", "bob", "--no-password")[0] == 0
    code, _, err = cli("user", "add", "carl")  # no terminal and no --password-stdin
    assert code == 2 and "--password-stdin" in err
    code, _, err = cli("user", "add", "ÅSA", "--no-password")
    assert code == 2 and "already taken" in err

    code, out, _ = cli("user", "list")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["bob", "member", "pending"]
    assert "Åsa Öberg" in out and "carl" not in out
    code, _, err = cli("user", "disable", "asa@example.org")     # the only active admin: the store refuses
    assert code == 2 and "last active administrator" in err
    code, out, _ = cli("user", "role", "bob", "admin")              # admin implies active
    assert code == 0 and "bob is now admin (active)" in out
    assert cli("user", "disable", "asa@example.org")[0] == 0
    code, out, _ = cli("user", "show", "åsa")
    assert "status        disabled" in out and "password      set" in out
    assert cli("user", "enable", "Åsa")[0] == 0
    assert open_store(cli.state).find_user("Åsa").status == "active"
    assert open_store(cli.state).check_password("Åsa", "a long password") is not None
    assert cli("user", "role", "åsa", "member")[0] == 0               # bob is still an admin
    code, _, err = cli("user", "remove", "bob")
    assert code == 2 and "last active administrator" in err
    assert cli("user", "role", "åsa", "admin")[0] == 0
    code, out, _ = cli("user", "remove", "bob")
    assert code == 0 and open_store(cli.state).find_user("bob") is None
    code, _, err = cli("user", "show", "nobody")
    assert code == 2 and "there is no user 'nobody'" in err

    code, out, _ = cli("log", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["kind"], r["user"]) for r in rows[1:]] == [
        ("user_changed", "Åsa"), ("user_changed", "bob"), ("user_changed", "bob"), ("user_changed", "Åsa"),
        ("user_changed", "Åsa"), ("user_changed", "Åsa"), ("user_changed", "Åsa"), ("user_changed", "bob")]
    assert '"action": "make-admin"' in rows[3]["details"]
    assert '"action": "removed"' in rows[-1]["details"]
    code, out, _ = cli("log", "--user", "bob", "--since", "1h")
    assert code == 0 and len(out.splitlines()) == 3 and "action=removed" in out
    code, _, err = cli("log", "--since", "yesterday-ish")
    assert code == 2 and "--since" in err


def test_log_csv_does_not_hand_a_spreadsheet_a_formula(cli):
    """A stranger's typed username reaches the log (login_failed); exported, it must stay text."""
    from edge.accesslog import AccessLog
    from edge.keys import FileKeySource, KeyRing

    cli("db", "init")
    log = AccessLog(cli.state / "access.log", KeyRing(FileKeySource(cli.state / "db.key")))
    log.append("login_failed", user='=HYPERLINK("http://evil.example/","x")', source="-1+1")
    code, out, _ = cli("log", "--csv", "--kind", "login_failed")
    row = list(csv.DictReader(io.StringIO(out)))[-1]
    assert code == 0
    assert row["user"] == "'=HYPERLINK(\"http://evil.example/\",\"x\")" and row["source"] == "'-1+1"


def test_a_damaged_database_stops_every_command_and_restore_previous_repairs_it(cli):
    cli("db", "init")
    cli("user", "add", "first", "--no-password")
    cli("user", "add", "second", "--no-password")
    db = cli.state / "edge-face.db"
    data = bytearray(db.read_bytes())
    data[100] ^= 0x04
    db.write_bytes(bytes(data))
    code, _, err = cli("user", "list")
    assert code == 2 and "db restore --previous" in err
    code, out, _ = cli("db", "restore", "--previous")
    assert code == 0 and "does not decrypt; kept it as" in out
    code, out, _ = cli("user", "list")
    assert code == 0 and "first" in out and "second" not in out
    damaged = [p for p in cli.state.iterdir() if ".damaged-" in p.name]
    assert len(damaged) == 1 and damaged[0].read_bytes() == bytes(data)


def test_backup_and_restore(cli, tmp_path):
    cli("db", "init")
    cli("user", "add", "kept", "--no-password")
    code, out, _ = cli("db", "backup", str(tmp_path / "saved.db"))
    assert code == 0 and "revision 2" in out
    assert b"kept" not in (tmp_path / "saved.db").read_bytes()
    assert cli("db", "backup", str(tmp_path / "saved.db"))[0] == 2  # never replaced without --force
    cli("user", "add", "later", "--no-password")

    (tmp_path / "junk.db").write_bytes(b"not a database")
    before = (cli.state / "edge-face.db").read_bytes()
    code, _, err = cli("db", "restore", str(tmp_path / "junk.db"))
    assert code == 2 and "does not decrypt" in err
    assert (cli.state / "edge-face.db").read_bytes() == before

    code, out, _ = cli("db", "restore", str(tmp_path / "saved.db"))
    assert code == 0 and "restored revision 2" in out
    assert open_store(cli.state).find_user("later") is None
    assert (cli.state / "edge-face.db.bak").read_bytes() == before  # the replaced one is the backup


def test_keys_rotate(cli):
    cli("db", "init")
    cli("user", "add", "rot", "--no-password")
    old_key = (cli.state / "db.key").read_bytes().strip()
    code, out, _ = cli("keys", "rotate")
    assert code == 0 and "keys rotated" in out
    new_key = (cli.state / "db.key").read_bytes().strip()
    assert new_key != old_key and b"\n" not in new_key
    assert open_store(cli.state).find_user("rot") is not None
    with pytest.raises(Exception):
        Store(cli.state / "edge-face.db", KeyRing(keys=[old_key]))
    code, out, _ = cli("log")
    assert code == 0 and "action=added" in out and "keys_rotated" in out


def test_commands_without_a_database_explain_what_to_do(cli):
    code, _, err = cli("user", "list")
    assert code == 2 and "db init" in err


def test_enroll_with_real_photographs(cli, tmp_path, faces_dir, models_dir):
    cli.config.write_text(f'[paths]\nstate_dir = "state"\nmodels_dir = "{models_dir}"\n')
    cli("db", "init")
    cli("user", "add", "colin", "--no-password", "--active")
    good = sorted((faces_dir / "lfw_view1" / "Colin_Powell").glob("*.jpg"))[:2]
    assert good, "expected LFW photographs of Colin Powell"
    group = faces_dir / "deepface_unit" / "_extra_not_identity_labeled" / "couple.jpg"
    not_image = tmp_path / "notes.txt"
    not_image.write_text("not a photograph")
    code, out, _ = cli("enroll", "colin", *map(str, good), str(group), str(not_image))
    assert code == 0, out
    assert out.count("accepted") == 2 and f"{group}: rejected: " in out and f"{not_image}: rejected: " in out
    user = open_store(cli.state).find_user("colin")
    assert len(user.templates) == 2 and all(t.source == "cli" for t in user.templates)
    code, out, err = cli("enroll", "colin", str(not_image))
    assert code == 1 and "no photograph was accepted" in err


def test_cli_and_web_export_the_same_csv(cli, tmp_path):
    """One export function: `edge-face log --csv` and the admin page's log.csv give the same bytes."""
    from edge.accesslog import AccessLog
    from edge.web.display import events_csv

    cli("db", "init")
    log = AccessLog(cli.state / "access.log", KeyRing(FileKeySource(cli.state / "db.key")))
    log.append("grant", user="ann", similarity=0.83125, decision="grant", source="door", votes=3)
    log.append("deny", user="=1+1", similarity=-0.1, decision="deny", reason="user is disabled")
    code, out, _ = cli("log", "--csv")
    assert code == 0
    assert out.replace("\r\n", "\n") == events_csv(list(log.events())).replace("\r\n", "\n")
    rows = {r["kind"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["grant"]["similarity"] == "0.83125" and '"votes": 3' in rows["grant"]["details"]
    assert rows["deny"]["user"] == "'=1+1"
