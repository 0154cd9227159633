"""Radix top-k against torch.topk on odd sizes, ties, short rows and split rows."""

import pytest
import torch

from kernels import KernelInputError, radix_topk
from kernels.testing import poison_, topk_mismatch


@pytest.mark.parametrize("splits", [1, 3])
def test_radix_topk_matches_torch_topk(device, splits):
    R, L, K = 7, 500, 64
    scores = torch.randn(R, L, device=device) * torch.rand(R, 1, device=device) * 100
    scores[1] = -scores[1].abs()  # all negative: exercises the sign handling of the keys
    scores[2] = scores[2].round()  # heavy ties at the threshold
    lengths = torch.tensor([500, 257, 300, 64, 63, 0, 65], dtype=torch.int32, device=device)
    out = poison_(torch.empty((R, K), dtype=torch.int32, device=device))
    radix_topk(scores, lengths, K, out=out, splits=splits)
    # Radix select is exact on the float32 keys, so no tolerance is needed.
    assert topk_mismatch(out, scores, lengths, K, rtol=0.0) is None


def test_radix_topk_wrong_input_is_rejected(device):
    scores = torch.randn(3, 10, device=device)
    with pytest.raises(KernelInputError, match="lengths must be int32"):
        radix_topk(scores, torch.ones(3, dtype=torch.int64, device=device), 4)
    with pytest.raises(KernelInputError, match="topk must be a positive int"):
        radix_topk(scores, torch.ones(3, dtype=torch.int32, device=device), 0)
    out = torch.full((3, 5), 7, dtype=torch.int32, device=device)
    with pytest.raises(KernelInputError, match="out must be"):
        radix_topk(scores, torch.ones(3, dtype=torch.int32, device=device), 4, out=out)
    assert bool((out == 7).all())  # a rejected call writes nothing
