"""LFW View 1 as the benchmarks and the model builder read it: the pairs files and the face each photograph labels.

One place for the format, so that the accuracy benchmark, the security calibration (``build_models.py``) and the
calibration crops (``make_calibration_set.py``) read the same pairs and pick the same face.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple


class Photo(NamedTuple):
    """One LFW photograph: ``(person, number)``; ``path`` is relative to the ``lfw_view1`` folder."""

    person: str
    number: int

    @property
    def path(self) -> str:
        return f"{self.person}/{self.person}_{self.number:04d}.jpg"


def read_pairs(pairs_file: Path) -> list[tuple[Photo, Photo, int]]:
    """The pairs of a View 1 pairs file (``pairsDevTrain.txt``, ``pairsDevTest.txt``): (first, second, 1 for the
    same person or 0 for two people). The first line gives the number of pairs of each kind."""
    lines = Path(pairs_file).read_text().split("\n")
    count = int(lines[0].split()[0])
    pairs = []
    for line in lines[1:1 + 2 * count]:
        p = line.split("\t")
        if len(p) == 3:
            pairs.append((Photo(p[0], int(p[1])), Photo(p[0], int(p[2])), 1))
        elif len(p) == 4:
            pairs.append((Photo(p[0], int(p[1])), Photo(p[2], int(p[3])), 0))
    return pairs


def pair_people(pairs_file: Path) -> set[str]:
    """Everyone a pairs file names."""
    return {photo.person for first, second, _ in read_pairs(pairs_file) for photo in (first, second)}


def central_face(faces, shape):
    """LFW labels the face in the middle of the picture; prefer it over a larger face at the edge. ``faces``:
    anything with ``.box`` (x, y, w, h)."""
    h, w = shape[:2]

    def cost(face):
        x, y, bw, bh = face.box
        return math.hypot(x + bw / 2 - w / 2, y + bh / 2 - h / 2) - 0.5 * min(bw, bh)
    return min(faces, key=cost)
