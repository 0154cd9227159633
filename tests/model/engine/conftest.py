"""Engine tests run many tiny decode steps: one intra-op thread avoids thread hand-off costs that
dominate at these sizes (seen 13 ms vs 300 ms per step on a busy 2-core machine)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
