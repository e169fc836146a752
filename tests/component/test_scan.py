"""The scan pipeline on real folders: order, filtering, walk errors, animations."""

import os
import shutil
from pathlib import Path

from agent.policy import BUILTIN_PROFILES
from agent.scan import iter_inputs, scan
from tests import media
from tests.conftest import CANARIES, PHOTOS


def _tree(root: Path) -> Path:
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a").mkdir()
    shutil.copy(PHOTOS / "scikit-coffee.jpg", root / "a" / "coffee.jpg")
    shutil.copy(CANARIES / "porn-a.png", root / "b" / "deep" / "x.png")
    shutil.copy(PHOTOS / "scikit-chelsea.jpg", root / "b" / "cat.jpg")
    (root / "b" / "notes.txt").write_text("not an image")
    shutil.copy(PHOTOS / "scikit-rocket.jpg", root / "top.jpg")
    return root


def test_results_stream_in_path_order_and_skip_non_media(tmp_path, classifier):
    root = _tree(tmp_path / "tree")
    results = list(scan([root], classifier, BUILTIN_PROFILES["child"], threads=2))
    assert [r.path.relative_to(root).as_posix() for r in results] == ["a/coffee.jpg", "b/cat.jpg", "b/deep/x.png", "top.jpg"]
    assert [r.prediction for r in results] == ["benign", "benign", "malign", "benign"]
    assert results[2].decision.malign > 0.9 and results[2].scores.top == "porn"


def test_no_recursive(tmp_path, classifier):
    root = _tree(tmp_path / "tree")
    results = list(scan([root], classifier, BUILTIN_PROFILES["child"], threads=2, recursive=False))
    assert [r.path.name for r in results] == ["top.jpg"]


def test_profile_changes_the_decision(tmp_path, classifier):
    path = tmp_path / "sexy.png"
    shutil.copy(CANARIES / "sexy-a.png", path)
    child = next(scan([path], classifier, BUILTIN_PROFILES["child"], threads=1))
    teen = next(scan([path], classifier, BUILTIN_PROFILES["teen"], threads=1))
    assert (child.prediction, teen.prediction) == ("malign", "benign")  # sexy is malign for child only


def test_symlink_loop_and_links_out_are_not_followed(tmp_path, classifier):
    root = _tree(tmp_path / "tree")
    os.symlink(root, root / "a" / "loop")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(CANARIES / "hentai-a.png", outside / "h.png")
    os.symlink(outside, root / "link-out")
    os.symlink(root / "top.jpg", root / "z-file-link.jpg")
    paths = [item.path.relative_to(root).as_posix() for item in iter_inputs([root])]
    assert paths == ["a/coffee.jpg", "b/cat.jpg", "b/deep/x.png", "b/notes.txt", "top.jpg", "z-file-link.jpg"]


def test_folder_vanishing_mid_scan_is_one_error(tmp_path):
    root = _tree(tmp_path / "tree")
    items = iter_inputs([root])
    first = next(items)
    assert first.path.name == "coffee.jpg"
    shutil.rmtree(root / "b")  # after the root was listed, before the walk reaches b/
    rest = list(items)
    assert [(i.path.name, i.error) for i in rest] == [("b", "folder vanished during the scan"), ("top.jpg", None)]


def test_names_that_are_not_utf8(tmp_path, classifier):
    folder = os.fsencode(tmp_path)
    name = os.path.join(folder, b"caf\xe9-\xff.png")
    with open(name, "wb") as handle:
        handle.write((CANARIES / "porn-b.png").read_bytes())
    results = list(scan([tmp_path], classifier, BUILTIN_PROFILES["child"], threads=1))
    assert len(results) == 1 and results[0].prediction == "malign"
    assert os.fsencode(results[0].path) == name


def test_bad_files_are_errors_and_the_scan_goes_on(tmp_path, classifier):
    bad = media.write_bad_inputs(tmp_path / "bad")
    shutil.copy(CANARIES / "porn-a.png", tmp_path / "bad" / "zz.png")
    results = {r.path.name: r for r in scan([tmp_path / "bad"], classifier, BUILTIN_PROFILES["child"], threads=2)}
    assert set(results) == {*bad, "zz.png"}
    for name in bad:
        assert results[name].prediction == "error" and results[name].error
    assert results["zz.png"].prediction == "malign"


def test_animated_file_reports_frames_and_worst(tmp_path, classifier):
    path = media.save_animation(tmp_path / "a.webp", media.animation_frames(canary_at=3, count=6), "WEBP")
    result = next(scan([path], classifier, BUILTIN_PROFILES["child"], threads=1))
    assert (result.prediction, result.frames, result.worst_frame) == ("malign", 6, 3)


def test_closing_early_stops_the_workers(tmp_path, classifier):
    for i in range(30):
        shutil.copy(PHOTOS / "scikit-coffee.jpg", tmp_path / f"{i:02}.jpg")
    results = scan([tmp_path], classifier, BUILTIN_PROFILES["child"], threads=2)
    next(results)
    results.close()  # the leaked-thread check in conftest fails the test if a decoder survives
