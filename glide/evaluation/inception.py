"""The InceptionV3 feature extractor of standard FID: TensorFlow's 2015-12-05 Inception graph.

FID numbers are only comparable when they come from this exact network, which differs from
torchvision's InceptionV3 in details that change the features:
  - the average-pool branch of the A, C and first E blocks ignores the zero padding (TF's average
    pool divides by the number of real pixels: count_include_pad=False);
  - the last E block (Mixed_7c) uses a max pool in that branch;
  - BatchNorm eps is 0.001, and the classifier has 1008 classes. FID reads the 2048-d "pool3" features
    taken before it; the Inception Score reads the classifier's logits.
Module names follow torchvision's Inception3, so the widely used port of these weights,
pytorch-fid's pt_inception-2015-12-05-6726825d.pth, loads as is.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import fp32, on_meta
from ..errors import GlideError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
INPUT_SIZE = 299


class ConvBN(nn.Module):
    """Conv -> BatchNorm -> ReLU. `same` pads so a stride-1 conv keeps the spatial size."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 same: bool = False):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        padding = (kh // 2, kw // 2) if same else 0
        # no conv bias: the BatchNorm shift that follows plays that role
        self.conv = nn.Conv2d(c_in, c_out, (kh, kw), stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 'same' average pool as TF computes it: border windows average only the real pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1, 5x5, double 3x3 and pooled branches, concatenated."""

    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(c_in, 64, 1)
        self.branch5x5_1 = ConvBN(c_in, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, same=True)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, same=True)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, same=True)
        self.branch_pool = ConvBN(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35x35 -> 17x17 (Mixed_6a): strided convs next to a strided max pool."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, same=True)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        b3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b3dbl, bp], dim=1)


class InceptionC(nn.Module):
    """17x17 block (Mixed_6b..e): 7x7 convolutions factored into 1x7 and 7x1 ones."""

    def __init__(self, c_in: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = ConvBN(c_in, 192, 1)
        self.branch7x7_1 = ConvBN(c_in, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), same=True)
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), same=True)
        self.branch7x7dbl_1 = ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), same=True)
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), same=True)
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), same=True)
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), same=True)
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7dbl = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            b7dbl = conv(b7dbl)
        bp = self.branch_pool(tf_avg_pool(x))
        return torch.cat([b1, b7, b7dbl, bp], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17x17 -> 8x8 (Mixed_7a)."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(c_in, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), same=True)
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), same=True)
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], dim=1)


class InceptionE(nn.Module):
    """8x8 block (Mixed_7b/c): 3x3 convs split into parallel 1x3 and 3x1 halves.

    `pool` is "avg" for Mixed_7b and "max" for Mixed_7c: the TF graph behind FID max-pools in the
    last block (unlike the paper), and the standard FID statistics were computed that way.
    """

    def __init__(self, c_in: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.branch1x1 = ConvBN(c_in, 320, 1)
        self.branch3x3_1 = ConvBN(c_in, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), same=True)
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), same=True)
        self.branch3x3dbl_1 = ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, same=True)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), same=True)
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), same=True)
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        h = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(h), self.branch3x3_2b(h)], dim=1)
        h = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3dbl = torch.cat([self.branch3x3dbl_3a(h), self.branch3x3dbl_3b(h)], dim=1)
        pooled = tf_avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3dbl, bp], dim=1)


class FIDInception(nn.Module):
    """Images [B,3,H,W] in [-1,1] -> pool3 features [B,2048].

    Any input size works: images are resized to 299x299 (bilinear, align_corners=False) as
    pytorch-fid does. pytorch-fid resizes [0,1] images and then maps them to [-1,1]; both steps are
    affine per pixel, so resizing our [-1,1] images directly gives the same network input.
    """

    def __init__(self):
        super().__init__()
        # stem: 299 -> 149 -> 147 -> 147 -> (max pool) 73 -> 73 -> 71 -> (max pool) 35
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, same=True)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        # 35x35: 256, 288, 288 channels
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        # 17x17x768
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        # 8x8: 1280, 2048, 2048 channels
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        # The 1008-way classifier: the Inception Score's p(y|x) (see `logits`).
        self.fc = nn.Linear(FEATURE_DIM, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise GlideError(f"FIDInception expects images [B,3,H,W], got shape {list(x.shape)}")
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # pool3

    def logits(self, pool3: torch.Tensor) -> torch.Tensor:
        """Class logits from pool3 features, as the original Inception Score code computes them: pool3 times
        the classifier matrix, without its bias (torch-fidelity's "logits_unbiased")."""
        return pool3 @ self.fc.weight.T


def _few(items: list[str], n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_fid_inception(path: str | os.PathLike, device: str | torch.device = "cpu") -> FIDInception:
    """FIDInception with the weights of pytorch-fid's pt_inception-2015-12-05-6726825d.pth, in eval mode.

    The file is read with weights_only=True (plain tensors only) and must match the network exactly.
    """
    path = Path(path)
    if not path.is_file():
        raise GlideError(f"FID Inception weights not found: {path} (supply pytorch-fid's weights file {WEIGHTS_FILE})")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types (unpickling, zip, weights_only refusals)
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise GlideError(f"cannot read FID Inception weights {path}: {first[:200]}") from None
    if not isinstance(sd, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise GlideError(f"{path} is not a state dict of tensors (expected pytorch-fid's {WEIGHTS_FILE})")

    model = on_meta(FIDInception)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(expected.keys() - sd.keys())
    unexpected = sorted(sd.keys() - expected.keys())
    wrong = [f"{k} {list(sd[k].shape)} != {list(shape)}" for k, shape in expected.items()
             if k in sd and tuple(sd[k].shape) != shape]
    if missing or unexpected or wrong:
        parts = [f"{label}: {_few(items)}" for label, items in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if items]
        raise GlideError(f"{path} does not match the FID InceptionV3 (expected {WEIGHTS_FILE}): " + "; ".join(parts))

    sd = fp32(sd)
    model.load_state_dict(sd, strict=True, assign=True)
    model.requires_grad_(False)  # a fixed feature extractor; gradients w.r.t. inputs still flow
    return model.to(device).eval()
