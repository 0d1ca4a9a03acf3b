"""Where a sweep's tasks run: in this process, in local worker processes, or on a Dask cluster.

Each backend hands every record back as soon as its run finishes (in finishing order), so the store can
append it at once. All run the same function (task.run_task) on the same plain-data tasks, hence the
same records. Dask is imported only when asked for.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from dcsim.comparison import _die_with_parent, usable_workers
from dcsim.errors import DcsimError
from dcsim.sweep.points import Task
from dcsim.sweep.task import Record, run_task, worker_version
from dcsim.version import __version__

OnRecord = Callable[[Record], None]


class Backend(Protocol):
    description: str

    def execute(self, tasks: Sequence[Task], on_record: OnRecord) -> None: ...

    def close(self) -> None: ...


class InProcess:
    description = "1 process"

    def execute(self, tasks: Sequence[Task], on_record: OnRecord) -> None:
        for task in tasks:
            on_record(run_task(task))

    def close(self) -> None:
        pass


class LocalProcesses:
    """A pool of this process's own children, which die with it (even when it is SIGKILLed)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} local worker processes"

    def execute(self, tasks: Sequence[Task], on_record: OnRecord) -> None:
        # fork on Linux (policies registered at run time stay visible), spawn elsewhere; as in compare.
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context, initializer=_die_with_parent,
                                   initargs=(os.getpid(),))
        try:
            # At most two tasks queued per worker: a Ctrl-C or a kill leaves little started for nothing.
            pending: set[Future[Record]] = set()
            queue = list(reversed(tasks))
            while queue or pending:
                while queue and len(pending) < 2 * self.workers:
                    pending.add(pool.submit(run_task, queue.pop()))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_record(future.result())
        except BaseException:  # an error or Ctrl-C: stop now; what finished is stored already
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()

    def close(self) -> None:
        pass


class DaskBackend:
    """Tasks sent to a Dask cluster: a LocalCluster started here, or a scheduler at tcp://HOST:PORT."""

    def __init__(self, address: str, workers: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise DcsimError("--dask needs the dask and distributed packages: pip install 'dcsim[dask]'") from None
        self.cluster: Any = None
        if address == "local":
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client: Any = Client(self.cluster)
            self.description = f"a Dask LocalCluster of {workers} workers"
        else:
            if not re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d{1,5}", address):
                raise DcsimError(f"--dask: expected local or tcp://HOST:PORT, got {address!r}")
            try:
                self.client = Client(address, timeout="5s")
            except (OSError, TimeoutError) as exc:
                raise DcsimError(f"--dask {address}: cannot reach a Dask scheduler there "
                                 f"({type(exc).__name__}); is it running?") from None
            self.description = f"the Dask cluster at {address}"
        self._check_workers()

    def _check_workers(self) -> None:
        """Every worker must import the same dcsim, or its runs would carry another version's keys."""
        versions = self.client.run(worker_version)
        if not versions:
            self.close()
            raise DcsimError("--dask: the scheduler has no workers; start some with `dask worker ADDRESS`")
        other = {worker: version for worker, version in versions.items() if version != __version__}
        if other:
            self.close()
            worker, version = next(iter(other.items()))
            raise DcsimError(f"--dask: worker {worker} runs dcsim {version}, this is {__version__}; "
                             "install the same dcsim on every worker")

    def execute(self, tasks: Sequence[Task], on_record: OnRecord) -> None:
        from distributed import as_completed

        futures = [self.client.submit(run_task, task, key=f"dcsim-{task.key}-{os.getpid()}", pure=False)
                   for task in tasks]
        by_future = dict(zip(futures, tasks, strict=True))
        try:
            for future in as_completed(futures):
                try:
                    record = future.result()
                except Exception as exc:  # the worker died (KilledWorker) or could not run it
                    task = by_future[future]
                    record = {"key": task.key, "point": task.point, "seed": task.seed, "version": __version__,
                              "status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500], "metrics": {},
                              "wall_s": 0.0}
                on_record(record)
        except BaseException:
            self.client.cancel(futures)
            raise

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_backend(workers: int, dask: str | None, tasks: int) -> Backend:
    if workers < 1:
        raise DcsimError(f"--workers: expected a number >= 1, got {workers}")
    if dask is not None:
        return DaskBackend(dask, workers)
    count = usable_workers(workers, tasks)
    return InProcess() if count <= 1 else LocalProcesses(count)
