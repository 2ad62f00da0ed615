"""`glide data filter DATA --policy POLICY.toml --out FILTERED`: drop the image-caption pairs a policy names.

Every format `glide train` reads keeps its format: a folder of images (+ same-named .txt captions and
optional .json metadata) stays a folder, a JSONL manifest stays a manifest (its kept images copied beside
it), an .npz stays an .npz with the same arrays, a dataset folder from `glide data emoji` stays one, and
WebDataset shards are streamed and written shard by shard. FILTERED is always a new folder, built under a
temporary name and renamed into place at the end; it holds `filter.json` (the policy, its hash and the
counts), which `glide train` reads to record what it trained on. The report (report.md, report.json and a
grid of removed and kept examples per rule) goes to FILTERED-report/ unless --report says otherwise.

One concern per module: deciding (`decide`), the formats (`formats`; which format a path is, is decided by
glide.data.datasets.detect_format, as for training), the report (`report`), the run and its provenance (`run`). The rules themselves are glide.data.policy; the options live in glide.cli.data.
"""

from .decide import Decider, Record, RuleStats
from .run import PROVENANCE, data_filter_record, filter_data

__all__ = ["Decider", "Record", "RuleStats", "PROVENANCE", "data_filter_record", "filter_data"]
