"""FP8 grouped GEMM for routed experts (DeepSeek block scaling) and its row-block activation quantiser."""

from .kernel import fp8_grouped_gemm, grouped_gemm, quantize_rows

__all__ = ["fp8_grouped_gemm", "grouped_gemm", "quantize_rows"]
