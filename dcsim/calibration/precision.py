"""Numeric precision of a served model: bytes per weight and per KV element, and the peak rate its GEMMs use.

What changes with precision (issue 16), and nothing else:
- weight bytes (memory footprint, cold start, the weight-streaming term of every iteration) scale with
  bytes per parameter: BF16 2, FP8 1, INT8 1, INT4 0.5;
- KV bytes per token (KV capacity, the context-streaming term of decode) scale with the KV element's bytes;
- the weight GEMMs (prefill, and decode's compute term) run at the catalog's peak for that precision:
  FP8 at peak_fp8_flops and INT8 at peak_int8_ops (W8A8: activations quantized too), INT4 at the 16-bit
  peak (W4A16: weights are unpacked to 16-bit before the multiply, as weight-only kernels do). Attention
  and the all-reduces stay 16-bit.

The fitted efficiency multipliers of the 16-bit calibration are kept: no measured 8-bit or 4-bit step
time backs the scaled figures (docs/inference.md, "Precision"). Quantization scales and zero points
(a few percent of the weight bytes) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcsim.catalog import AcceleratorSpec
from dcsim.errors import CalibrationError

WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
KV_BYTES = {"bf16": 2.0, "fp8": 1.0, "int8": 1.0}
REFERENCE_BYTES = 2.0  # the calibration's 16-bit weights and KV


@dataclass(frozen=True)
class Precision:
    """A service's weight and KV-cache precision (names as in the scenario: bf16, fp8, int8, int4)."""

    weights: str = "bf16"
    kv: str = "bf16"

    @property
    def is_reference(self) -> bool:
        return self.weights == "bf16" and self.kv == "bf16"

    @property
    def weight_scale(self) -> float:
        """Weight bytes relative to 16-bit."""
        return WEIGHT_BYTES[self.weights] / REFERENCE_BYTES

    @property
    def kv_scale(self) -> float:
        """KV bytes per token relative to 16-bit."""
        return KV_BYTES[self.kv] / REFERENCE_BYTES

    def gemm_speedup(self, spec: AcceleratorSpec) -> float:
        """Peak FLOP/s of this precision's weight GEMMs over the 16-bit peak; fails where the part has none."""
        return self.gemm_peak(spec) / spec.peak_fp16_flops.value

    def gemm_peak(self, spec: AcceleratorSpec) -> float:
        if self.weights in ("bf16", "int4"):
            return spec.peak_fp16_flops.value
        figure = spec.peak_fp8_flops if self.weights == "fp8" else spec.peak_int8_ops
        if figure is None:
            field = "peak_fp8_flops" if self.weights == "fp8" else "peak_int8_ops"
            raise CalibrationError(f"{self.weights} weights need an {self.weights.upper()} tensor path; the catalog "
                                   f"gives {spec.name} none ({field}); use bf16 or int4 (weight-only)")
        return figure.value
