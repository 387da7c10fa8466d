"""Subcommands of ``edge-face``: one module per area, each with ``register(subparsers)``.

Each ``register`` adds its parsers and sets ``func=handler``; a handler takes the parsed arguments and returns
an exit code. Handlers raise :class:`edge.errors.EdgeError` for anything a person has to fix.
"""

from __future__ import annotations


from .. import config as _config


def load_config(args) -> _config.Config:
    """The configuration named by ``--config`` (or the built-in defaults)."""
    return _config.load(getattr(args, "config", None))
