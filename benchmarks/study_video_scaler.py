"""Which swscale method should turn a decoded video frame into the model's 224×224 input?

    python benchmarks/study_video_scaler.py

Judged against the reference (nsfwjs' own resize: aligned bilinear, no antialiasing, on the full
RGB frame) with the bundled int8 model, child profile, on a 1080p H.264 file (crf 20, built once
in benchmarks/.cache) of the committed photos and canaries, one keyframe each.
"""

from __future__ import annotations

import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SIZE = (1920, 1080)
METHODS = ("AREA", "FAST_BILINEAR", "BILINEAR", "BICUBIC", "POINT")


def build(path: Path, sources: list[Path]) -> Path:
    import av
    from PIL import Image

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".part.mp4")
    with av.open(str(temp), "w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"g": "5", "keyint_min": "5", "bf": "0", "sc_threshold": "0", "preset": "veryfast", "crf": "20"}
        for i, source in enumerate(sources):
            pixels = np.asarray(Image.open(source).convert("RGB").resize(SIZE, Image.Resampling.LANCZOS))
            for k in range(5):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, frame.time_base = i * 5 + k, Fraction(1, 5)
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    temp.replace(path)
    return path


def main() -> int:
    import av

    from agent.classifier import open_classifier
    from agent.classifier.preprocess import aligned_bilinear
    from agent.config import ModelSection
    from agent.policy import BUILTIN_PROFILES, decide

    fixtures = REPO / "tests" / "fixtures"
    sources = sorted((fixtures / "photos").glob("*.jpg")) + sorted((fixtures / "canaries").glob("*.png"))
    path = build(REPO / "benchmarks" / ".cache" / "video" / "scaler-study-1080p.mp4", sources)
    child = BUILTIN_PROFILES["child"]
    with av.open(str(path)) as container:
        frames = [f for f in container.decode(video=0) if f.key_frame]
        with open_classifier(ModelSection(accelerator="cpu", threads=2)) as classifier:
            def malign(batch: np.ndarray) -> np.ndarray:
                return np.array([decide(s, child).malign for i in range(0, len(batch), 4) for s in classifier.classify(batch[i:i + 4])])

            reference = malign(np.stack([aligned_bilinear(f.to_ndarray(format="rgb24")) for f in frames]))
            print(f"{len(frames)} frames; reference flags {int(np.sum(reference >= child.threshold))}")
            print("| swscale method | ms/frame | mean |Δ malign| | max | same decision | flagged |\n|---|---|---|---|---|---|")
            for method in METHODS:
                start = time.perf_counter()
                pixels = np.stack([f.reformat(width=224, height=224, format="rgb24", interpolation=method).to_ndarray() for f in frames])
                ms = (time.perf_counter() - start) / len(frames) * 1000
                scores = malign(pixels)
                delta = np.abs(scores - reference)
                same = np.mean((scores >= child.threshold) == (reference >= child.threshold)) * 100
                print(f"| {method} | {ms:.2f} | {delta.mean():.4f} | {delta.max():.3f} | {same:.1f} % | {int(np.sum(scores >= child.threshold))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
