"""Passive simulation state: cluster, nodes and jobs. No time, no policies, no I/O."""

from dcsim.model.cluster import Cluster, Node
from dcsim.model.jobs import Job, JobState
from dcsim.model.power import PowerCoefficients

__all__ = ["Cluster", "Job", "JobState", "Node", "PowerCoefficients"]
