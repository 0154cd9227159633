"""Helpers shared by the host wrappers: precondition checks and the interpreter switch."""

from __future__ import annotations

import os

import torch

from .errors import KernelInputError


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU interpreter (TRITON_INTERPRET=1).

    The wrappers pass this as a constexpr: under the interpreter of triton 3.9 a
    `tl.dot` of two bf16 operands returns garbage, so kernels upcast the operands
    to float32 there and keep bf16/FP8 on the GPU.
    """
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check(ok: bool, message: str) -> None:
    """Raise KernelInputError(message) unless ok (asserts vanish under -O, this does not)."""
    if not ok:
        raise KernelInputError(message)


def check_tensor(name: str, t: object, ndim: int, dtypes: tuple[torch.dtype, ...]) -> torch.Tensor:
    """Check that t is a tensor of ndim dimensions and one of dtypes; return it."""
    check(isinstance(t, torch.Tensor), f"{name} must be a torch.Tensor, got {type(t).__name__}")
    assert isinstance(t, torch.Tensor)
    check(t.dim() == ndim, f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
    check(t.dtype in dtypes, f"{name} must be {names}, got {str(t.dtype).replace('torch.', '')}")
    return t


def check_same_device(**tensors: torch.Tensor) -> torch.device:
    """Check that all tensors live on one device, and that it is CUDA unless interpreting."""
    devices = {name: t.device for name, t in tensors.items()}
    first = next(iter(devices.values()))
    for name, dev in devices.items():
        check(dev == first, f"{name} is on {dev} but the other inputs are on {first}")
    if not interpreting():
        check(
            first.type == "cuda",
            f"inputs are on {first}; these Triton kernels need a CUDA device "
            "(or TRITON_INTERPRET=1 for the CPU interpreter)",
        )
    return first


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (and >= 1)."""
    return 1 << max(0, (int(n) - 1).bit_length())


FP8_DTYPES = tuple(d for d in (getattr(torch, "float8_e4m3fn", None),) if d is not None)


def debug_report(name: str, handle: object) -> None:
    """Print a compiled kernel's registers, spills and shared memory when GODWIT_KERNEL_DEBUG is set.

    The benchmark sets it to see register pressure without a profiler; launches return the
    compiled kernel on the GPU (the CPU interpreter returns nothing, and nothing is printed).
    """
    if not os.environ.get("GODWIT_KERNEL_DEBUG") or handle is None:
        return
    meta = getattr(handle, "metadata", None)
    shared = getattr(meta, "shared", None) if meta is not None else None
    ptx = (getattr(handle, "asm", None) or {}).get("ptx", "")
    mma = (
        f"wgmma x{ptx.count('wgmma.mma_async')}, mma.sync x{ptx.count('mma.sync')}"
        if ptx
        else "no ptx"
    )
    line = (
        f"[kernel] {name}: regs {getattr(handle, 'n_regs', '?')}, spills {getattr(handle, 'n_spills', '?')}, "
        f"shared {shared} B, {mma}"
    )
    if line not in _REPORTED:
        _REPORTED.add(line)
        print(line, flush=True)


_REPORTED: set[str] = set()  # lines already printed, so a benchmark loop prints each once


def output(
    name: str, given: torch.Tensor | None, shape: tuple, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The caller's preallocated output `name` after checking it, or a fresh torch.empty one."""
    if given is None:
        return torch.empty(shape, dtype=dtype, device=device)
    check(
        isinstance(given, torch.Tensor)
        and tuple(given.shape) == tuple(shape)
        and given.dtype == dtype
        and given.is_contiguous()
        and given.device == device,
        f"{name} must be a contiguous {tuple(shape)} {str(dtype).replace('torch.', '')} tensor "
        f"on {device}",
    )
    return given
