"""End-to-end: a tiny random checkpoint in the official format, converted, then sampled from the CLI."""

import json
import re
import shlex

import numpy as np
import pytest
from PIL import Image

from glide.runtime import cpu_prefers_bf16
from helpers import make_official_checkpoint, run_cli, write_options


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    ckpt = make_official_checkpoint(d / "tiny.pt")
    out = d / "tiny-model"
    p = run_cli("convert", ckpt, "--kind", "base", "--options", write_options(d / "opts.json"), "--out", out, check=True)
    assert "wrote" in p.stdout
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    return out


def test_sample_grid_is_deterministic(converted, tmp_path):
    args = ["sample", "a red apple", "--model", converted, "-n", "3", "--steps", "4", "--seed", "7", "-q"]
    run_cli(*args, "--out", tmp_path / "a.png", check=True)
    run_cli(*args, "--out", tmp_path / "b.png", check=True)
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert a.shape == (2 + 2 * 34, 2 + 2 * 34, 3)  # 2x2 grid of 32 px images, 2 px padding
    assert np.array_equal(a, b)
    for i in range(3):
        im = np.asarray(Image.open(tmp_path / f"a_{i:03d}.png"))
        assert im.shape == (32, 32, 3) and im.std() > 1  # not blank
        assert (tmp_path / f"a_{i:03d}.txt").read_text() == "a red apple\n"  # a sample folder for glide rate
    other = tmp_path / "c.png"
    run_cli(*args[:-3], "--seed", "8", "-q", "--out", other, check=True)
    assert not np.array_equal(a, np.asarray(Image.open(other)))


def test_ddim_and_empty_prompt(converted, tmp_path):
    p = run_cli("sample", "", "--model", converted, "-n", "1", "--steps", "ddim4", "--sampler", "ddim", "-q",
                "--out", tmp_path / "u.png")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "u.png").is_file()
    p = run_cli("sample", "a red apple", "--model", converted, "-n", "1", "--steps", "5", "--sampler", "dpm++2m",
                "-q", "--out", tmp_path / "d.png")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "d.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--steps", "-5"], "positive"),
    (["--steps", "0"], "positive"),
    (["--guidance-scale", "lots"], "expected a number"),
    (["--model", "/nonexistent/model"], "model not found"),
    (["-n", "0"], "positive integer"),
])
def test_bad_sample_input(converted, tmp_path, args, message):
    base = ["sample", "x", "--model", converted, "--out", tmp_path / "bad.png", "-q"]
    p = run_cli(*base, *args)
    assert p.returncode == 2
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "bad.png").exists()


