"""Workload sources: synthetic generators and CSV trace replay, for training jobs and inference requests."""

from dcsim.workload.common import WorkloadReport
from dcsim.workload.requests import build_requests
from dcsim.workload.synthetic import generate
from dcsim.workload.trace import read_trace

__all__ = ["WorkloadReport", "build_requests", "generate", "read_trace"]
