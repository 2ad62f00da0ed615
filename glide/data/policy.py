"""Data filtering policies: named rules that decide which image-caption pairs to drop (`glide data filter`).

A policy is a TOML file with a list of `[[rule]]` tables. An item is dropped when any rule fires. Kinds:

- `caption`: `keywords` (matched as whole words, case-insensitive) and/or `regexes` (Python syntax,
  case-insensitive), searched in every caption of the item (the main one and its alternatives);
- `metadata`: `field` equals one of `values` (the emoji data's CLDR `group` / `subgroup`, a manifest
  column, a WebDataset sample's `json`);
- `clip`: zero-shot with a CLIP: the softmax (at the CLIP's own logit scale) over `concepts` + `neutral`
  prompts puts more than `threshold` of its mass on the concepts.

Any rule may name ground-truth `labels = {field = ..., values = [...]}`; the report then gives the rule's
precision and recall against them. The policy's hash covers its rules and, for CLIP rules, the CLIP weights.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GlideError
from ..images import from_uint8

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KINDS = ("caption", "metadata", "clip")
CLDR_FIELDS = ("group", "subgroup")  # looked up from emojibase for emoji data that does not store them


@dataclass
class Rule:
    name: str
    kind: str
    keywords: list[str] = dataclasses.field(default_factory=list)  # caption
    regexes: list[str] = dataclasses.field(default_factory=list)  # caption
    field: str = ""  # metadata
    values: list[str] = dataclasses.field(default_factory=list)  # metadata
    concepts: list[str] = dataclasses.field(default_factory=list)  # clip
    neutral: list[str] = dataclasses.field(default_factory=list)  # clip
    threshold: float = 0.5  # clip: concept probability above which the item is dropped
    model: str = "bundled:clip"  # clip: a noised-CLIP folder (bundled:clip) or an open_clip weights file
    open_clip_act: str = "quickgelu"  # clip: activation of an open_clip file (gelu for LAION/DataComp)
    labels: dict[str, Any] = dataclasses.field(default_factory=dict)  # {field, values}: ground truth for precision/recall

    def validate(self, where: str) -> "Rule":
        at = f"{where}: rule {self.name!r}"
        if not self.name or not re.fullmatch(r"[\w.-]+", self.name):
            raise GlideError(f"{where}: every rule needs a name of letters, digits, '_', '-' or '.' (got {self.name!r})")
        if self.kind not in KINDS:
            raise GlideError(f"{at}: kind must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if self.kind == "caption":
            if not self.keywords and not self.regexes:
                raise GlideError(f"{at}: a caption rule needs keywords or regexes")
            for rx in self.regexes:
                try:
                    re.compile(rx)
                except re.error as e:
                    raise GlideError(f"{at}: invalid regex {rx!r}: {e}") from None
        elif self.kind == "metadata":
            if not self.field or not self.values:
                raise GlideError(f"{at}: a metadata rule needs field and values")
        else:
            if not self.concepts or not self.neutral:
                raise GlideError(f"{at}: a clip rule needs concepts and neutral prompts")
            if not 0 < self.threshold < 1:
                raise GlideError(f"{at}: threshold must be between 0 and 1 (got {self.threshold})")
            if self.open_clip_act not in ("quickgelu", "gelu"):
                raise GlideError(f"{at}: open_clip_act must be quickgelu or gelu")
        if self.labels and (not self.labels.get("field") or not self.labels.get("values")
                            or set(self.labels) - {"field", "values"}):
            raise GlideError(f"{at}: labels must be {{field = ..., values = [...]}}")
        return self


@dataclass
class Policy:
    name: str
    rules: list[Rule]
    description: str = ""
    sha256: str = ""  # filled by load_policy

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "rules": [asdict(r) for r in self.rules]}


def _as_list(v: Any, what: str) -> list[str]:
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise GlideError(f"{what} must be a list of strings")
    return v


def parse_policy(doc: dict[str, Any], where: str = "policy") -> Policy:
    known = {"name", "description", "rule"}
    if set(doc) - known:
        raise GlideError(f"{where}: unknown key(s) {', '.join(sorted(set(doc) - known))} (expected name, description, [[rule]])")
    tables = doc.get("rule", [])
    if not isinstance(tables, list) or not tables:
        raise GlideError(f"{where}: no [[rule]] tables")
    names = {f for f in Rule.__dataclass_fields__}
    rules = []
    for t in tables:
        unknown = set(t) - names
        if unknown:
            raise GlideError(f"{where}: rule {t.get('name', '?')!r}: unknown key(s) {', '.join(sorted(unknown))}")
        for k in ("keywords", "regexes", "values", "concepts", "neutral"):
            if k in t:
                t = {**t, k: _as_list(t[k], f"{where}: rule {t.get('name', '?')!r}: {k}")}
        rules.append(Rule(**t).validate(where))
    if len({r.name for r in rules}) != len(rules):
        raise GlideError(f"{where}: rule names must be unique")
    return Policy(name=str(doc.get("name", Path(where).stem)), description=str(doc.get("description", "")), rules=rules)


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    if not path.is_file():
        raise GlideError(f"policy file not found: {path}")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise GlideError(f"{path} is not valid TOML ({e})") from None
    policy = parse_policy(doc, str(path))
    policy.sha256 = policy_hash(policy)
    return policy


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def clip_weights_id(spec: str) -> str:
    """sha256 of a CLIP's weight file(s): the same rule with other weights is another filter."""
    from ..pipeline import resolve_model

    p = Path(spec)
    if p.is_file():
        return file_sha256(p)
    folder = resolve_model(spec)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise GlideError(f"no CLIP weights in {folder}")
    return hashlib.sha256("".join(file_sha256(f) for f in files).encode()).hexdigest()


