"""``edge-face config check`` and ``edge-face doctor``: is the configuration valid, and does the machine work?

Both look at ``/etc/edge-face/config.toml`` when no file is named, because that is the file the service reads
(``--config`` or a FILE argument win).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import config as _config
from .. import doctor as _doctor
from ..errors import ConfigError


def register(sub) -> None:
    cfg_parser = sub.add_parser("config", help="check the configuration file")
    cfg_sub = cfg_parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = cfg_sub.add_parser("check", help='print "ok" and a summary, or the first error (exit 2)')
    check.add_argument("file", nargs="?", metavar="FILE",
                       help=f"TOML file (default: --config, else {_config.DEFAULT_CONFIG_PATH})")
    check.set_defaults(func=config_check)

    doc = sub.add_parser("doctor", help="check camera, GPIO, models, key, database, disk, web port, MQTT broker "
                                        "and clock")
    doc.add_argument("--json", action="store_true", help="machine-readable output")
    doc.add_argument("--check", action="append", choices=_doctor.Doctor.CHECKS, metavar="NAME",
                     help=f"run only this check (repeatable): {', '.join(_doctor.Doctor.CHECKS)}")
    doc.set_defaults(func=doctor)


def config_path(args, file: str | None = None) -> Path | None:
    """FILE, else --config, else the system file if it exists, else None (built-in defaults)."""
    chosen = file or getattr(args, "config", None)
    if chosen:
        return Path(chosen)
    if _config.DEFAULT_CONFIG_PATH.is_file():
        return _config.DEFAULT_CONFIG_PATH
    return None


def config_check(args) -> int:
    path = config_path(args, args.file)
    cfg = _config.load(path)  # ConfigError -> the CLI prints it (naming the key) and exits 2
    warnings = []
    if cfg.mqtt.enabled:
        from ..mqtt.settings import check_files   # the broker's files: missing or unreadable is an error here

        warnings = check_files(cfg.mqtt)
    print(f"ok: {path if path else 'built-in defaults'}")
    for label, text in summary(cfg):
        print(f"  {label:<10} {text}")
    for warning in warnings:
        print(f"warning: {warning}")
    return 0


def summary(cfg: _config.Config) -> list[tuple[str, str]]:
    """The settings a person checks first, in words."""
    cam, door, dec, store, web = cfg.camera, cfg.door, cfg.decision, cfg.store, cfg.web
    camera = {"folder": f"folder {cam.folder}", "opencv": f"opencv {cam.device}"}.get(cam.source, cam.source)
    pins = ", ".join(f"{label} {getattr(door, key)}" for key, label in _config.PIN_NAMES
                     if getattr(door, key) is not None)
    relay = "active high" if door.relay_active_high else "active low"
    threshold = (f"from the security level (1 stranger in {dec.security_level:,} attempts)" if dec.threshold is None
                 else f"{dec.threshold:g} (overrides the security level)")
    key = {"file": f"file {cfg.key_file}", "credential": f"systemd credential {store.credential_name}",
           "passphrase": f"passphrase ({store.passphrase_file or 'typed at start'})"}[store.key_source]
    scheme = "https" if web.https else "http"
    return [
        ("camera", f"{camera}, {cam.width}x{cam.height} at {cam.fps:g} fps"),
        ("door", f"pins ({door.pin_factory}): {pins}; relay {relay}, at most {door.max_unlock_seconds:g} s"),
        ("model", f"{cfg.recognition.model} from {cfg.models_dir}"),
        ("decision", f"{dec.frames_required} of {dec.frames_considered} frames within {dec.window_seconds:g} s, "
                     f"threshold {threshold}, margin {dec.margin:g}, unlock {dec.unlock_seconds:g} s"),
        ("store", f"{cfg.state_dir}, key from {key}"),
        ("web", f"{scheme}://{web.host}:{web.port}" if web.enabled else "disabled"),
        ("mqtt", mqtt_summary(cfg.mqtt)),
        ("logging", cfg.logging.level),
    ]


def mqtt_summary(mqtt: _config.MqttConfig) -> str:
    if not mqtt.enabled:
        return "disabled"
    who = f" as {mqtt.username}" if mqtt.username else ""
    unlock = "remote unlock with code" if mqtt.allow_remote_unlock else "no remote unlock"
    faces = ", face crops published" if mqtt.publish_faces else ""
    return f"{mqtt.broker}{who}, topics {mqtt.topic}/, discovery {mqtt.discovery_prefix}/, {unlock}{faces}"


def doctor(args) -> int:
    path = config_path(args)
    try:
        cfg, error = _config.load(path), None
    except ConfigError as exc:
        cfg, error = _config.Config(), str(exc)
    checks = tuple(args.check) if args.check else None
    results = _doctor.Doctor(cfg, config_path=path, config_error=error).run(checks)
    print(_doctor.render_json(results) if args.json else _doctor.render_text(results))
    sys.stdout.flush()
    return _doctor.exit_code(results)