def test_hostile_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    import torch

    torch.save({"weight": Evil()}, tmp_path / "evil.pt")
    p = run_cli("convert", tmp_path / "evil.pt", "--kind", "base", "--out", tmp_path / "out")
    assert p.returncode == 2
    assert "refused" in p.stderr and "Traceback" not in p.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_convert_errors(tmp_path):
    ckpt = make_official_checkpoint(tmp_path / "tiny.pt")
    opts = write_options(tmp_path / "o.json")
    # truncated file
    data = ckpt.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    p = run_cli("convert", tmp_path / "trunc.pt", "--kind", "base", "--options", opts, "--out", tmp_path / "o1")
    assert p.returncode == 2 and "truncated" in p.stderr and not (tmp_path / "o1").exists()
    # wrong kind: an inpaint model needs more input channels
    p = run_cli("convert", ckpt, "--kind", "base-inpaint", "--options", opts, "--out", tmp_path / "o2")
    assert p.returncode == 2 and "does not match" in p.stderr and not (tmp_path / "o2").exists()
    # the right kind but without --options (official sizes): missing/mismatched keys named
    p = run_cli("convert", ckpt, "--kind", "base", "--out", tmp_path / "o3")
    assert p.returncode == 2 and "does not match" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    # an extra key
    import torch

    sd = torch.load(ckpt, weights_only=True)
    sd["surprise.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "extra.pt")
    p = run_cli("convert", tmp_path / "extra.pt", "--kind", "base", "--options", opts, "--out", tmp_path / "o4")
    assert p.returncode == 2 and "unexpected key" in p.stderr and "surprise.weight" in p.stderr
    # missing file
    p = run_cli("convert", tmp_path / "nope.pt", "--kind", "base", "--out", tmp_path / "o5")
    assert p.returncode == 2 and "not found" in p.stderr


def _in_process(*args) -> int:
    from glide.cli import main

    try:
        return main([str(a) for a in args])
    except SystemExit as e:
        return e.code


def test_seed_gives_the_same_images_at_any_batch_size_and_count(converted, tmp_path, capsys):
    """Image k of --seed S is the same whatever --batch-size and -n (> k): each image has its own generator,
    used for the initial noise and for every noisy step of the stochastic samplers."""
    for sampler in ("dpm++2m-sde", "ddpm"):
        runs = {}
        for n, batch in ((4, 4), (4, 1), (2, 3)):
            out = tmp_path / f"{sampler}-{n}-{batch}.png"
            assert _in_process("sample", "a red apple", "--model", converted, "-n", n, "--batch-size", batch,
                               "--steps", 3, "--sampler", sampler, "--seed", 11, "-q", "--out", out) == 0
            runs[n, batch] = [np.asarray(Image.open(p)) for p in sorted(tmp_path.glob(f"{out.stem}_*.png"))]
        full = runs[4, 4]
        assert len(full) == 4 and not np.array_equal(full[0], full[1])
        for images in runs.values():
            for k, im in enumerate(images):
                assert np.abs(im.astype(int) - full[k]).max() <= 1, (sampler, k)  # batched matmuls may round apart
        # and image k alone is seed S + k
        assert _in_process("sample", "a red apple", "--model", converted, "-n", 1, "--steps", 3, "--sampler", sampler,
                           "--seed", 13, "-q", "--out", tmp_path / "alone.png") == 0
        assert np.abs(np.asarray(Image.open(tmp_path / "alone.png")).astype(int) - full[2]).max() <= 1


def test_pipeline_takes_a_generator_per_image(converted):
    import torch

    from glide import Pipeline

    pipe = Pipeline.from_pretrained(converted, device="cpu")
    kw = dict(steps=3, progress=False, batch_size=2)
    by_seed = pipe(["a red apple", "a pear"], 2, seed=5, **kw)  # image j of each prompt: seed 5 + j
    gens = [torch.Generator().manual_seed(s) for s in (5, 6, 5, 6)]
    by_generators = pipe(["a red apple", "a pear"], 2, generator=gens, **kw)
    for a, b in zip(by_seed, by_generators):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    shared = pipe("a red apple", 2, generator=torch.Generator().manual_seed(5), **kw)  # one shared generator
    assert not np.array_equal(np.asarray(shared[1]), np.asarray(by_seed[1]))
    with pytest.raises(Exception, match="one per image"):
        pipe("a red apple", 2, generator=gens[:3], **kw)
    with pytest.raises(Exception, match="finite"):
        pipe("a red apple", 1, guidance_scale=float("nan"), **kw)
    # the defaults: glide.defaults, and the CLIP-guided fallback
    from glide import defaults

    assert pipe.__call__.__kwdefaults__["guidance_scale"] == defaults.GUIDANCE
    assert defaults.sampler_and_steps(False) == (defaults.SAMPLER, defaults.STEPS)
    assert defaults.sampler_and_steps(True) == (defaults.CLIP_SAMPLER, defaults.CLIP_STEPS)


def test_pngs_carry_their_settings_and_glide_info_reads_them(converted, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert _in_process("sample", "a red apple", "--model", converted, "-n", 2, "--steps", 3, "-q", "--out", out) == 0
    picked = re.search(r"seed (\d+) \(picked at random", capsys.readouterr().out)
    assert picked, "the CLI prints the seed it picked"
    seed = int(picked.group(1))
    from PIL import PngImagePlugin

    with Image.open(tmp_path / "s_001.png") as im:
        assert isinstance(im, PngImagePlugin.PngImageFile)
        im.load()
        meta = json.loads(im.text["glide"])
    assert meta["prompt"] == "a red apple" and meta["seed"] == seed + 1 and meta["steps"] == "3"
    assert meta["sampler"] == "dpm++2m-sde" and meta["guidance_scale"] == 3.0 and meta["model"] == str(converted)
    # an eps model: mixed on a CPU with native bf16, else fp32 (glide.runtime.default_precision)
    assert meta["dtype"] == ("mixed" if cpu_prefers_bf16() else "fp32")
    assert meta["guidance_interval"] == "all"  # text-to-image is guided at every step (glide.defaults)
    assert b"tEXtglide" in (tmp_path / "s_001.png").read_bytes()  # a plain tEXt chunk (ASCII JSON)
    assert _in_process("info", tmp_path / "s_001.png") == 0
    text = capsys.readouterr().out
    assert f"seed: {seed + 1}" in text and "prompt: a red apple" in text and "--seed" in text
    # the printed command makes the same image again
    again = tmp_path / "again.png"
    cmd = shlex.split(meta["command"])[2:]
    assert _in_process("sample", *cmd, "-q", "--out", again) == 0
    # A batch of 1 instead of 2: the same noise, but batched arithmetic rounds differently, and this random model's
    # saturated pixels carry that through the steps; with the seed drawn at random, a pixel now and then moves by
    # two levels or more (a full CI run once saw 2). Another seed would differ by about 80 levels on average.
    diff = np.abs(np.asarray(Image.open(again)).astype(int) - np.asarray(Image.open(tmp_path / "s_001.png")))
    assert diff.mean() < 0.25 and (diff <= 1).mean() > 0.99 and diff.max() <= 16, (diff.mean(), diff.max())


def test_eval_options_work_on_either_side_of_the_subcommand():
    """`glide eval -n 5 sweep` once ran with n=100: the subcommand's defaults overwrote the option."""
    from glide.cli import build_parser
    from glide.cli.eval import _apply_eval_defaults

    def parsed(*argv):
        args = build_parser().parse_args(list(argv))
        _apply_eval_defaults(args, args.eval_command or "eval")
        return args

    for argv in (["eval", "-n", "5", "--model", "M", "sweep"], ["eval", "sweep", "-n", "5", "--model", "M"]):
        args = parsed(*argv)
        assert (args.n, args.model, args.eval_command, args.steps, args.sampler) == (5, "M", "sweep", "25", "ddpm")
    args = parsed("eval", "--model", "M", "--seed", "3", "coco", "--captions", "c.json", "--images", "val")
    assert (args.model, args.seed, args.n, args.captions) == ("M", 3, 30_000, "c.json")
    args = parsed("eval", "sweep")
    assert (args.n, args.model) == (100, None)
    args = parsed("eval", "-n", "7")
    assert (args.n, args.steps, args.eval_command) == (7, "20", None)
    assert parsed("eval", "-n", "7", "sweep", "-n", "9").n == 9  # the nearer one wins


def test_help_and_version_need_no_torch_and_show_defaults():
    import subprocess
    import sys

    code = ("import sys, glide.cli as c; p = c.build_parser(); p.format_help(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(c.__version__)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    from glide import __version__
    from glide.cli import build_parser

    assert p.stdout.strip() == __version__
    # every option of every command has a help text, and a value default is shown in it
    stack = [build_parser()]
    while stack:
        parser = stack.pop()
        parser.format_help()
        for action in parser._actions:
            if action.choices and hasattr(action, "_name_parser_map"):
                stack += list(action._name_parser_map.values())
            elif action.option_strings and action.dest != "help":
                assert action.help, (parser.prog, action.option_strings)
    sample = next(a for a in build_parser()._actions if hasattr(a, "_name_parser_map"))._name_parser_map["sample"]
    help_text = " ".join(sample.format_help().split())
    for shown in ("(default: 3.0)", "(default: 4)", "(default: 0.0)", "(default: samples.png)", "(default: 8)"):
        assert shown in help_text, shown


def test_guidance_interval_flag_is_recorded_and_repeated(converted, tmp_path):
    out = tmp_path / "g.png"
    assert _in_process("sample", "a red apple", "--model", converted, "-n", 1, "--steps", 3, "--seed", 1, "-q",
                       "--guidance-interval", "0.3,inf", "--out", out) == 0
    with Image.open(out) as im:
        meta = json.loads(im.text["glide"])
    assert meta["guidance_interval"] == "0.3,inf"
    assert "--guidance-interval 0.3,inf" in meta["command"]
    assert "guidance_reuse" not in meta and "--guidance-reuse" not in meta["command"]
    assert _in_process("sample", "a red apple", "--model", converted, "-n", 1, "--steps", 3, "--seed", 1, "-q",
                       "--guidance-interval", "0.3,inf", "--guidance-reuse", "--out", out) == 0
    with Image.open(out) as im:
        meta = json.loads(im.text["glide"])
    assert meta["guidance_reuse"] is True and "--guidance-interval 0.3,inf --guidance-reuse" in meta["command"]
