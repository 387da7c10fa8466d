"""The configuration: the commented example documents every setting, and bad values are reported by key.

`edge-face config check` is run as a real subprocess: exit 0 with "ok" and a summary, or exit 2 with the message
naming the key and no traceback.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from conftest import REPO_ROOT
from edge import config as edge_config
from edge.errors import ConfigError

EXAMPLE = REPO_ROOT / "config" / "edge-face.example.toml"
# Settings whose example value differs from the built-in default, and why.
INSTALL_VALUES = {"paths.models_dir": "/opt/edge-face/models"}  # where scripts/install.sh puts the models


def example_values() -> dict[str, object]:
    raw = tomllib.loads(EXAMPLE.read_text())
    return {f"{section}.{key}": value for section, table in raw.items() for key, value in table.items()}


def test_example_has_exactly_the_settings_of_config_py():
    documented = set(example_values())
    known = {key for key, _default, _doc in edge_config.describe()}
    assert documented - known == set(), "the example has settings config.py does not know"
    assert known - documented == set(), "settings missing from config/edge-face.example.toml"


def test_example_values_are_the_defaults():
    values = example_values()
    for key, default, _doc in edge_config.describe():
        shown = values[key]
        if key in INSTALL_VALUES:
            assert shown == INSTALL_VALUES[key]
        elif default is None:
            assert shown == "none", key
        else:
            assert shown == default and type(shown) is type(default), f"{key}: example {shown!r}, default {default!r}"


def test_every_setting_has_a_comment_above_it():
    """Each key sits under a comment; related keys (width, height, fps) may share one comment block."""
    documented = False
    for line in EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            documented = True
        elif not stripped or stripped.startswith("["):
            documented = False  # a blank line or a new section ends a comment's reach
        else:
            assert documented, f"{stripped.split('=')[0].strip()} has no comment above it"


def test_example_loads():
    cfg = edge_config.load(EXAMPLE)
    assert cfg.models_dir.as_posix() == "/opt/edge-face/models"
    assert cfg.decision.threshold is None and cfg.decision.security_level == 100_000 and cfg.door.relay_pin == 17


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, key, allowed", [
    ("[door]\nrelay_pn = 17\n", "door.relay_pn", "known keys"),
    ("[dor]\nrelay_pin = 17\n", "dor", "known sections"),
    ("[door]\nrelay_pin = 99\n", "door.relay_pin", "between 0 and 53"),
    ("[door]\nrelay_pin = \"17\"\n", "door.relay_pin", "whole number"),
    ("[door]\npin_factory = \"gpio\"\n", "door.pin_factory", "auto, mock, lgpio"),
    ("[camera]\nsource = \"usb\"\n", "camera.source", "auto, picamera, opencv, folder, none"),
    ("[web]\nhttps = \"yes\"\n", "web.https", "true or false"),
    ("[decision]\nframes_required = 6\n", "decision.frames_required", "frames_considered"),
    ("[decision]\nunlock_seconds = 20\n", "decision.unlock_seconds", "max_unlock_seconds"),
    ("[door]\ngreen_led_pin = 17\n", "door.green_led_pin", "already used by door.relay_pin"),
    ("[camera]\nsource = \"folder\"\n", "camera.folder", "required"),
    ("[store]\nkey_source = \"tpm\"\n", "store.key_source", "file, credential, passphrase"),
    ("[logging]\nlevel = \"LOUD\"\n", "logging.level", "DEBUG, INFO"),
])
def test_errors_name_the_key_and_what_is_allowed(tmp_path, text, key, allowed):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        edge_config.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}") and allowed in message


def test_nullable_pins_accept_none(tmp_path):
    cfg = edge_config.load(write(tmp_path, '[door]\nbuzzer_pin = "none"\nalarm_pin = "None"\n'))
    assert cfg.door.buzzer_pin is None and cfg.door.alarm_pin is None


def test_relative_paths_are_next_to_the_file(tmp_path):
    cfg = edge_config.load(write(tmp_path, '[paths]\nstate_dir = "state"\n'))
    assert cfg.state_dir == tmp_path / "state"


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def test_config_check_prints_ok_and_a_summary():
    done = cli("config", "check", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"ok: {EXAMPLE}"
    text = done.stdout
    assert "relay 17" in text and "/opt/edge-face/models" in text and "https://127.0.0.1:8443" in text


def test_config_check_uses_the_global_config_option(tmp_path):
    path = write(tmp_path, "[web]\nport = 9443\nhttps = false\n")
    done = cli("--config", str(path), "config", "check")
    assert done.returncode == 0 and "http://127.0.0.1:9443" in done.stdout


@pytest.mark.parametrize("text, key", [("[web]\nport = 70000\n", "web.port"), ("[web\n", "not valid TOML")])
def test_config_check_reports_the_error_without_traceback(tmp_path, text, key):
    done = cli("config", "check", str(write(tmp_path, text)))
    assert done.returncode == 2
    assert key in done.stderr and "Traceback" not in done.stderr and done.stdout == ""


def test_config_check_missing_file(tmp_path):
    done = cli("config", "check", str(tmp_path / "nope.toml"))
    assert done.returncode == 2 and "configuration file not found" in done.stderr


def comment_above(lines: list[str]) -> dict[str, str]:
    """Each key of the example with the comment block it sits under (keys may share one block)."""
    result, block, section, after_key = {}, [], "", False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            block = [stripped] if after_key else block + [stripped]
            after_key = False
        elif stripped.startswith("["):
            section, block = stripped.strip("[]"), []
        elif not stripped:
            block = []
        else:
            after_key = True
            result[f"{section}.{stripped.split('=')[0].strip()}"] = " ".join(block)
    return result


def test_example_comments_follow_the_settings_table():
    """The table's run-time flag and ranges are what the example's comments say."""
    comments = comment_above(EXAMPLE.read_text().splitlines())
    for row in edge_config.SETTINGS:
        text = comments[row.key]
        assert ("[run time]" in text) == row.runtime, f"{row.key}: [run time] marker disagrees with the table"
        for bound in (row.min, row.max):
            if bound is not None:
                shown = f"{bound:g}" if bound != int(bound) or abs(bound) < 1e6 else str(int(bound))
                assert shown in text, \
                    f"{row.key}: the comment does not give the bound {bound:g}"


def test_setting_errors_name_their_field_as_an_attribute(tmp_path):
    with pytest.raises(edge_config.SettingError) as err:
        edge_config.load(write(tmp_path, "[decision]\nframes_required = 6\n"))
    assert err.value.field == "decision.frames_required"
    with pytest.raises(edge_config.SettingError) as err:
        edge_config.setting("threshold").parse("lots")
    assert err.value.field == "threshold" and err.value.problem.startswith("Enter a number")
    with pytest.raises(edge_config.SettingError, match="must be a number"):
        edge_config.load(write(tmp_path, "[decision]\nmargin = nan\n"))


def test_runtime_rows_are_the_store_settings_and_have_labels():
    from edge.store import SETTING_NAMES

    assert SETTING_NAMES == tuple(row.name for row in edge_config.RUNTIME_SETTINGS)
    assert "margin" in SETTING_NAMES and all(row.label for row in edge_config.RUNTIME_SETTINGS)
