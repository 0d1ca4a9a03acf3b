"""Autoscalers: how many replicas a service should run, decided every `interval` seconds."""

from dcsim.policies.autoscaling import fixed, queue_target, utilization_target  # noqa: F401  (registers them)
