#!/usr/bin/env python3
"""Accuracy of the recognition pipeline on LFW View 1, and the door threshold of each model.

Protocol (choose on DevTrain, report on DevTest):
  * detection rate over every LFW View 1 image (YuNet at the configured score);
  * for each embedder in the manifest: the accuracy-maximising threshold on the DevTrain pairs, applied to the
    DevTest pairs, with and without horizontal-flip averaging;
  * the door threshold: the lowest cosine at which at most 1 in 100,000 different-person pairs among ALL
    DevTrain images is accepted (about 5.9 M pairs, one matrix product), and the true-accept rate at that
    threshold over all same-person DevTrain pairs.
``--sweep`` compares alignment settings on DevTrain only (the experiment that chose align.ALIGN_ZOOM/ROTATE).
``--write-threshold`` stores the door thresholds in models/manifest.template.json and models/manifest.json.

Usage: .venv/bin/python scripts/bench_accuracy.py [--models-dir models] [--faces-dir ../shared/faces]
                                                 [--sweep] [--write-threshold]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.atomic import write_durable  # noqa: E402
from edge.recognition import align, models  # noqa: E402
from edge.recognition.detect import create_detector, detect_faces  # noqa: E402
from edge.recognition.embed import embed_crops, l2_normalise  # noqa: E402
from edge.recognition.images import load_image  # noqa: E402
from lfw import central_face, read_pairs  # noqa: E402  (scripts/lfw.py)

DOOR_FAR = 1e-5


def best_threshold(sims: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, threshold) maximising pair accuracy; accept when similarity >= threshold."""
    order = np.argsort(sims)
    s, lab = sims[order], labels[order]
    n = len(s)
    diff_below = np.concatenate([[0], np.cumsum(lab == 0)])
    same_below = np.concatenate([[0], np.cumsum(lab == 1)])
    acc = (diff_below + (lab.sum() - same_below)) / n
    i = int(np.argmax(acc))
    thr = (s[i - 1] + s[i]) / 2 if 0 < i < n else (s[0] - 1e-3 if i == 0 else s[-1] + 1e-3)
    return float(acc[i]), float(thr)


def accuracy_at(sims, labels, thr) -> float:
    return float(np.mean((sims >= thr) == (labels == 1)))


def door_threshold(emb: np.ndarray, identities: np.ndarray, far: float = DOOR_FAR):
    """Lowest threshold (3 decimals) with false accepts <= far over all different-person pairs."""
    sims = emb @ emb.T
    iu = np.triu_indices(len(emb), 1)
    same = (identities[:, None] == identities[None, :])[iu]
    scores = sims[iu]
    neg, pos = scores[~same], scores[same]
    allowed = int(math.floor(far * len(neg)))
    neg_desc = -np.sort(-neg)
    thr = math.floor(float(neg_desc[allowed]) * 1000) / 1000 + 0.001   # strictly above the (allowed+1)-th
    false_accepts = int(np.sum(neg >= thr))
    return thr, float(np.mean(pos >= thr)), false_accepts, len(neg), len(pos)


class Pipeline:
    """Detector + crops for a set of LFW images, shared by every model."""

    def __init__(self, models_dir: Path, lfw: Path, score: float):
        manifest = models.load_manifest(models_dir)
        entry = models.model_entry(manifest, manifest.get("detector", "yunet"))
        self.detector = create_detector(models.verified_path(models_dir, entry), score_threshold=score)
        self.lfw = lfw
        self.images: dict[str, np.ndarray] = {}
        self.detections: dict[str, object] = {}

    def detect_all(self, names):
        missed = []
        for name in names:
            image = load_image(self.lfw / name)
            faces = detect_faces(self.detector, image)
            if faces:
                self.images[name] = image
                self.detections[name] = central_face(faces, image.shape)
            else:
                missed.append(name)
        return missed

    def crops(self, names, **align_options) -> np.ndarray:
        out = np.zeros((len(names), 160, 160, 3), np.uint8)   # a missed face stays grey-black: a sure mismatch
        for i, name in enumerate(names):
            if name in self.detections:
                det = self.detections[name]
                if align_options.get("box_margin") is not None:
                    out[i] = align.crop_box(self.images[name], det.box, margin=align_options["box_margin"])
                else:
                    out[i] = align.align_face(self.images[name], det.landmarks,
                                              **{k: v for k, v in align_options.items() if k != "box_margin"})
        return out


