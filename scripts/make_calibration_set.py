#!/usr/bin/env python3
"""Write aligned face crops for calibrating the full-int8 model (``build_models.py --calibration-dir``).

Why: full-integer quantisation fixes the range of every activation from sample inputs; calibrating on random
noise cost accuracy, so the samples are real faces cut out exactly as the door cuts them (the recognition
engine's detector and aligner). They come from LFW View 1 **DevTrain** people only, never from anyone in
DevTest, so that the accuracy measured on DevTest is not flattered. The crops are photographs of real people:
they go to the cache folder (outside the repository), never into git.

Usage: scripts/make_calibration_set.py [--count 400] [--out DIR] [--faces-dir ../shared/faces]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import sys
from pathlib import Path

import cv2

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
import build_models  # noqa: E402  (same folder: the cache location and the crop size)
from lfw import read_pairs  # noqa: E402

from edge.errors import EdgeError  # noqa: E402

log = logging.getLogger("edge.make_calibration_set")

DEFAULT_FACES_DIR = Path(os.environ.get("EDGE_FACE_FACES_DIR", REPO_ROOT.parent / "shared" / "faces"))


def pair_images(pairs_file: Path) -> set[tuple[str, int]]:
    """(person, image number) of every image a View 1 pairs file refers to."""
    return {photo for first, second, _ in read_pairs(pairs_file) for photo in (first, second)}


def choose_images(lfw: Path, count: int, seed: int = 0) -> list[Path]:
    """DevTrain images of people absent from DevTest: one per person first, so many faces are represented."""
    train = pair_images(lfw / "pairsDevTrain.txt")
    test_people = {person for person, _ in pair_images(lfw / "pairsDevTest.txt")}
    by_person: dict[str, list[int]] = {}
    for person, number in sorted(train):
        if person not in test_people:
            by_person.setdefault(person, []).append(number)
    rng = random.Random(seed)
    people = sorted(by_person)
    rng.shuffle(people)
    chosen = [(p, by_person[p][0]) for p in people]
    chosen += [(p, n) for p in people for n in by_person[p][1:]]
    return [lfw / person / f"{person}_{number:04d}.jpg" for person, number in chosen[:count]]


def write_crops(images: list[Path], out: Path, models_dir: Path) -> int:
    from edge.recognition import FaceEngine, load_image

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = 0
    engine = FaceEngine(models_dir=models_dir)
    try:
        for path in images:
            faces = engine.faces(load_image(path))
            if not faces or not faces[0].quality.ok:
                log.debug("%s: no usable face, skipped", path.name)
                continue
            crop = faces[0].crop
            size = build_models.INPUT_SIZE
            if crop.shape != (size, size, 3):
                raise EdgeError(f"the engine's aligned crop is {crop.shape}, expected ({size}, {size}, 3)")
            cv2.imwrite(str(out / f"{path.stem}.png"), crop)
            written += 1
    finally:
        engine.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces-dir", type=Path, default=DEFAULT_FACES_DIR)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <cache>/calibration/lfw_devtrain, outside the checkout)")
    parser.add_argument("--count", type=int, default=400, help="number of images to try (default 400)")
    parser.add_argument("--models-dir", type=Path, default=build_models.DEFAULT_MODELS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or build_models.default_calibration_dir()
    lfw = args.faces_dir / "lfw_view1"
    if not (lfw / "pairsDevTrain.txt").is_file():
        print(f"make_calibration_set: {lfw} has no pairsDevTrain.txt (set --faces-dir)", file=sys.stderr)
        return 2
    try:
        images = choose_images(lfw, args.count)
        written = write_crops(images, out, args.models_dir)
    except EdgeError as exc:
        print(f"make_calibration_set: {exc}", file=sys.stderr)
        return 2
    log.info("wrote %d aligned crops from %d DevTrain images to %s", written, len(images), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
