"""Passive simulation state: cluster, nodes, jobs and inference requests. No time, no policies, no I/O."""

from dcsim.model.cluster import Cluster, Node
from dcsim.model.jobs import Job, JobState
from dcsim.model.power import PowerCoefficients
from dcsim.model.requests import Request, RequestState

__all__ = ["Cluster", "Job", "JobState", "Node", "PowerCoefficients", "Request", "RequestState"]
