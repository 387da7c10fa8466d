"""Liveness: tell a live face at the door from a printed photograph or a screen (issue 15).

Plain functions over numpy arrays, one module per cue (``blink``, ``motion``, ``screen``, ``challenge``), the
models they need (``mesh``, ``eyes``), and :class:`~edge.liveness.judge.LivenessJudge`, which fuses them per face
track. ``synth`` renders presentation attacks for tests and ``scripts/bench_liveness.py``.
"""

from .judge import LIVE, MODES, SPOOF, UNDECIDED, LivenessJudge, LivenessModels, Thresholds, Verdict

__all__ = ["LIVE", "MODES", "SPOOF", "UNDECIDED", "LivenessJudge", "LivenessModels", "Thresholds", "Verdict"]