def policy_hash(policy: Policy) -> str:
    """sha256 of the policy's canonical JSON (rules with their defaults filled in) and its CLIPs' weights."""
    doc = policy.document()
    doc.pop("description")  # words about the policy do not change what it does
    doc["clip_weights"] = {r.model: clip_weights_id(r.model) for r in policy.rules if r.kind == "clip"}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# -- applying rules --------------------------------------------------------------------------------


def caption_matcher(rule: Rule):
    """captions -> whether any keyword (whole word) or regex occurs in any of them."""
    parts = []
    if rule.keywords:
        # \b at both ends, but only where the keyword itself begins/ends with a word character
        parts += [(r"\b" if re.match(r"\w", k) else "") + re.escape(k) + (r"\b" if re.search(r"\w$", k) else "")
                  for k in rule.keywords]
    parts += [f"(?:{rx})" for rx in rule.regexes]
    rx = re.compile("|".join(parts), re.IGNORECASE)
    return lambda captions: any(rx.search(c) for c in captions)


def metadata_value(meta: dict[str, Any], name: str) -> str | None:
    """A field of an item's metadata as a string; the emoji data's CLDR group/subgroup come from emojibase."""
    if name in meta and meta[name] is not None:
        return str(meta[name])
    if name in CLDR_FIELDS and ("hexcode" in meta or "emoji" in meta):
        from .emoji import cldr_groups

        table = cldr_groups()
        entry = table.get(str(meta.get("hexcode", "")).upper()) or table.get(str(meta.get("emoji", "")).upper())
        if entry is not None:
            return entry[CLDR_FIELDS.index(name)]
    return None


def load_rule_clip(rule: Rule, device: str = "cpu"):
    """The CLIP a clip rule names: a noised-CLIP folder (bundled:clip) or a standard open_clip weights file."""
    path = Path(rule.model)
    if path.is_file():
        from ..clip.openclip import load_open_clip

        return load_open_clip(path, device, quick_gelu=rule.open_clip_act == "quickgelu")
    from ..clip.io import load_clip
    from ..pipeline import resolve_model

    return load_clip(resolve_model(rule.model), device)


class ClipJudge:
    """Zero-shot concept probability of images under a CLIP and one rule's (concepts, neutral) prompts."""

    def __init__(self, rule: Rule, clip, device: str = "cpu"):
        import torch

        from ..clip.tokenizer import get_clip_tokenizer

        self.clip, self.device = clip, device
        self.size = clip.cfg.image_size
        self.n_concepts = len(rule.concepts)
        tokens, lens = get_clip_tokenizer()(rule.concepts + rule.neutral, clip.cfg.text_context)
        with torch.no_grad():
            self.text = clip.text_embeddings_from_tokens(tokens.to(device), lens.to(device))
            self.scale = float(clip.scale())

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 [B, S, S, 3] at self.size -> concept probability [B] (t = 0: a noised CLIP sees clean images)."""
        import torch

        with torch.no_grad():
            x = from_uint8(images, self.device)
            z = self.clip.image_embeddings(x, 0)
            p = (self.scale * z @ self.text.T).softmax(-1)
        return p[:, : self.n_concepts].sum(-1).cpu().numpy()
