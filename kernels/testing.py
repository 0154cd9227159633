"""Comparison helpers shared by the CPU tests (tests/kernels) and the GPU check script.

They live in the package so the GPU script runs them without the test tree; they use
only torch.
"""

from __future__ import annotations

import torch


def poison_(t: torch.Tensor) -> torch.Tensor:
    """Fill a freshly allocated output with a value no kernel writes (NaN, or a sentinel for ints)."""
    return t.fill_(float("nan")) if t.is_floating_point() else t.fill_(-(2**30))


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64; inf when out has a NaN or an infinity where ref does not."""
    a, b = out.double(), ref.double()
    finite = torch.isfinite(b)
    if not torch.equal(torch.isfinite(a), finite) or not torch.equal(a[~finite], b[~finite]):
        return float("inf")
    denom = b[finite].norm().item()
    return (a[finite] - b[finite]).norm().item() / max(denom, 1e-30)


def topk_mismatch(
    idx: torch.Tensor, scores: torch.Tensor, lengths: torch.Tensor, topk: int, rtol: float
) -> str | None:
    """Check a (R, topk) index set against exact scores; return a message describing the first bad row, or None.

    A row is right when: its first min(lengths[r], topk) entries are distinct visible keys
    (< lengths[r]) and the rest are -1; and the chosen set equals the exact top-k up to
    near-ties: every chosen key scores >= the exact k-th score - tol, and every key scoring
    > k-th + tol is chosen, with tol = rtol * max|score| of the row. Floating-point sums in
    another order may swap keys whose scores differ by rounding only; nothing else may differ.
    """
    idx = idx.cpu().long()
    scores = scores.cpu().double()
    lengths = lengths.cpu().long().clamp(0, scores.shape[1])
    for r in range(idx.shape[0]):
        n = int(lengths[r])
        want = min(n, topk)
        row = idx[r]
        chosen = row[row >= 0]
        # The kernels put the valid entries first and pad with -1 (consumers may stop at the first -1).
        if bool((row[:want] < 0).any()) or bool((row[want:] != -1).any()):
            return f"row {r}: expected {want} valid entries then -1 (length {n}); row={row.tolist()[:8]}..."
        if want == 0:
            continue
        if chosen.unique().numel() != want or int(chosen.max()) >= n:
            return f"row {r}: duplicate or invisible indices (length {n})"
        vis = scores[r, :n]
        kth = torch.topk(vis, want).values[-1].item()
        tol = rtol * vis.abs().max().item()
        if bool((vis[chosen] < kth - tol).any()):
            return f"row {r}: chose a key scoring below the k-th score {kth} - {tol}"
        must = (vis > kth + tol).nonzero().flatten()
        if not bool(torch.isin(must, chosen).all()):
            return f"row {r}: missed a key scoring above the k-th score {kth} + {tol}"
    return None


def fp8_experts(
    E: int, N: int, K: int, device: str, block: int = 128, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random e4m3 expert weights (E, N, K) and power-of-two block scales (E, N/block, K/block),
    as DeepSeek-V3.2's ue8m0 checkpoints have; made an expert at a time to bound the float32
    temporary. The scales vary by block, so a kernel that reads the wrong one is caught."""
    gen = torch.Generator(device=device).manual_seed(seed)
    w = torch.empty(E, N, K, dtype=torch.float8_e4m3fn, device=device)
    for e in range(E):
        w[e] = (torch.randn(N, K, device=device, generator=gen) * 64).to(torch.float8_e4m3fn)
    exps = torch.randint(-14, -8, (E, N // block, K // block), device=device, generator=gen)
    return w, torch.exp2(exps.float())


def routed_pairs(
    tokens: int, E: int, topk: int, device: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(token, expert) pairs of `tokens` tokens routed to `topk` distinct experts each, sorted by
    expert as the engine sorts them: (sorted expert ids (P,), group ends (E,) int32)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    ids = torch.rand(tokens, E, device=device, generator=gen).topk(topk, dim=1).indices  # (T, k)
    expert = ids.reshape(-1).sort().values  # (P,)
    counts = torch.bincount(expert, minlength=E)
    return expert, torch.cumsum(counts, 0).to(torch.int32)
