"""Memory feasibility: does a model's training state fit the accelerators a job would hold?

Training a transformer with mixed-precision Adam keeps 16 bytes per parameter: 16-bit weights (2)
and gradients (2), and FP32 master weights, first and second moments (12) (Rajbhandari et al., ZeRO,
SC 2020, section 3.1). dcsim assumes the most memory-frugal common layout, that state fully sharded
over the job's accelerators (ZeRO-3 / FSDP), and ignores activations, so a pair it calls infeasible
cannot be trained that way; one it calls feasible may still need activation checkpointing. Only
models with a parameter count (the catalog's LLMs, llm-<N>b) are checked: the measured networks
(Gavel, Pollux) ran on the accelerators they were measured on, and no parameter count is kept.

Serving replicas are checked where their shapes are built (build/serving.py): weights plus at least
one token of KV cache must fit the memory of the replica's tensor-parallel group.
"""

from __future__ import annotations

from dcsim.catalog import AcceleratorSpec, ModelSpec

TRAINING_BYTES_PER_PARAM = 16.0  # mixed-precision Adam: 2 + 2 + 4 + 4 + 4


def training_state_bytes(model: ModelSpec) -> float | None:
    """Bytes of weights, gradients and optimizer state; None for a model without a parameter count."""
    return None if model.params is None else TRAINING_BYTES_PER_PARAM * model.params


def training_memory_problem(model: ModelSpec, accelerator: AcceleratorSpec, count: int) -> str | None:
    """Why `count` accelerators cannot hold the model's training state, or None when they can."""
    state = training_state_bytes(model)
    if state is None:
        return None
    memory = accelerator.memory_bytes.value * count
    if state <= memory:
        return None
    return (f"{model.name}'s weights, gradients and Adam state ({state / 1e9:.0f} GB even if fully sharded) "
            f"exceed the memory of {count} x {accelerator.name} ({memory / 1e9:.0f} GB)")


def smallest_feasible_count(model: ModelSpec, accelerator: AcceleratorSpec) -> int:
    """Fewest accelerators whose memory holds the training state (1 for a model without a count)."""
    state = training_state_bytes(model)
    if state is None:
        return 1
    return max(1, int(-(-state // accelerator.memory_bytes.value)))
