"""Training workload sources: synthetic generators and CSV trace replay."""

from dcsim.workload.common import WorkloadReport
from dcsim.workload.synthetic import generate
from dcsim.workload.trace import read_trace

__all__ = ["WorkloadReport", "generate", "read_trace"]
