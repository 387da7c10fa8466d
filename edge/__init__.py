"""edge-face: face unlock for a door on a Raspberry Pi."""

__version__ = "0.1.0"
