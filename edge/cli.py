"""The ``edge-face`` command line: one entry point, subcommands registered by area."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .diskspace import disk_full_error, is_disk_full
from .errors import EdgeError

# Modules under edge.commands that contribute subcommands; each has register(subparsers).
COMMAND_MODULES = ("recognition", "models", "store", "service", "system", "mqtt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-face", description="Face unlock for a door.")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (default: built-in settings)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"edge.commands.{name}").register(sub)
    return parser


def setup_logging(level: str = "INFO") -> None:
    """One line per event on stderr, which journald captures under systemd."""
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging("DEBUG" if args.verbose else "INFO")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeError as exc:
        print(f"edge-face: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        error = disk_full_error(exc.filename, "a file")   # any write the atomic helpers did not wrap
        print(f"edge-face: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
