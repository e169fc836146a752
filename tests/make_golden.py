"""Regenerate the golden outputs of the bundled models: ``python -m tests.make_golden``.

Run it only when a model changes on purpose. Outputs are recorded per runtime: int8 kernels
differ between runtimes (XNNPACK in LiteRT and TensorFlow, builtin kernels in tflite-runtime
2.14, which computes int8 differently by up to 0.07 on a probability), so each runtime is pinned
to its own results, and all of them to the float model's behaviour (tests/component/test_golden.py).
"""

from __future__ import annotations

import json

from agent.classifier.backends import CPU_BACKENDS, BackendUnavailable
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, bundled_model_path, load_model_file
from agent.decode import load_model_input
from tests.conftest import CANARIES, GOLDEN, PHOTOS

THREADS = 2


def golden_inputs() -> dict[str, object]:
    paths = sorted(PHOTOS.glob("*.jpg")) + sorted(CANARIES.glob("*.png"))
    return {f"{p.parent.name}/{p.name}": load_model_input(p) for p in paths}


# The small folder of tests/integration/test_scan_cli.py::test_golden_results_for_a_small_folder.
SCAN_FOLDER_PHOTOS = 10
SCAN_FOLDER_CANARIES = ("porn-a", "sexy-b", "drawing-a", "border-child")


def scan_folder_golden() -> list[tuple[str, str, float]]:
    """``veil scan`` of that folder with the bundled int8 model on LiteRT: name, prediction, malign."""
    import shutil
    import tempfile
    from pathlib import Path

    from agent.classifier import open_classifier
    from agent.config import ModelSection
    from agent.policy import BUILTIN_PROFILES
    from agent.scan import scan

    with tempfile.TemporaryDirectory() as tmp, open_classifier(ModelSection(accelerator="cpu", threads=THREADS)) as classifier:
        folder = Path(tmp)
        for photo in sorted(PHOTOS.glob("*.jpg"))[:SCAN_FOLDER_PHOTOS]:
            shutil.copy(photo, folder / photo.name)
        for name in SCAN_FOLDER_CANARIES:
            shutil.copy(CANARIES / f"{name}.png", folder / f"{name}.png")
        return [(r.path.name, r.prediction, round(r.decision.malign, 3) if r.decision else 0.0)
                for r in scan([folder], classifier, BUILTIN_PROFILES["child"], THREADS)]


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    inputs = golden_inputs()
    for name in (BUNDLED_INT8, BUNDLED_F16):
        model = load_model_file(bundled_model_path(name))
        record: dict = {"model": name, "sha256": model.sha256, "threads": THREADS, "backends": {}}
        for backend_name, factory in CPU_BACKENDS.items():
            try:
                backend = factory(model, THREADS)
            except BackendUnavailable as err:
                print(f"{backend_name}: skipped ({err})")
                continue
            outputs = {key: [round(float(v), 6) for v in backend.run(pixels[None])[0]] for key, pixels in inputs.items()}
            backend.close()
            record["backends"][backend_name] = {"version": backend.version, "outputs": outputs}
        (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote golden outputs of {name} for {len(inputs)} inputs on {', '.join(record['backends'])}")
    rows = scan_folder_golden()
    (GOLDEN / "scan-folder.json").write_text(json.dumps(rows, indent=0) + "\n")
    print(f"wrote the scan of a small folder: {len(rows)} rows")


if __name__ == "__main__":
    main()
