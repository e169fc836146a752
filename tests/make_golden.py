"""Regenerate the golden outputs of the bundled models: ``python -m tests.make_golden``.

Run it only when a model changes on purpose; the golden tests then pin every backend to it.
"""

from __future__ import annotations

import json

from agent.classifier.backends import CPU_BACKENDS
from agent.classifier.model import BUNDLED_F16, BUNDLED_INT8, bundled_model_path, load_model_file
from agent.decode import load_model_input
from tests.conftest import CANARIES, GOLDEN, PHOTOS


def golden_inputs() -> dict[str, object]:
    paths = sorted(PHOTOS.glob("*.jpg")) + sorted(CANARIES.glob("*.png"))
    return {f"{p.parent.name}/{p.name}": load_model_input(p) for p in paths}


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    inputs = golden_inputs()
    for name in (BUNDLED_INT8, BUNDLED_F16):
        model = load_model_file(bundled_model_path(name))
        backend = CPU_BACKENDS["litert"](model, 2)
        outputs = {key: [round(float(v), 6) for v in backend.run(pixels[None])[0]] for key, pixels in inputs.items()}
        backend.close()
        record = {"model": name, "sha256": model.sha256, "backend": f"litert {backend.version}", "outputs": outputs}
        (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote golden outputs of {name} for {len(outputs)} inputs")


if __name__ == "__main__":
    main()
