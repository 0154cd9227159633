"""FP8 grouped GEMM and the row-block quantiser against the plain-PyTorch reference.

TOL: both sides multiply the same e4m3 values with the same scales and round once to bf16 (2^-9
relative); on a GPU the FP8 tensor cores also accumulate each 128-wide block in reduced precision.
1e-2 relative (Frobenius) is a few times what that costs and far below what a wrong scale, a wrong
expert or a missed K-block gives (O(1)).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels import KernelInputError, fp8_grouped_gemm, grouped_gemm, quantize_rows
from kernels.moe import naive
from kernels.testing import poison_, rel_err

TOL = 1e-2
FP8 = torch.float8_e4m3fn


def experts(E: int, N: int, K: int, block: int, device: str, seed: int = 0):
    """Random FP8 expert weights (E, N, K) with one float32 scale per block (not powers of two)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(E, N // block, block, K // block, block, generator=gen)
    amax = w.abs().amax(dim=(2, 4))  # (E, N/b, K/b)
    scale = amax / 448 * (1 + torch.rand(amax.shape, generator=gen))  # uneven, some headroom
    q = (w / scale[:, :, None, :, None]).clamp(-448, 448).to(FP8)
    return q.view(E, N, K).to(device), scale.to(device)


def rows(counts: list[int], K: int, block: int, device: str, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    P = sum(counts)
    x = torch.randn(P, K, generator=gen) * torch.logspace(-2, 2, P)[:, None]  # rows of any size
    xq, xs = naive.quantize_rows(x, block)
    ends = torch.tensor(counts).cumsum(0).to(torch.int32)
    return xq.to(device), xs.to(device), ends.to(device)


@pytest.mark.parametrize(
    "counts,config",
    [
        ([10, 0, 37, 1, 0, 14], None),  # empty groups, a group over two 16-row tiles
        ([0, 0, 50, 0], {"BM": 16, "BN": 32}),  # all rows in one expert, four m-tiles
        ([0, 1, 0], None),  # P = 1
        ([70, 3, 0, 100, 31], {"BM": 64, "BN": 64, "num_warps": 4, "num_stages": 2}),
    ],
)
def test_grouped_gemm_matches_naive(device, counts, config):
    E, N, K, block = len(counts), 96, 64, 32  # N is not a multiple of BN = 64
    w, ws = experts(E, N, K, block, device)
    xq, xs, ends = rows(counts, K, block, device)
    out = poison_(torch.empty(sum(counts), N, dtype=torch.bfloat16, device=device))
    fp8_grouped_gemm(xq, xs, w, ws, ends, out=out, config=config)
    assert rel_err(out, naive.fp8_grouped_gemm(xq, xs, w, ws, ends)) < TOL


def test_grouped_gemm_without_rows_writes_nothing(device):
    w, ws = experts(3, 32, 32, 32, device)
    xq, xs, ends = rows([0, 0, 0], 32, 32, device)
    assert fp8_grouped_gemm(xq, xs, w, ws, ends).shape == (0, 32)


@pytest.mark.parametrize("swiglu", [False, True])
def test_quantize_rows_matches_naive_exactly(device, swiglu):
    """Same power-of-two scales and same e4m3 values (round to nearest even), including a zero row
    and values small enough to be e4m3 subnormals after scaling."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(37, 192, generator=gen) * torch.logspace(-6, 3, 192)  # wide range in a block
    x[5] = 0
    x = x.to(device)
    q, s = quantize_rows(x, 32, swiglu=swiglu)
    qn, sn = naive.quantize_rows(x, 32, swiglu=swiglu)
    assert torch.equal(s, sn)
    assert torch.equal(q.view(torch.uint8), qn.view(torch.uint8))
    assert bool((torch.log2(s) == torch.log2(s).round()).all())


def test_bad_inputs_are_refused(device):
    w, ws = experts(2, 64, 64, 32, device)
    xq, xs, ends = rows([3, 4], 64, 32, device)
    with pytest.raises(KernelInputError, match="w_scale must be"):
        fp8_grouped_gemm(xq, xs, w, ws[:, :1], ends)
    with pytest.raises(KernelInputError, match="ends must be"):
        fp8_grouped_gemm(xq, xs, w, ws, ends[:1])
    with pytest.raises(KernelInputError, match="x must be float8_e4m3fn"):
        fp8_grouped_gemm(xq.float(), xs, w, ws, ends)
    with pytest.raises(KernelInputError, match="multiple of the block"):
        quantize_rows(torch.randn(4, 48, device=device), 32)


def test_kernels_compile_for_hopper():
    """Compile for sm_90 (no GPU needed: Triton's own ptxas) at DeepSeek's block of 128, with the
    divisibility Triton infers at run time for 16-aligned sizes. The interpreter checks neither
    what the GPU compiler refuses (a global that is not a constexpr, say) nor that the FP8 dots
    reach the tensor cores and the loads are multi-buffered. A subprocess, because Triton decides
    at import whether kernels are interpreted."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[2]
    code = "import tests.kernels.test_moe as t; t.compile_for_hopper()"
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    if run.stdout.startswith("SKIP"):
        pytest.skip(run.stdout)


def compile_for_hopper() -> None:
    """Body of test_kernels_compile_for_hopper (Triton in compile mode); prints SKIP when this
    Triton cannot compile for NVIDIA GPUs ahead of time."""
    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        print("SKIP: this Triton has no ahead-of-time compile API")
        return
    from kernels.moe import kernel

    target = GPUTarget("cuda", 90, 32)
    ints = ["N", "K", "stride_x", "stride_xs", "stride_we", "stride_wn", "stride_wse"]
    sig = {"x_ptr": "*fp8e4nv", "xs_ptr": "*fp32", "w_ptr": "*fp8e4nv", "ws_ptr": "*fp32"}
    sig |= {"ends_ptr": "*i32", "out_ptr": "*bf16", **dict.fromkeys(ints, "i32")}
    sig |= {"stride_wsn": "i32", "stride_o": "i32"}
    sig |= dict.fromkeys(["E", "EP", "QB", "BM", "BN", "UPCAST", "SCALED"], "constexpr")
    aligned = {(i,): [["tt.divisibility", 16]] for i in range(15)}
    for per_expert in (1, 32, 128):  # the three default tilings
        cfg = kernel._config(256 * per_expert, 256, 4096)
        consts = {"E": 256, "EP": 256, "QB": 128, "BM": cfg["BM"], "BN": cfg["BN"], "UPCAST": False}
        consts["SCALED"] = True
        src = ASTSource(kernel._fp8_grouped_gemm_kernel, sig, consts, aligned)
        options = {"num_warps": cfg["num_warps"], "num_stages": cfg["num_stages"]}
        try:
            compiled = triton.compile(src, target=target, options=options)
        except RuntimeError as err:  # no ptxas or no NVIDIA backend in this Triton build
            if "ptxas" in str(err).lower() or "backend" in str(err).lower():
                print(f"SKIP: cannot compile for sm_90 here: {err}")
                return
            raise
        ptx = compiled.asm["ptx"]
        if cfg["BM"] >= 64:
            assert "wgmma.mma_async" in ptx and "e4m3" in ptx, cfg
            tile = (cfg["BM"] + cfg["BN"]) * 128  # bytes of one stage's FP8 operands
            assert compiled.metadata.shared >= 2 * tile, cfg  # software-pipelined loads
        else:
            assert "mma.sync" in ptx and "e4m3" in ptx, cfg
    # The unscaled bf16 variant at decode tiles (kernels.grouped_gemm).
    bsig = {**sig, "x_ptr": "*bf16", "xs_ptr": "*bf16", "w_ptr": "*bf16", "ws_ptr": "*bf16"}
    cfg = kernel._config(8, 256, 4096)
    consts = {"E": 256, "EP": 256, "QB": 64, "BM": cfg["BM"], "BN": cfg["BN"], "UPCAST": False}
    consts["SCALED"] = False
    options = {"num_warps": cfg["num_warps"], "num_stages": cfg["num_stages"]}
    ptx = triton.compile(
        ASTSource(kernel._fp8_grouped_gemm_kernel, bsig, consts, aligned),
        target=target,
        options=options,
    ).asm["ptx"]
    assert "mma.sync" in ptx and "bf16" in ptx and "e4m3" not in ptx
    qsig = {"x_ptr": "*bf16", "q_ptr": "*fp8e4nv", "s_ptr": "*fp32"}
    qsig |= dict.fromkeys(["P", "half", "stride_x", "stride_q", "stride_s"], "i32")
    qsig |= dict.fromkeys(["SWIGLU", "QB", "BR", "EXACT_ROUND"], "constexpr")
    for swiglu in (False, True):
        consts = {"SWIGLU": swiglu, "QB": 128, "BR": 16, "EXACT_ROUND": False}
        compiled = triton.compile(
            ASTSource(kernel._quantize_rows_kernel, qsig, consts), target=target
        )
        assert "e4m3" in compiled.asm["ptx"]


@pytest.mark.parametrize("counts", [[3, 0, 1, 0], [0, 0, 0, 40], [1, 1, 1, 1], [1]])
def test_bf16_grouped_gemm_matches_the_reference(device, counts):
    """The unscaled variant (decode-sized groups in bf16): empty groups, a group over several
    row tiles, one row per expert, a single pair; rows of very different sizes."""
    E, N, K = len(counts), 96, 48  # N not a multiple of the 64-wide tile, K of 16 but not 64
    gen = torch.Generator().manual_seed(3)
    w = (torch.randn(E, N, K, generator=gen) * 0.1).to(torch.bfloat16).to(device)
    P = sum(counts)
    x = (torch.randn(P, K, generator=gen) * torch.logspace(-1, 1, P)[:, None]).to(torch.bfloat16)
    x = x.to(device)
    ends = torch.tensor(counts).cumsum(0).to(torch.int32).to(device)
    out = poison_(torch.empty(P, N, dtype=torch.bfloat16, device=device))
    got = grouped_gemm(x, w, ends, out=out)
    want = naive.grouped_gemm(x, w, ends)
    assert got.data_ptr() == out.data_ptr() and not got.isnan().any()
    assert rel_err(got, want) < TOL


def test_bf16_grouped_gemm_refuses_bad_input(device):
    w = torch.zeros(2, 32, 40, dtype=torch.bfloat16, device=device)
    x = torch.zeros(3, 40, dtype=torch.bfloat16, device=device)
    ends = torch.tensor([1, 3], dtype=torch.int32, device=device)
    with pytest.raises(KernelInputError, match="multiple of 16"):
        grouped_gemm(x, w, ends)
    with pytest.raises(KernelInputError, match="ends must be"):
        grouped_gemm(x[:, :32], w[:, :, :32].contiguous(), ends[:1])
