"""``python -m converters nsfwjs --out models/`` · ``python -m converters canaries``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
CANARY_DIR = REPO / "tests" / "fixtures" / "canaries"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converters", description=__doc__)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="download and npm work folder")
    sub = parser.add_subparsers(dest="command", required=True)

    conv = sub.add_parser("nsfwjs", help="convert the pinned nsfwjs MobileNetV2 into Veil's .tflite models")
    conv.add_argument("--out", type=Path, default=REPO / "models")
    conv.add_argument("--canaries", type=Path, default=CANARY_DIR)

    can = sub.add_parser("canaries", help="regenerate the synthetic canary PNGs (fixed seeds)")
    can.add_argument("--out", type=Path, default=CANARY_DIR)
    can.add_argument("--only", nargs="*", help="canary names to regenerate (default: all)")
    can.add_argument("--steps", type=int, default=160)

    photos = sub.add_parser("photos", help="copy the benign photo selection into tests/fixtures/photos")
    photos.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "photos")

    variants = sub.add_parser("variants", help="write the f32 and all-int8 models to the cache, for benchmarks")
    variants.add_argument("--canaries", type=Path, default=CANARY_DIR)

    sens = sub.add_parser("sensitivity", help="choose the layers the int8 model keeps in float")
    sens.add_argument("--out", type=Path, default=REPO / "models" / "int8-sensitivity.json")
    sens.add_argument("--canaries", type=Path, default=CANARY_DIR)

    repro = sub.add_parser("reproducibility", help="how far CPU rounding in calibration can move the int8 model")
    repro.add_argument("--out", type=Path, default=REPO / "models" / "reproducibility.json")
    repro.add_argument("--canaries", type=Path, default=CANARY_DIR)

    study = sub.add_parser("preprocess-study", help="compare resize methods with nsfwjs on real photos")
    study.add_argument("--out", type=Path, default=REPO / "models" / "preprocess-study.json")

    args = parser.parse_args(argv)
    if args.command == "photos":
        from converters.photos import write_fixtures

        write_fixtures(args.out)
        return 0
    from converters import nsfwjs_source
    from converters.float_model import build_source_model

    source = nsfwjs_source.load_source(args.cache)
    if args.command == "canaries":
        from converters.canaries import write_all

        write_all(args.out, build_source_model(source.topology, source.weights), set(args.only or []) or None, args.steps)
        return 0
    if args.command == "preprocess-study":
        from converters.preprocess_study import run_study

        run_study(source, args.cache, args.out)
        return 0
    if args.command == "variants":
        from converters.convert import write_variants

        write_variants(source, args.cache, args.canaries)
        return 0
    if args.command == "sensitivity":
        from converters.sensitivity import run_sensitivity

        run_sensitivity(source, args.canaries, args.out)
        return 0
    if args.command == "reproducibility":
        from converters.reproducibility import run_study as run_reproducibility

        run_reproducibility(source, args.canaries, args.out)
        return 0
    from converters.convert import convert

    return convert(source, args.cache, args.out, args.canaries)


if __name__ == "__main__":
    sys.exit(main())
