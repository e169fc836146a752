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


if __name__ == "__main__":
    main()
