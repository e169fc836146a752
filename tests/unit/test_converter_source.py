"""The converter's handling of the source package, without the network."""

import tarfile
from pathlib import Path

import numpy as np
import pytest

from converters import nsfwjs_source
from converters.nsfwjs_source import SourceError, dequantise, extract, fetch_tarball, sri_sha512


def test_dequantise_uint8_weights_in_manifest_order():
    manifest = [{"paths": ["x"], "weights": [
        {"name": "a/kernel", "shape": [2, 2], "dtype": "float32", "quantization": {"min": -1.0, "scale": 0.5, "dtype": "uint8"}},
        {"name": "a/bias", "shape": [2], "dtype": "float32", "quantization": {"min": 0.25, "scale": 0.25, "dtype": "uint8"}},
    ]}]
    data = bytes([0, 1, 2, 4, 3, 0])
    weights = dequantise(manifest, data)
    assert weights["a/kernel"].tolist() == [[-1.0, -0.5], [0.0, 1.0]]
    assert weights["a/bias"].tolist() == [1.0, 0.25]
    assert weights["a/kernel"].dtype == np.float32


def test_dequantise_refuses_a_shard_of_the_wrong_length():
    quantization = {"min": 0, "scale": 1, "dtype": "uint8"}
    manifest = [{"paths": ["x"], "weights": [{"name": "w", "shape": [3], "dtype": "float32", "quantization": quantization}]}]
    with pytest.raises(SourceError, match="manifest covers 3 bytes, shard has 4"):
        dequantise(manifest, b"\0\0\0\0")


def test_tampered_package_is_refused_and_set_aside(tmp_path: Path):
    fake = tmp_path / f"nsfwjs-{nsfwjs_source.VERSION}.tgz"
    fake.write_bytes(b"not the package")
    with pytest.raises(SourceError, match="integrity mismatch: expected sha512-"):
        fetch_tarball(tmp_path)
    assert not fake.exists() and fake.with_suffix(".tgz.rejected").exists()


def test_sri_matches_npm_format(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sri_sha512(path) == "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="


def test_extract_takes_only_the_model_and_licence(tmp_path: Path):
    src = tmp_path / "src"
    (src / "package" / "dist" / "models" / "mobilenet_v2").mkdir(parents=True)
    for rel in ("package/LICENSE", "package/dist/models/mobilenet_v2/model.min.js",
                "package/dist/models/mobilenet_v2/group1-shard1of1.min.js", "package/evil.js"):
        (src / rel).write_text(rel)
    tgz = tmp_path / "p.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        archive.add(src / "package", arcname="package")
    out = extract(tgz, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["LICENSE", "group1-shard1of1.min.js", "model.min.js"]
