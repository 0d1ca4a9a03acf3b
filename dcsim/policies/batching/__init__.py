"""Replica schedulers: how a replica forms each iteration's batch (family `replica_scheduler`)."""

from dcsim.policies.batching import chunked_prefill, continuous, static  # noqa: F401
