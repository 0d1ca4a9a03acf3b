"""Build a runnable Model from a Scenario, one module per subsystem.

model.py wires them together; cluster.py, policies.py, network.py and serving.py build the parts.
"""

from __future__ import annotations

from dcsim.build.model import Model, build_model

__all__ = ["Model", "build_model"]
