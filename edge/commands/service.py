"""``edge-face run``: the door daemon (what systemd starts and what scripts/run.sh runs)."""

from __future__ import annotations

import argparse

from . import load_config


def register(sub) -> None:
    p = sub.add_parser("run", help="run the door service: camera, recognition, door pins and the admin page")
    # Also accepted after the subcommand (`edge-face run --config FILE`), as the unit file writes it.
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="TOML configuration file (default: built-in settings)")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from ..service import run_from_config

    cfg = load_config(args)
    return run_from_config(cfg, config_path=getattr(args, "config", None))