def embed_both(interpreter, crops, colour_order) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings without and with flip averaging, from one pass over the crops and one over their mirrors."""
    plain = np.concatenate([embed_crops(interpreter, crops[i:i + 32], flip_average=False,
                                        colour_order=colour_order) for i in range(0, len(crops), 32)])
    mirrored = np.concatenate([embed_crops(interpreter, crops[i:i + 32, :, ::-1], flip_average=False,
                                           colour_order=colour_order) for i in range(0, len(crops), 32)])
    return plain, l2_normalise(plain + mirrored)


def pair_sims(emb, index, pairs):
    a = np.array([index[p[0]] for p in pairs])
    b = np.array([index[p[1]] for p in pairs])
    return np.sum(emb[a] * emb[b], axis=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=Path(os.environ.get("EDGE_FACE_MODELS_DIR", REPO / "models")))
    ap.add_argument("--faces-dir", type=Path,
                    default=Path(os.environ.get("EDGE_FACE_FACES_DIR", REPO.parent / "shared" / "faces")))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--detector-score", type=float, default=0.8)
    ap.add_argument("--models", default="", help="comma-separated embedder ids (default: all in the manifest)")
    ap.add_argument("--sweep", action="store_true", help="compare alignment settings on DevTrain (int8)")
    ap.add_argument("--write-threshold", action="store_true",
                    help="store the door thresholds in manifest.template.json and manifest.json")
    args = ap.parse_args(argv)

    lfw = args.faces_dir / "lfw_view1"
    train, test = ([(a.path, b.path, same) for a, b, same in read_pairs(lfw / name)]
                   for name in ("pairsDevTrain.txt", "pairsDevTest.txt"))
    all_images = sorted(str(p.relative_to(lfw)) for p in lfw.glob("*/*.jpg"))
    train_images = sorted({p for a, b, _ in train for p in (a, b)})
    test_images = sorted({p for a, b, _ in test for p in (a, b)})
    pipe = Pipeline(args.models_dir, lfw, args.detector_score)

    t0 = time.perf_counter()
    missed = pipe.detect_all(all_images)
    rate = 1 - len(missed) / len(all_images)
    print(f"detection: {len(all_images) - len(missed)}/{len(all_images)} LFW View 1 images = {rate * 100:.2f}% "
          f"(score >= {args.detector_score}; {time.perf_counter() - t0:.0f} s)")
    for name in missed[:10]:
        print(f"  no face: {name}")

    manifest = models.load_manifest(args.models_dir)
    wanted = [m for m in args.models.split(",") if m] or [
        m["id"] for m in manifest["models"] if m.get("kind", "embedder") == "embedder"]
    train_labels = np.array([p[2] for p in train])
    test_labels = np.array([p[2] for p in test])
    identities = np.array([n.split("/")[0] for n in train_images])
    t_index = {n: i for i, n in enumerate(train_images)}
    s_index = {n: i for i, n in enumerate(test_images)}

    if args.sweep:
        sweep(pipe, manifest, args, train_images, train, train_labels, t_index, identities)

    train_crops = pipe.crops(train_images)
    test_crops = pipe.crops(test_images)
    results = {}
    print(f"\n{'model':18s} {'flip':5s} {'DevTrain acc':>12s} {'thr':>6s} {'DevTest acc':>11s} "
          f"{'door thr':>8s} {'TAR@1e-5':>8s} {'FA':>4s}")
    for model_id in wanted:
        entry = models.model_entry(manifest, model_id)
        interpreter = models.make_interpreter(models.verified_path(args.models_dir, entry), args.threads)
        colour = entry.get("colour_order", "RGB")
        t0 = time.perf_counter()
        tr_plain, tr_flip = embed_both(interpreter, train_crops, colour)
        te_plain, te_flip = embed_both(interpreter, test_crops, colour)
        seconds = time.perf_counter() - t0
        for flip, tr, te in (("off", tr_plain, te_plain), ("on", tr_flip, te_flip)):
            acc_train, thr = best_threshold(pair_sims(tr, t_index, train), train_labels)
            acc_test = accuracy_at(pair_sims(te, s_index, test), test_labels, thr)
            door, tar, fa, n_neg, n_pos = door_threshold(tr, identities)
            results[(model_id, flip)] = dict(acc_train=acc_train, thr=thr, acc_test=acc_test, door=door, tar=tar)
            print(f"{model_id:18s} {flip:5s} {acc_train * 100:11.2f}% {thr:6.3f} {acc_test * 100:10.2f}% "
                  f"{door:8.3f} {tar * 100:7.1f}% {fa:4d}")
        print(f"{'':18s} ({len(train_images) + len(test_images)} images embedded twice in {seconds:.0f} s; "
              f"door threshold over {n_neg:,} different-person and {n_pos:,} same-person pairs)")

    if args.write_threshold:
        thresholds = {m: results[(m, "on")]["door"] for m in wanted}
        for name in ("manifest.template.json", "manifest.json"):
            path = args.models_dir / name
            if path.is_file():
                write_thresholds(path, thresholds)
                print(f"wrote door thresholds (flip averaging on) to {path}")
    return 0


def sweep(pipe, manifest, args, train_images, train, labels, index, identities):
    """Alignment settings compared on DevTrain only, with the shipped (int8) model."""
    entry = models.model_entry(manifest, manifest.get("default_model", "facenet-int8"))
    interpreter = models.make_interpreter(models.verified_path(args.models_dir, entry), args.threads)
    settings = {"box + 20% margin": dict(box_margin=0.2), "box + 0% margin": dict(box_margin=0.0)}
    for rotate in (True, False):
        for zoom in (1.0, 1.1, 1.25, 1.4):
            settings[f"landmarks zoom {zoom} roll {'on' if rotate else 'off'}"] = dict(zoom=zoom, rotate=rotate)
    print(f"\nalignment sweep on DevTrain ({entry['id']}): best-threshold accuracy / TAR at FAR 1e-5")
    for name, options in settings.items():
        plain, flipped = embed_both(interpreter, pipe.crops(train_images, **options), entry.get("colour_order", "RGB"))
        row = []
        for emb in (plain, flipped):
            acc, _ = best_threshold(pair_sims(emb, index, train), labels)
            _, tar, *_ = door_threshold(emb, identities)
            row.append(f"{acc * 100:.2f}% / {tar * 100:.1f}%")
        print(f"  {name:32s} flip off {row[0]:18s} flip on {row[1]}")


def write_thresholds(path: Path, thresholds: dict[str, float]) -> None:
    """Change only the threshold fields of the named models, keeping the rest of the file byte for byte
    (the models build owns everything else in it)."""
    text = path.read_text()
    for model_id, value in thresholds.items():
        start = text.find(f'"id": "{model_id}"')
        if start < 0:
            continue
        end = text.find('"id": ', start + 1)
        end = len(text) if end < 0 else end
        block = text[start:end]
        block = re.sub(r'"threshold": -?[0-9.]+', f'"threshold": {value:.3f}', block, count=1)
        block = re.sub(r'"threshold_calibrated": (true|false)', '"threshold_calibrated": true', block, count=1)
        text = text[:start] + block + text[end:]
    json.loads(text)                                   # still valid JSON, or nothing is written
    write_durable(path, text.encode("utf-8"), mode=0o644)


if __name__ == "__main__":
    sys.exit(main())
