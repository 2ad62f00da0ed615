"""GPT-2 BPE with a table pruned to the training captions' tokens (`fit_vocab`): the tokenizer's mapping, the
config that carries it, and a run that fits it, exports it and samples with it."""

import json
import warnings

import numpy as np
import pytest
import torch

from glide.config import ModelConfig, TextConfig, get_preset
from glide.errors import GlideError
from glide.text import Tokenizer, fit_vocab, get_tokenizer


def test_pruned_table_maps_gpt2_ids_and_reads_the_rest_as_unknown():
    full = get_tokenizer("gpt2")
    vocab = fit_vocab(["red apple, twemoji style", "green apple, noto emoji style"])
    assert list(vocab) == sorted(set(full.encode("red apple, twemoji style") + full.encode("green apple, noto emoji style")))
    tok = Tokenizer("gpt2", vocab)
    assert tok.vocab_size == len(vocab) + 2 and tok.unknown_token == len(vocab) and tok.pad_token == len(vocab) + 1
    ids = tok.encode("Green apple, twemoji style")  # lower-cased, as GLIDE's tokenizer does
    assert ids == [vocab.index(i) for i in full.encode("green apple, twemoji style")]
    assert tok.decode(ids) == "green apple, twemoji style"
    assert tok.unknown_words("blue apple") == ["blue"] and tok.encode("blue apple")[0] == tok.unknown_token
    with pytest.warns(UserWarning, match="lacks 'blue'"):
        tokens, mask = tok(["blue apple"], 8)
    assert tokens[0, :2].tolist() == [tok.unknown_token, vocab.index(full.encode(" apple")[0])]
    assert tokens[0, 2:].eq(tok.pad_token).all() and mask[0].tolist() == [True, True] + [False] * 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok(["red apple"], 8)  # known words: no warning


def test_config_carries_the_table_through_json():
    vocab = fit_vocab(["a red square"])
    cfg = get_preset("tiny").replace(text=TextConfig(tokenizer="gpt2", context=8, width=64, layers=1, heads=2, vocab=vocab))
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.text.vocab_size == len(vocab) + 2
    for bad in ({"tokenizer": "bytes", "vocab": list(vocab)}, {"vocab": [5, 5]}, {"vocab": [50257]}):
        d = cfg.to_dict()
        d["text"] = {**d["text"], **bad}
        with pytest.raises(GlideError, match="text.vocab"):
            ModelConfig.from_dict(d)


def test_fit_vocab_run_exports_a_small_table_and_samples(tmp_path):
    from glide.pipeline import Pipeline
    from glide.training import TrainConfig, export_run
    from glide.training.trainer import train

    caps = ["a red square", "a blue circle", "a green square", "a yellow circle"]
    images = np.full((8, 32, 32, 3), 255, np.uint8)
    np.savez(tmp_path / "d.npz", images=images, captions=np.array(caps * 2), split=np.array(["train"] * 8),
             captions_alt=np.array(json.dumps([["a crimson square"]] + [[]] * 7)))
    model = {"text": {"tokenizer": "gpt2", "context": 8, "width": 64, "layers": 1, "heads": 2}}
    cfg = TrainConfig(preset="tiny", model=model, fit_vocab=True, data=str(tmp_path / "d.npz"),
                      out=str(tmp_path / "run"), max_steps=1, batch_size=4, warmup_steps=1)
    train(cfg)
    export_run(tmp_path / "run", tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())["model"]["text"]["vocab"]
    assert saved == list(fit_vocab(caps + ["a crimson square"]))  # alternative captions count too
    pipe = Pipeline.from_pretrained(tmp_path / "model")
    assert pipe.model.text.token_embedding.weight.shape[0] == len(saved) + 2  # not 50257 rows
    with pytest.warns(UserWarning, match="lacks 'purple'"):
        x = pipe.sample(["a purple square"], steps=2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 3, 32, 32) and torch.isfinite(x).all()
    with pytest.raises(GlideError, match="fit_vocab"):
        TrainConfig(preset="tiny", fit_vocab=True, init_from="x", data="d", out="o").validate()
