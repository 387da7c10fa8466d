#!/usr/bin/env python3
"""Time each stage of the recognition pipeline on camera-sized frames, and the peak memory.

Frames are made by placing a real photograph of ../shared/faces on a grey canvas (a face of about a third of
the frame height, as at a door). Stages: decode (JPEG bytes -> BGR, as for an upload or an MJPEG camera),
detect (YuNet), align (one face), embed (FaceNet, with the engine's flip averaging: one batch of two),
compare (one probe ranked against 100 people enrolled with 3 templates each, as the door does). 'det@' is the side detection runs at. Target: detect + embed <= 15 ms per 640x480 frame
with 2 threads. Timings are medians over --repeat runs; the machine is shared, so expect noise.

Usage: .venv/bin/python scripts/bench_speed.py [--model facenet-int8] [--repeat 50]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.recognition import FaceEngine, decode_image, load_image  # noqa: E402
from edge.recognition.embed import embed_crops  # noqa: E402
from edge.recognition.match import Ranker  # noqa: E402

# (width, height, detect side): the first row is the camera path (recognition.frame_detect_side = 320), then
# full-size detection, and what detecting a 720p frame at 320 or 640 saves.
SIZES = ((640, 480, 320), (640, 480, 640), (1280, 720, 1280), (1280, 720, 640), (1280, 720, 320))
# The reference workload, timed in the same run: one float32 FaceNet invoke on 1 thread. ../shared/FACTS.md
# measured it at 13.9 ms on the machine where the targets were set; the ratio tells how fast this machine is.
REFERENCE_MS = 13.9
PHOTO = "face_recognition_examples/obama/obama.jpg"


def make_frame(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photograph scaled to 80% of the frame height, pasted left of centre on a grey canvas."""
    canvas = np.full((height, width, 3), 96, np.uint8)
    scale = 0.8 * height / photo.shape[0]
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    y0, x0 = (height - h) // 2, max(0, width // 3 - w // 2)
    canvas[y0:y0 + h, x0:x0 + w] = small[:, : width - x0]
    return canvas


def median_ms(fn, repeat: int) -> float:
    fn()                                              # warm-up (allocations, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def reference_ms(models_dir: Path, repeat: int) -> float:
    """Median float32 FaceNet invoke on 1 thread: the yardstick that makes runs on different machines comparable."""
    from edge.recognition import models

    manifest = models.load_manifest(models_dir)
    interp = models.make_interpreter(models.verified_path(models_dir, models.model_entry(manifest, "facenet-float32")), 1)
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.random.default_rng(0).normal(size=inp["shape"]).astype(np.float32))
    return median_ms(interp.invoke, repeat)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=Path(os.environ.get("EDGE_FACE_MODELS_DIR", REPO / "models")))
    ap.add_argument("--faces-dir", type=Path,
                    default=Path(os.environ.get("EDGE_FACE_FACES_DIR", REPO.parent / "shared" / "faces")))
    ap.add_argument("--model", default="facenet-int8")
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args(argv)

    photo = load_image(args.faces_dir / PHOTO)
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(300, 128)).astype(np.float32)
    # As the door ranks: built once per gallery revision, mean template per user, the best two.
    rank = Ranker([f"user{i // 3}" for i in range(300)], templates / np.linalg.norm(templates, axis=1, keepdims=True))
    print(f"model {args.model}, median of {args.repeat} runs, milliseconds per frame (one face)")
    print(f"{'frame':>9s} {'det@':>4s} {'thr':>3s} {'decode':>7s} {'detect':>7s} {'align':>6s} {'embed':>6s} {'compare':>7s} "
          f"{'det+emb':>7s} {'total':>6s}")
    extra = []
    camera_path = []
    for threads in (1, 2):
        cv2.setNumThreads(threads)
        engine = FaceEngine(models_dir=args.models_dir, model=args.model, num_threads=threads)
        for width, height, max_side in SIZES:
            engine.detect_max_side = max_side
            frame = make_frame(photo, width, height)
            jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            detections = engine.detect(frame)
            if len(detections) != 1:
                print(f"expected one face in the {width}x{height} frame, found {len(detections)}", file=sys.stderr)
                return 1
            crop = engine.align(frame, detections[0])
            embedding = engine.embed(crop[None])[0]
            t = dict(
                decode=median_ms(lambda: decode_image(jpeg), args.repeat),
                detect=median_ms(lambda: engine.detect(frame), args.repeat),
                align=median_ms(lambda: engine.align(frame, detections[0]), args.repeat),
                embed=median_ms(lambda: engine.embed(crop[None]), args.repeat),
                compare=median_ms(lambda: rank(embedding, top=2), args.repeat),
            )
            total = sum(t.values())
            print(f"{width}x{height:<4d} {min(max_side, width):4d} {threads:3d} {t['decode']:7.2f} {t['detect']:7.2f} {t['align']:6.2f} "
                  f"{t['embed']:6.2f} {t['compare']:7.2f} {t['detect'] + t['embed']:7.2f} {total:6.2f}")
            if (width, height, max_side) == SIZES[0]:
                camera_path.append((f"640x480 camera path, {threads} thread(s)", t["detect"] + t["embed"]))
                interp = engine._interpreter
                single = median_ms(lambda: embed_crops(interp, crop[None], flip_average=False), args.repeat)
                pair_sequential = median_ms(lambda: (embed_crops(interp, crop[None], flip_average=False),
                                                     embed_crops(interp, crop[None, :, ::-1], flip_average=False)),
                                            args.repeat)
                extra.append(f"{threads} thread(s): embed one crop {single:.2f} ms; flip pair as one batch "
                             f"{t['embed']:.2f} ms vs two calls {pair_sequential:.2f} ms")
        engine.close()
    for line in extra:
        print(line)
    reference = reference_ms(args.models_dir, args.repeat)
    factor = reference / REFERENCE_MS
    print(f"reference: float32 FaceNet invoke, 1 thread: {reference:.2f} ms here, {REFERENCE_MS} ms in FACTS.md "
          f"-> this machine runs {factor:.2f}x slower")
    for label, ms in camera_path:
        print(f"{label}: detect + embed {ms:.2f} ms = {ms / reference:.2f} x reference "
              f"= {ms / factor:.2f} ms on the FACTS machine (target <= 15 ms)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
