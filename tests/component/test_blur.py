"""Blur: a stand-in of the same format and size that the model scores benign; restore undoes it."""

import shutil

import pytest
from PIL import Image

from agent.actions.blur import blurred
from agent.decode import decode_image
from agent.policy import BUILTIN_PROFILES, decide
from agent.vault import Vault, VaultError
from tests import media
from tests.conftest import CANARIES

CHILD = BUILTIN_PROFILES["child"]


@pytest.mark.parametrize("name", ["porn-a", "porn-b", "hentai-a", "hentai-b", "sexy-a", "sexy-b"])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_blurred_canary_is_benign_same_format_same_size(tmp_path, classifier, name, fmt):
    path = tmp_path / f"{name}.{fmt.lower()}"
    Image.open(CANARIES / f"{name}.png").convert("RGB").save(path, fmt)
    assert decide(classifier.classify(decode_image(path).frames)[0], CHILD).prediction == "malign"
    out = tmp_path / f"blurred.{fmt.lower()}"
    out.write_bytes(blurred(path.read_bytes()))
    with Image.open(out) as img:
        assert (img.format, img.size) == (fmt, Image.open(path).size)
    assert decide(classifier.classify(decode_image(out).frames)[0], CHILD).prediction == "benign"


def test_animation_blurs_every_frame(tmp_path, classifier):
    path = media.save_animation(tmp_path / "a.gif", media.animation_frames(canary_at=2, count=5), "GIF")
    out = tmp_path / "b.gif"
    out.write_bytes(blurred(path.read_bytes()))
    decoded = decode_image(out)
    assert decoded.frame_count == 5
    assert all(decide(s, CHILD).prediction == "benign" for s in classifier.classify(decoded.frames))


def test_blur_via_vault_then_restore_over_the_stand_in(tmp_path):
    vault = Vault(tmp_path / "vault")
    path = tmp_path / "d" / "x.png"
    path.parent.mkdir()
    shutil.copy(CANARIES / "porn-a.png", path)
    original = path.read_bytes()
    sealed = vault.quarantine(path, stand_in=blurred)
    assert path.exists() and path.read_bytes() != original  # the stand-in is in place
    private = vault.keyring.unlock(None)
    assert vault.restore(sealed.id, private) == path
    assert path.read_bytes() == original


def test_a_changed_stand_in_is_not_overwritten(tmp_path):
    vault = Vault(tmp_path / "vault")
    path = tmp_path / "x.png"
    shutil.copy(CANARIES / "porn-a.png", path)
    sealed = vault.quarantine(path, stand_in=blurred)
    path.write_bytes(b"the user's own new file")
    with pytest.raises(VaultError, match="already exists"):
        vault.restore(sealed.id, vault.keyring.unlock(None))
    assert path.read_bytes() == b"the user's own new file"


def test_a_long_animation_is_blurred_within_the_pixel_budget_and_keeps_its_timing(tmp_path):
    frames = media.animation_frames(canary_at=3, count=300, size=(64, 64))
    path = media.save_animation(tmp_path / "long.gif", frames, "GIF")
    out = tmp_path / "b.gif"
    out.write_bytes(blurred(path.read_bytes(), pixel_budget=64 * 64 * 40))

    def timing(file):
        with Image.open(file) as image:
            durations = []
            for i in range(image.n_frames):
                image.seek(i)
                durations.append(image.info["duration"])
            return image.n_frames, image.size, sum(durations)

    frames_out, size_out, total_out = timing(out)
    frames_in, size_in, total_in = timing(path)
    assert frames_in == 300 and frames_out <= 40  # (the GIF writer may merge frames that blur alike)
    assert size_out == size_in and total_out == total_in  # plays as long as the original


def test_a_still_over_the_pixel_budget_gets_a_smaller_stand_in(tmp_path, classifier):
    path = tmp_path / "big.png"
    media.canary().resize((2000, 1000)).save(path)
    out = tmp_path / "b.png"
    out.write_bytes(blurred(path.read_bytes(), pixel_budget=500_000))
    with Image.open(out) as image:
        assert image.width * image.height <= 500_000 and abs(image.width / image.height - 2) < 0.01
    assert decide(classifier.classify(decode_image(out).frames)[0], CHILD).prediction == "benign"
