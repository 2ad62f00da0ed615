"""Concept balancing (glide.data.balance): skin-tone variants count as one concept, and both training data paths
(streamed and resident) draw concepts at the configured rates, deterministically and resumably."""

import json
from collections import Counter

import numpy as np
import pytest
import torch

from glide.data.balance import concept_keys, concept_weights
from glide.data.datasets import open_source
from glide.data.loader import BatchStream, Position
from glide.errors import GlideError
from glide.training import TrainConfig
from glide.training.trainer import Trainer

TONES = ["light", "medium-light", "medium", "medium-dark", "dark"]


def test_skin_tone_variants_are_one_concept():
    caps = ["waving hand, twemoji style", *[f"waving hand, {t} skin tone, twemoji style" for t in TONES],
            "kiss, light skin tone, medium-dark skin tone, noto style", "kiss, noto style",
            "dark sunglasses, twemoji style", "waving hand, noto style"]
    keys = concept_keys(caps, "skin-tones")
    assert keys[:6] == ["waving hand, twemoji style"] * 6
    assert keys[6:8] == ["kiss, noto style"] * 2
    assert keys[8:] == ["dark sunglasses, twemoji style", "waving hand, noto style"]  # no tone: untouched
    w = concept_weights(caps, "skin-tones", 1.0)
    assert w.sum() == pytest.approx(1.0)
    # power 1: each concept gets the same share, split among its images
    assert w[:6].sum() == pytest.approx(w[8]) and w[6:8].sum() == pytest.approx(w[8])
    assert np.allclose(concept_weights(caps, "skin-tones", 0.0), 1 / len(caps))  # power 0: uniform
    half = concept_weights(caps, "skin-tones", 0.5)
    assert half[0] / half[8] == pytest.approx(6 ** -0.5)
    # a custom regular expression works the same way
    assert concept_keys(["a red square", "a blue square"], r"(red|blue) ") == ["a square", "a square"]


def toned_data(d):
    """24 single-image objects and one hand in six tones (a fifth of the images, 1/25 of the concepts), 32 px."""
    caps = [f"object {i}, twemoji style" for i in range(24)]
    caps += ["hand, twemoji style", *[f"hand, {t} skin tone, twemoji style" for t in TONES]]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(caps), 32, 32, 3), dtype=np.uint8)
    path = d / "toned.npz"
    np.savez(path, images=images, captions=np.array(caps), captions_alt=json.dumps([[] for _ in caps]),
             split=np.array(["train"] * len(caps)))
    return path


def hand_share(captions) -> float:
    return sum(c.startswith("hand") for c in captions) / len(captions)


def test_batch_stream_draws_concepts_equally_and_resumes(tmp_path):
    src = open_source(toned_data(tmp_path), 32)
    w = concept_weights([src.caption(i) for i in range(len(src))], "skin-tones")
    stream = BatchStream(src, 10, seed=1, workers=0, weights=w)
    drawn = [caps[0] for _ in range(300) for caps in stream.next_batch()[1]]
    assert hand_share(drawn) == pytest.approx(1 / 25, abs=0.012)  # uniform would give 6/30
    per_object = Counter(c for c in drawn if c.startswith("object"))
    assert len(per_object) == 24 and min(per_object.values()) > 60  # every object drawn, ~120 times each
    uniform = BatchStream(src, 10, seed=1, workers=0)
    assert hand_share([c[0] for _ in range(60) for c in uniform.next_batch()[1]]) == pytest.approx(0.2)
    # resumable: a stream started from a saved position continues with the same batches
    pos = Position(**stream.pos.to_dict())
    ahead = [stream.next_batch()[1] for _ in range(7)]
    again = BatchStream(src, 10, seed=1, workers=0, weights=w, position=pos)
    assert [again.next_batch()[1] for _ in range(7)] == ahead


@pytest.mark.parametrize("resident", [False, True])
def test_trainer_balances_concepts_on_both_data_paths(tmp_path, resident):
    data = toned_data(tmp_path)
    t = Trainer(TrainConfig(preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=8, max_steps=1,
                            resident=resident, concept_pattern="skin-tones", caption_dropout=0.0, workers=0))
    captions = [t.source.caption(i) for i in range(len(t.source))]
    if resident:
        idx = torch.cat([t.stream._indices(50) for _ in range(60)]).tolist()
    else:
        idx = np.concatenate([t.stream._order(e) for e in range(100)]).tolist()
    assert hand_share([captions[i] for i in idx]) == pytest.approx(1 / 25, abs=0.012)


def test_concept_settings_are_checked(tmp_path):
    base = dict(preset="tiny", data="x", out="y")
    with pytest.raises(GlideError, match="not a valid regular expression"):
        TrainConfig(**base, concept_pattern="(skin").validate()
    with pytest.raises(GlideError, match="concept_power"):
        TrainConfig(**base, concept_pattern="skin-tones", concept_power=2).validate()
    TrainConfig(**base, concept_pattern="skin-tones", concept_power=0.5).validate()
