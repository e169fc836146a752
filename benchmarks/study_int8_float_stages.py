"""Which float stages make the int8 model fast on this CPU? A study, not a test (issue 20).

    python -m converters variants && python benchmarks/study_int8_float_stages.py

Builds the int8 model with other choices of stages kept in float (``convert.STAGES``, plus the
first convolution alone; same calibration and range snapping as the shipped model, written to a
temporary folder) and times them beside f32 and the shipped model on LiteRT, batch 1, 1 and 2
threads, the models taking turns (``study_int8_equalisation.print_speed_table``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.study_int8_equalisation import print_speed_table  # noqa: E402
from converters import convert as conv  # noqa: E402
from converters import nsfwjs_source  # noqa: E402
from converters.__main__ import CANARY_DIR, DEFAULT_CACHE  # noqa: E402
from converters.float_model import conversion_model  # noqa: E402

CHOICES = (["Conv1 only"], ["112px"], ["112px", "56px", "28px"], ["7px+head"], [])


def main() -> int:
    f32_path = DEFAULT_CACHE / f"{conv.F32_NAME}.tflite"
    if not f32_path.is_file():
        print(f"no f32 model at {f32_path}: python -m converters variants")
        return 1
    source = nsfwjs_source.load_source(DEFAULT_CACHE)
    folded = conversion_model(source.topology, source.weights)
    cal_photos, _ = conv._photo_split()
    dataset = conv._calibration_batches(cal_photos, [p for _, p, _ in conv._canaries(CANARY_DIR, "calibration")])
    stages = {**conv.STAGES, "Conv1 only": ("Conv1", "bn_Conv1")}
    paths = {"f32": f32_path, "shipped (112px+56px)": REPO / "models" / f"{conv.INT8_NAME}.tflite"}
    every = conv.tensor_names_of_stages(f32_path.read_bytes(), list(conv.STAGES))  # "<model>/<submodel>/<layer>/..."
    with tempfile.TemporaryDirectory(prefix="veil-stages-") as tmp:
        for choice in CHOICES:
            prefixes = tuple(p for stage in choice for p in stages[stage])
            names = [n for n in every if prefixes and n.split(";")[0].split("/")[2].startswith(prefixes)]
            label = "+".join(choice) or "none (all-int8)"
            paths[label] = Path(tmp) / f"{len(paths)}.tflite"
            paths[label].write_bytes(conv.convert_int8(folded, dataset, names))
        print_speed_table(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
