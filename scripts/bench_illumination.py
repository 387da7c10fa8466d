#!/usr/bin/env python3
"""The illumination cue on moving faces: live clips and hand-held NUAA prints rendered under a simulated LED.

For every clip in ``../shared/liveness/clips`` (live, and the same frames on a screen) and for NUAA print
sequences (flat and bent round a vertical axis), 30 door frames (every second frame, at 30% less exposure so
the LED has headroom) are rendered with a random on/off pattern (``edge.liveness.synth_light``) and judged by
the cue's numbers with the judge's thresholds: "shaded" (confirms in passive mode), "flat" (spoof), "follows"
(no verdict from the light) or "not-followed" (never live). ``tests/test_illumination.py`` covers still faces.

    .venv/bin/python scripts/bench_illumination.py [--patterns 4] [--prints 9] [--frames 30]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from edge.liveness import datasets, synth_light
from edge.liveness.illumination import IlluminationResponse
from edge.liveness.judge import Thresholds
from edge.recognition import FaceEngine

ROOT = Path(__file__).resolve().parent.parent


def verdict(n, t: Thresholds) -> str:
    if n is None:
        return "too few frames"
    if n.follow < t.light_follow or n.response < t.light_response:
        return "not-followed"
    if n.pairs >= t.light_pairs and max(n.shading, n.noise) < t.light_flat:
        return "flat"
    if n.pairs >= t.light_pairs and n.noise <= t.light_max_noise and \
            n.shading >= max(t.light_shading, t.light_snr * n.noise):
        return "shaded"
    return "follows"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "liveness"))
    parser.add_argument("--models", default=str(ROOT / "models"))
    parser.add_argument("--patterns", type=int, default=4, help="random patterns per sequence")
    parser.add_argument("--prints", type=int, default=9, help="NUAA print sequences")
    parser.add_argument("--frames", type=int, default=30, help="door frames per window")
    args = parser.parse_args()
    t = Thresholds()
    engine = FaceEngine(models_dir=args.models, num_threads=2)
    tally: dict[tuple[str, str], Counter] = {}
    worst_print_ratio = 0.0

    def run(group: str, name: str, frames, kinds) -> None:
        nonlocal worst_print_ratio
        found = [(f, engine.faces(f, limit=1)) for f in frames]
        faces = [((f * 0.7).astype(np.uint8), d[0]) for f, d in found if d]
        for kind in kinds:
            seen = []
            for rep in range(args.patterns):
                rng = np.random.default_rng(rep)
                response = IlluminationResponse()
                for frame, face in faces:
                    lit = bool(rng.integers(2))
                    gain = synth_light.gain_map(frame.shape, kind, box=face.box, landmarks=face.landmarks)
                    response.add(synth_light.render(frame, lit=lit, gain=gain, rng=rng), face.box, lit,
                                 face.landmarks)
                n = response.numbers()
                seen.append(verdict(n, t))
                if n is not None and group == "nuaa" and n.noise > 0:
                    worst_print_ratio = max(worst_print_ratio, n.shading / n.noise)
            tally.setdefault((group, kind), Counter()).update(seen)
            print(f"{name:32s} {kind:10s} {' '.join(seen)}", flush=True)

    for clip in datasets.clip_sequences(args.data):
        frames = [f for i, (_, f) in enumerate(clip.frames()) if i % 2 == 0][10:10 + args.frames]
        run("clip", clip.name, frames, ("live", "screen"))
    for seq in datasets.nuaa_sequences(args.data, "spoof")[::5][:args.prints]:
        run("nuaa", seq.name, [f for _, f in seq.frames()][:args.frames], ("print", "bent-print"))
    print()
    for (group, kind), counts in tally.items():
        print(f"{group} {kind}: {dict(counts)}")
    print(f"moving prints: highest shading / noise floor {worst_print_ratio:.2f} (confirmation needs "
          f"{t.light_snr:g} and a noise floor at most {t.light_max_noise:g})")


if __name__ == "__main__":
    main()
