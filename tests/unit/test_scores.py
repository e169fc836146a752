import pytest

from agent.classifier.scores import LABELS, Scores


def test_scores_by_label_and_malign():
    scores = Scores((0.1, 0.2, 0.3, 0.25, 0.15))
    assert scores["porn"] == 0.25
    assert scores.top == "neutral"
    assert scores.malign(("porn", "hentai", "sexy")) == pytest.approx(0.6)
    assert list(scores.as_dict()) == list(LABELS)


def test_malign_is_clipped_to_one():
    # uint8 outputs can sum to slightly over 1
    assert Scores((0.0, 0.5, 0.0, 0.504, 0.0)).malign(("porn", "hentai")) == 1.0
