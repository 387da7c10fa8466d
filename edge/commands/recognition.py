"""``edge-face faces``, ``verify`` and ``identify``: the recognition pipeline from the command line.

Useful to check a camera angle, an enrolment photograph or the threshold by hand, without the service.
Every failure a person can fix (unreadable file, no face, missing or corrupt model) is an EdgeError, which the
CLI prints as one sentence with exit status 2.
"""

from __future__ import annotations

import json
import sys

from ..errors import ImageError
from . import load_config

SAME, DIFFERENT = 0, 1


def register(sub) -> None:
    p = sub.add_parser("faces", help="detect faces in photographs and print box, score, quality, embedding",
                       description="Detect the faces in each photograph (largest first) and print their box, "
                                   "detector score, quality and embedding.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photograph files (JPEG, PNG, ...)")
    p.add_argument("--json", action="store_true", help="one JSON object per photograph (JSON Lines)")
    p.set_defaults(func=cmd_faces)

    p = sub.add_parser("verify", help="compare the faces of two photographs (exit 0 same person, 1 different)",
                       description="Compare the one face in photograph A with the one face in photograph B. "
                                   "Exit status: 0 same person, 1 different people, 2 error.")
    p.add_argument("a", metavar="A", help="first photograph")
    p.add_argument("b", metavar="B", help="second photograph")
    p.add_argument("--threshold", type=float, default=None,
                   help="cosine threshold (default: the model's per-comparison threshold from the manifest)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("identify", help="who is this? rank each face against the enrolled people as the door does",
                       description="Rank every face of each photograph against the active users exactly as the "
                                   "door ranks a face (same ranking, threshold and margin) and print the decision. "
                                   "A photograph is one look: the door, seeing several frames, decides on more. "
                                   "Exit status: 0 if every photograph had a face the door would let in, 1 if "
                                   "not, 2 on error.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photograph files")
    p.add_argument("--top", type=int, default=3, help="how many people to list per face (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per photograph (JSON Lines)")
    p.set_defaults(func=cmd_identify)


def cmd_faces(args) -> int:
    from ..recognition import FaceEngine, load_image

    cfg = load_config(args)
    engine = FaceEngine.from_config(cfg)
    mesh = _face_mesh(cfg) if args.json else None
    status = 0
    try:
        for path in args.images:
            try:
                image = load_image(path)
                faces = engine.faces(image)
            except ImageError as exc:
                # One bad file among many: report it, keep going, fail at the end.
                print(f"edge-face: {exc}", file=sys.stderr)
                status = 2
                continue
            if args.json:
                print(json.dumps({"image": path, "model": engine.model_id,
                                  "faces": [_face_dict(f, image, mesh) for f in faces]}))
            else:
                _print_faces(path, faces)
    finally:
        engine.close()
        if mesh is not None:
            mesh.close()
    return status


def _face_mesh(cfg):
    """The liveness face mesh for ``faces --json`` (468 points per face), or None if it is not built."""
    from ..errors import ModelError
    from ..liveness.mesh import FaceMesh

    try:
        return FaceMesh(models_dir=cfg.models_dir, num_threads=cfg.recognition.num_threads)
    except ModelError as exc:
        print(f"edge-face: no face mesh in the output ({exc})", file=sys.stderr)
        return None


def cmd_verify(args) -> int:
    from ..recognition import FaceEngine, load_image
    from ..recognition.match import cosine

    cfg = load_config(args)
    engine = FaceEngine.from_config(cfg)
    try:
        # One photograph against one: the manifest's per-comparison threshold (false accepts at most 1 in
        # 100,000 pairs on LFW DevTrain), not the door's, which guards a comparison with every enrolled person.
        threshold, source = ((args.threshold, "given with --threshold") if args.threshold is not None else
                             (engine.threshold, f"the {engine.model_id.split(':')[0]} manifest's per-comparison "
                                                "threshold: at most 1 false accept in 100,000 pairs"))
        faces = [_single_face(engine, path, load_image(path)) for path in (args.a, args.b)]
    finally:
        engine.close()
    similarity = cosine(faces[0].embedding, faces[1].embedding)
    same = similarity >= threshold
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "similarity": round(similarity, 4),
                          "threshold": threshold, "threshold_source": source, "same_person": bool(same),
                          "model": engine.model_id}))
    else:
        verdict = "same person" if same else "different people"
        print(f"similarity {similarity:.3f} (threshold {threshold:.3f}, {source}): {verdict}")
    return SAME if same else DIFFERENT


