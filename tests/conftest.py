import os
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
# Fixtures made by running the official code; point GLIDE_FIXTURES at another set made the same way
# (other tiny configs) and every fixture test runs against it unchanged.
FIXTURES = Path(os.environ.get("GLIDE_FIXTURES", HERE / "fixtures" / "reference"))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
