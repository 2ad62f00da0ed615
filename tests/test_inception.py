"""The FID InceptionV3: layout of the real weights file, loading, features, and load errors.

No real weights here: a randomly initialised FIDInception is saved under the weights file's key names.
"""

import pytest
import torch

from glide.errors import GlideError
from glide.evaluation.inception import WEIGHTS_FILE, FIDInception, load_fid_inception

# The layout of pt_inception-2015-12-05-6726825d.pth, counted from pytorch-fid's model (torchvision's
# Inception3 with num_classes=1008, aux_logits=False, and the FIDInceptionA/C/E_1/E_2 blocks): 94
# conv+BN units of 6 entries each (conv.weight, bn.weight/bias/running_mean/running_var/num_batches_tracked)
# plus fc.weight and fc.bias.
N_KEYS = 566
N_BATCHNORMS = 94
N_PARAMS = 23_850_960  # learnable parameters, the unused 1008-way fc (2,065,392) included
EXPECTED_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_1a_3x3.bn.num_batches_tracked": (),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
    "Mixed_7c.branch_pool.bn.running_var": (192,),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random FID Inception state dict saved like the real file; returns (path, state dict)."""
    torch.manual_seed(0)
    model = FIDInception()
    with torch.no_grad():  # random but well-scaled BN statistics, so features neither vanish nor blow up
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    sd = model.state_dict()
    path = tmp_path_factory.mktemp("fid") / WEIGHTS_FILE
    torch.save(sd, path)
    return path, sd


@pytest.fixture(scope="module")
def loaded(weights):
    return load_fid_inception(weights[0])


def test_layout_matches_the_weights_file():
    with torch.device("meta"):
        model = FIDInception()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(shapes) == N_KEYS
    assert sum(k.endswith(".bn.num_batches_tracked") for k in shapes) == N_BATCHNORMS
    assert sum(p.numel() for p in model.parameters()) == N_PARAMS
    for key, shape in EXPECTED_SHAPES.items():
        assert shapes.get(key) == shape, key
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert (model.Mixed_7b.pool, model.Mixed_7c.pool) == ("avg", "max")


def test_load_roundtrip(weights, loaded):
    _, sd = weights
    assert not loaded.training
    got = loaded.state_dict()
    assert got.keys() == sd.keys()
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_pool3_features(loaded):
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        f = loaded(x)
    assert f.shape == (2, 2048)
    assert torch.isfinite(f).all()
    assert (f >= 0).all()  # an average of ReLU outputs
    assert (f > 0).float().mean() > 0.5  # and not collapsed to zero
    assert not torch.equal(f[0], f[1])


def test_small_images_are_resized(loaded):
    with torch.no_grad():
        f = loaded(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert f.shape == (1, 2048)
    assert torch.isfinite(f).all()


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(GlideError) as e:
        load_fid_inception(path)
    msg = str(e.value)
    assert str(path) in msg and WEIGHTS_FILE in msg and "\n" not in msg


def test_mismatched_keys_and_shapes(weights, tmp_path):
    _, sd = weights
    bad = dict(sd)
    bad["Mixed_5b.branch_1x1.conv.weight"] = bad.pop("Mixed_5b.branch1x1.conv.weight")
    bad["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(GlideError) as e:
        load_fid_inception(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "missing: Mixed_5b.branch1x1.conv.weight" in msg
    assert "unexpected: Mixed_5b.branch_1x1.conv.weight" in msg
    assert "wrong shape: fc.bias [1000] != [1008]" in msg


def test_unreadable_or_not_a_state_dict(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(GlideError, match="cannot read FID Inception weights") as e:
        load_fid_inception(garbage)
    assert "\n" not in str(e.value)

    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], a_list)
    with pytest.raises(GlideError, match="not a state dict"):
        load_fid_inception(a_list)