def cmd_identify(args) -> int:
    from ..decision import Candidate, door_policy, votes_for
    from ..recognition import FaceEngine, load_image
    from ..recognition.match import Ranker
    from .store import _open

    cfg, store, _log = _open(args, log=False)
    engine = FaceEngine.from_config(cfg)
    status = SAME
    try:
        gallery = store.gallery(engine.model_id)
        rank = Ranker.for_gallery(gallery, aggregation=cfg.decision.aggregation,   # the door's ranking
                                  centre=engine.score_centre)
        policy, source = door_policy(cfg.decision, store.settings, security=engine.security,
                                     model_threshold=engine.threshold, people=len(rank))
        if not args.json:
            print(f"{len(rank)} people enrolled; door threshold {policy.threshold:.3f} ({source}); "
                  f"margin {policy.margin:g}")
        for path in args.images:
            try:
                faces = engine.faces(load_image(path))
            except ImageError as exc:
                print(f"edge-face: {exc}", file=sys.stderr)
                status = 2
                continue
            out: list[dict] = []
            for face in faces:
                ranked = [(_username(store, uid), score) for uid, score in rank(face.embedding, top=max(2, args.top))]
                best = ranked[0] if ranked else (None, -1.0)
                candidate = Candidate(user_id=best[0], score=best[1],
                                      runner_up=ranked[1][1] if len(ranked) > 1 else -1.0, embedding=face.embedding)
                small = min(face.box[2], face.box[3]) < policy.min_face_px
                granted = votes_for(policy, candidate) and not small
                if granted:
                    decision = f"would let in {best[0]}"
                elif small:
                    decision = f"too small to judge (under {policy.min_face_px} px)"
                elif best[1] >= policy.threshold:
                    decision = f"refused: {best[0]} does not lead the next person by {policy.margin:g}"
                else:
                    decision = "unknown"
                out.append({"box": list(face.box), "granted": granted, "user": best[0] if granted else None,
                            "decision": decision,
                            "ranking": [{"user": u, "similarity": round(float(sc), 4)} for u, sc in ranked[:args.top]]})
            if not any(f["granted"] for f in out) and status == SAME:
                status = DIFFERENT
            if args.json:
                print(json.dumps({"image": path, "threshold": policy.threshold, "threshold_source": source,
                                  "margin": policy.margin, "model": engine.model_id, "faces": out}))
            else:
                print(f"{path}: {len(out)} face{'s' if len(out) != 1 else ''}")
                for i, f in enumerate(out, 1):
                    ranking = ", ".join(f"{r['user']} {r['similarity']:.3f}"
                                        for r in list(f["ranking"])) or "nobody enrolled"
                    print(f"  {i}. {f['decision']}  ({ranking})")
    finally:
        engine.close()
        store.close()
    return status


def _username(store, user_id) -> str:
    user = store.get_user(user_id)
    return user.username if user is not None else str(user_id)


def _single_face(engine, path, image):
    faces = engine.faces(image)
    if not faces:
        raise ImageError(f"{path}: no face was found in the photograph")
    if len(faces) > 1:
        raise ImageError(f"{path}: {len(faces)} faces in the photograph; verify needs exactly one face "
                         f"(crop the photograph to one person)")
    return faces[0]


def _face_dict(face, image=None, mesh=None) -> dict:
    """A face as JSON; with the liveness face mesh, its 468 points too (``mesh``: [[x, y], ...] in pixels)."""
    q = face.quality
    extra = {}
    if mesh is not None and image is not None:
        found = mesh(image, face.box, face.landmarks)
        extra["mesh"] = None if found is None else [[round(float(x), 1), round(float(y), 1)] for x, y in found.points]
    return {
        "box": list(face.box),
        "score": round(face.score, 4),
        "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],
        "quality": {"ok": q.ok, "reasons": q.reasons, "size": round(q.size, 1),
                    "sharpness": round(q.sharpness, 1), "brightness": round(q.brightness, 1)},
        "embedding": [round(float(v), 6) for v in face.embedding],
        **extra,
    }


def _print_faces(path, faces) -> None:
    print(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}")
    for i, f in enumerate(faces, 1):
        x, y, w, h = f.box
        q = f.quality
        verdict = "good" if q.ok else "; ".join(q.reasons)
        head = " ".join(f"{v:+.3f}" for v in f.embedding[:4])
        print(f"  {i}. box x={x} y={y} w={w} h={h}  score {f.score:.2f}  size {q.size:.0f} px  "
              f"sharpness {q.sharpness:.0f}  brightness {q.brightness:.0f}  quality: {verdict}")
        print(f"     embedding ({len(f.embedding)}): {head} ...")
