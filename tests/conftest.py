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
def one_thread():
    """For small models on a busy machine: a second thread mostly waits and adds synchronisation."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
