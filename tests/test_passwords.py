"""Common passwords are refused wherever a password is set: store, CLI and web page (issue 11, item 8)."""

from __future__ import annotations

import io
import sys

import pytest

from edge.cli import main
from edge.errors import StoreError
from edge.passwords import is_common
from edge.store import Store
from edge.keys import KeyRing
from web_fixtures import PASSWORD


@pytest.mark.parametrize("password", ["password", "Password123!", "sunshine2024", "qwertyuiop", "12345678",
                                      "1q2w3e4r5t", "iloveyou1", "aaaaaaaaaa", "abababab", "RaspberryPi4",
                                      "letmein!!", "Admin1234"])
def test_common_passwords_are_recognised(password):
    assert is_common(password)


@pytest.mark.parametrize("password", [PASSWORD, "dora-s-secret-1", "my door, 7 lanterns", "zq8!Kp2#vL"])
def test_uncommon_passwords_pass(password):
    assert not is_common(password)


def test_the_store_refuses_a_common_password_for_new_and_changed_passwords(tmp_path):
    store = Store.create(tmp_path / "db", KeyRing.generate(), bcrypt_rounds=4)
    with pytest.raises(StoreError, match="most common passwords"):
        store.add_user(username="erin", password="Password123!")
    user = store.add_user(username="erin", password=PASSWORD)
    with pytest.raises(StoreError, match="most common passwords"):
        store.set_password(user.id, "football2024")
    assert store.check_password("erin", PASSWORD) is not None


def test_the_cli_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nstate_dir = "state"\n')
    assert main(["--config", str(config), "db", "init"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("letmein123\n"))
    code = main(["--config", str(config), "user", "add", "frank", "--password-stdin"])
    err = capsys.readouterr().err
    assert code == 2 and "most common passwords" in err and "Traceback" not in err
