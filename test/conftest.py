import numpy as np
import pytest
import torch

from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
from fornet_ros.model import create_model


def spread_selector(model, seed: int = 0):
    """Untrained selectors give nearly equal region scores (ties make Top-K arbitrary between
    runtimes); scale the last selector conv so that regions get distinct importances."""
    g = torch.Generator().manual_seed(seed)
    last = model.selector.net[-1]
    with torch.no_grad():
        last.weight.copy_(torch.randn(last.weight.shape, generator=g) * 2.0)
    return model


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return spread_selector(create_model("fornet_s", topk_ratio=0.25)).eval()


@pytest.fixture
def checkpoint_path(tmp_path, small_model):
    return save_checkpoint(tmp_path / "model.pt", small_model, ModelMeta.default(19, (128, 256)))


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (97, 171, 3), dtype=np.uint8)
