"""`glide train`: a config file, overridden by flags."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import GlideError
from .args import _non_negative, _positive, _positive_int, _seed


TRAIN_FLAGS = {  # flag -> TrainConfig field; flags override the config file
    "preset": "preset", "kind": "kind", "data": "data", "out": "out", "max_steps": "max_steps",
    "batch_size": "batch_size", "microbatch": "microbatch", "lr": "lr", "checkpoint_every": "checkpoint_every",
    "seed": "seed", "sample_every": "sample_every", "ema_rate": "ema_rate", "precision": "precision",
    "init_from": "init_from", "init_kind": "init_kind", "workers": "workers",
}


def cmd_train(args) -> int:
    from ..training import TrainConfig, train
    from ..training.config import find_config, load_toml

    if args.config and args.config_option and args.config != args.config_option:
        raise GlideError(f"two configs given: {args.config} and --config {args.config_option}")
    config = args.config or args.config_option
    values: dict = {}
    if config:
        config = str(find_config(config))
        values.update(load_toml(config))
    elif args.resume and args.out and (Path(args.out) / "config.json").is_file():
        try:
            saved = json.loads((Path(args.out) / "config.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GlideError(f"{Path(args.out) / 'config.json'} is not valid JSON ({e})") from None
        if not isinstance(saved, dict) or not isinstance(saved.get("train"), dict):
            raise GlideError(f"{Path(args.out) / 'config.json'} is not a glide run config")
        values.update(saved["train"])
    for flag, field in TRAIN_FLAGS.items():
        v = getattr(args, flag)
        if v is not None:
            values[field] = v
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise GlideError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    cfg = TrainConfig.from_dict(values, where=config or "options")
    last = train(cfg, resume=args.resume)
    print(f"done: {last}")
    return 0


def register(sub) -> None:
    """glide train."""
    t = sub.add_parser("train", help="train a model (any kind); launch with torchrun for several processes")
    t.add_argument("config", nargs="?", help="TOML config file, or a packaged config's name such as emoji-base "
                                             "(see configs/); flags override it")
    t.add_argument("--config", dest="config_option", metavar="CONFIG", help="the same, as an option")
    t.add_argument("--preset", help="model preset (see glide/config.py)")
    t.add_argument("--kind", choices=["text2im", "superres", "inpaint", "superres-inpaint", "clip"], help="task")
    t.add_argument("--data", help="image folder, .jsonl manifest, .npz arrays, or WebDataset .tar shards")
    t.add_argument("--out", help="run folder (checkpoints, samples, metrics.jsonl)")
    t.add_argument("--max-steps", type=_positive_int, help="training steps")
    t.add_argument("--batch-size", type=_positive_int, help="global batch size")
    t.add_argument("--microbatch", type=_positive_int, help="per-process micro-batch (gradient accumulation)")
    t.add_argument("--lr", type=_positive, help="learning rate")
    t.add_argument("--checkpoint-every", type=_positive_int, help="steps between checkpoints")
    t.add_argument("--sample-every", type=int, help="steps between sample grids (0: never)")
    t.add_argument("--ema-rate", type=_non_negative, help="EMA decay of the exported weights")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="training precision")
    t.add_argument("--init-from", help="fine-tune from a model folder or an official .pt")
    t.add_argument("--init-kind", help="official kind of --init-from ..pt (base, upsample, ...)")
    t.add_argument("--workers", type=int, help="data loader processes")
    t.add_argument("--seed", type=_seed, help="training seed")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other config key (JSON value)")
    t.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    t.epilog = "Flags left out take the config file's values, then glide.training.TrainConfig's defaults."
    t.set_defaults(func=cmd_train)
