#!/usr/bin/env python3
"""Embeddings of a fixed set of real photographs, and one model invoke timed, on this machine.

scripts/pi-check.sh runs it twice: on the host (x86-64) and inside the emulated arm64 root, then compares the two
with ``--compare``: the aarch64 TFLite kernels and OpenCV build must give the same faces and, for every face, an
embedding at cosine >= --min-cosine to the host's. A difference here is what would make templates enrolled on a
PC fail at the door.

    pi_embeddings.py --models DIR --faces DIR --out FILE [--invokes N]
    pi_embeddings.py --models DIR --faces DIR --out FILE --compare HOST_FILE [--min-cosine 0.999]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# Relative to ../shared/faces: three multi-face scenes and two single portraits, 9 faces in all (3 + 2 + 2 + 1 + 1),
# from 480p to full-size photographs, so that detection at several scales is compared too.
PHOTOGRAPHS = (
    "face_recognition_examples/_scenes_multi_face/obama_and_biden.jpg",
    "face_recognition_examples/_scenes_multi_face/kit_with_rose.jpg",
    "face_recognition_examples/_scenes_multi_face/two_people.jpg",
    "face_recognition_examples/obama/res_obama-480p.jpg",
    "deepface_unit/id01/img1.jpg",
)


def describe(models_dir: Path, faces_dir: Path, invokes: int) -> dict:
    """Faces (box, embedding) of every photograph, and the median time of one single-crop model invoke."""
    from edge.recognition import FaceEngine, load_image

    result = {"machine": platform.machine(), "photographs": {}, "invoke_seconds": None}
    with FaceEngine(models_dir=models_dir) as engine:
        first_crop = None
        for relative in PHOTOGRAPHS:
            faces = engine.faces(load_image(faces_dir / relative))
            result["photographs"][relative] = [
                {"box": list(face.box), "embedding": [float(v) for v in face.embedding]} for face in faces]
            if first_crop is None and faces:
                first_crop = faces[0].crop
        result["model"] = engine.model_id
    if invokes and first_crop is not None:
        # One invoke = one aligned crop through the embedder, without the mirror image.
        with FaceEngine(models_dir=models_dir, flip_average=False) as single:
            single.embed(first_crop[None])                      # warm-up: tensor allocation
            times = []
            for _ in range(invokes):
                start = time.perf_counter()
                single.embed(first_crop[None])
                times.append(time.perf_counter() - start)
        result["invoke_seconds"] = statistics.median(times)
    return result


def compare(mine: dict, theirs: dict, min_cosine: float) -> tuple[list[str], list[str]]:
    """(report lines, problems): per face the cosine of this machine's embedding to the other's."""
    lines, problems = [], []
    for relative in PHOTOGRAPHS:
        a, b = mine["photographs"].get(relative, []), theirs["photographs"].get(relative, [])
        if len(a) != len(b) or not a:
            problems.append(f"{relative}: {len(a)} face(s) here, {len(b)} on {theirs['machine']}")
            continue
        for index, (fa, fb) in enumerate(zip(a, b)):
            shift = max(abs(p - q) for p, q in zip(fa["box"], fb["box"]))
            ea, eb = np.asarray(fa["embedding"]), np.asarray(fb["embedding"])
            cosine = float(ea @ eb / (np.linalg.norm(ea) * np.linalg.norm(eb)))
            lines.append(f"{relative} face {index + 1}: cosine {cosine:.5f}, box differs by {shift} px")
            if cosine < min_cosine:
                problems.append(f"{relative} face {index + 1}: cosine {cosine:.5f} < {min_cosine}")
            if shift > 4:
                problems.append(f"{relative} face {index + 1}: box {fa['box']} here, {fb['box']} there")
    return lines, problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="models folder (manifest.json)")
    parser.add_argument("--faces", type=Path, required=True, help="the shared photographs (../shared/faces)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write this machine's results to")
    parser.add_argument("--invokes", type=int, default=5, help="timed single-crop invokes (median reported)")
    parser.add_argument("--compare", type=Path, help="the other machine's JSON file")
    parser.add_argument("--min-cosine", type=float, default=0.999)
    args = parser.parse_args(argv)

    mine = describe(args.models, args.faces, args.invokes)
    args.out.write_text(json.dumps(mine))
    faces = sum(len(v) for v in mine["photographs"].values())
    print(f"{mine['machine']}: {faces} faces in {len(PHOTOGRAPHS)} photographs; one invoke "
          f"{mine['invoke_seconds']:.3f} s (median of {args.invokes})")
    if not args.compare:
        return 0
    theirs = json.loads(args.compare.read_text())
    lines, problems = compare(mine, theirs, args.min_cosine)
    for line in lines:
        print("  " + line)
    cosines = [float(line.split("cosine ")[1].split(",")[0]) for line in lines]
    if cosines:
        print(f"embedding agreement {mine['machine']} vs {theirs['machine']}: {len(cosines)} faces, "
              f"lowest cosine {min(cosines):.5f}, mean {statistics.mean(cosines):.5f}")
    if mine["invoke_seconds"] and theirs.get("invoke_seconds"):
        print(f"one invoke: {mine['invoke_seconds']:.3f} s on {mine['machine']}, {theirs['invoke_seconds']:.3f} s "
              f"on {theirs['machine']}: ratio {mine['invoke_seconds'] / theirs['invoke_seconds']:.1f}x")
    if problems:
        print("embeddings differ: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
