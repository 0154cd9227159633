"""Radix top-k against torch.topk on odd sizes, ties, short rows and split rows."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels import KernelInputError, radix_topk
from kernels.testing import poison_, topk_mismatch
from kernels.topk.kernel import radix_topk_
from kernels.topk.row import radix_topk_rows


@pytest.mark.parametrize("splits", [1, 3])
def test_radix_topk_matches_torch_topk(device, splits):
    R, L, K = 7, 500, 64
    scores = torch.randn(R, L, device=device) * torch.rand(R, 1, device=device) * 100
    # All negative and huge: exercises the sign handling of the keys and puts the threshold in
    # the lowest radix bins, where a row that strayed into another row's work space would show.
    scores[1] = -(1 + torch.rand(L, device=device)) * 1e38
    scores[2] = scores[2].round()  # heavy ties at the threshold
    lengths = torch.tensor([500, 257, 300, 64, 63, 0, 65], dtype=torch.int32, device=device)
    out = poison_(torch.empty((R, K), dtype=torch.int32, device=device))
    radix_topk(scores, lengths, K, out=out, splits=splits)
    # Radix select is exact on the float32 keys, so no tolerance is needed.
    assert topk_mismatch(out, scores, lengths, K, rtol=0.0) is None


@pytest.mark.parametrize("cap", [4096, 8])
def test_row_kernel_candidate_buffer_and_its_overflow(device, cap):
    # The one-program-per-row path keeps the keys sharing the threshold's top bits in a
    # buffer; with cap 8 the tied rows overflow it and take the whole-row fallback.
    R, L, K = 5, 700, 100
    scores = torch.randn(R, L, device=device)
    scores[0] = scores[0].mul(3).round()  # ties: hundreds of equal keys at the threshold
    scores[1] = (
        1.0 + torch.rand(L, device=device) * 1e-3
    )  # a narrow range: all keys share their top bits
    lengths = torch.tensor([700, 700, 650, 101, 99], dtype=torch.int32, device=device)
    out = poison_(torch.empty((R, K), dtype=torch.int32, device=device))
    radix_topk_(scores, lengths, K, out, splits=1, block=128, cand_cap=cap)
    assert topk_mismatch(out, scores, lengths, K, rtol=0.0) is None


@pytest.mark.parametrize("case", ["guess holds", "buffer overflows", "too few above the guess"])
def test_row_kernel_sampled_threshold_and_its_fallbacks(device, case):
    # The row kernel first guesses a threshold from a sample (here 4 blocks of 32 keys) and
    # keeps the keys above it; when fewer than topk or more than cap keys qualify it must fall
    # back to the exact path. Each case forces one outcome; every answer must be exact.
    R, L, K = 4, 700, 20
    scores = torch.randn(R, L, device=device)
    cap = None
    if case == "buffer overflows":
        cap = 25  # about 1.6 * K = 32 keys pass the guess
    if case == "too few above the guess":
        sampled = (torch.arange(128, device=device) // 32) * (L // 4) + torch.arange(
            128, device=device
        ) % 32
        scores[:, sampled] += (
            100.0  # the sample sees only huge keys: the guess lets ~6 keys through
        )
    lengths = torch.tensor([700, 699, 300, 256], dtype=torch.int32, device=device)
    out = poison_(torch.empty((R, K), dtype=torch.int32, device=device))
    radix_topk_rows(
        scores,
        lengths,
        K,
        out,
        block=128,
        cap=cap,
        sample_blocks=4,
        sample_block=32,
        sample_min_per_k=4,
    )
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


def test_import_kernels_loads_neither_torch_nor_triton():
    # Godwit with a hosted model must start without torch; the entry points load it lazily.
    code = "import sys, kernels; print('torch' in sys.modules or 'triton' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "False"
