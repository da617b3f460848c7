"""Spec 13.1-13.3: executors -- the concentrators' and the utility's work run as independent tasks.

A task is a pure function of picklable inputs (a subtree's reports, a
neighbourhood's messages): whichever executor runs it, and however often it
is retried, it returns the same bytes.  Three executors share one contract,
:meth:`attempt`: run ``fn`` over ``items`` and return one :class:`Outcome`
per item, in order.

- :class:`InProcess` -- the caller's thread; the default, and what tests use.
- :class:`ProcessPool` -- ``concurrent.futures.ProcessPoolExecutor`` on this machine.
- :class:`DaskExecutor` -- ``dask.distributed``: a ``LocalCluster`` by default,
  or any running scheduler by address (the optional extra ``dask``).

:func:`run_tasks` adds the failure rule of spec 13.3: a protocol error
(:class:`~protocols.errors.UsappError`) raised by a task is the round's
answer and propagates at once; any other failure (a worker that died, a
lost connection, a task that raised something else) is retried up to
``retries`` times, and then the round is abandoned with ``RecoveryError``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocols.errors import ParameterError, RecoveryError, UsappError

MAX_WORKERS = 1024
"""Most workers an executor of this module starts on its own (spec 13.1)."""
MAX_RETRIES = 8
"""Most retries :func:`run_tasks` accepts per failed task (spec 13.3)."""


@dataclass(frozen=True)
class Outcome:
    """One task's result, or the failure that is not a protocol error (spec 13.3)."""

    value: Any = None
    failure: str | None = None


class Executor(Protocol):
    """What :func:`run_tasks` needs of an executor."""

    name: str
    workers: int

    def attempt(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        """Run ``fn`` on every item; a UsappError propagates, any other failure becomes an Outcome."""
        ...

    def close(self) -> None:
        ...


def _check_workers(workers: object) -> int:
    if type(workers) is not int or not 1 <= workers <= MAX_WORKERS:
        raise ParameterError(f"workers must be an integer in [1, {MAX_WORKERS}]")
    return workers


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _Closing:
    """Context-manager support: ``with ProcessPool(2) as ex: ...`` closes the executor."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class InProcess(_Closing):
    """Spec 13.1: every task in the caller's thread, in order."""

    name: str = field(default="inprocess", init=False)
    workers: int = field(default=1, init=False)

    def attempt(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        outcomes = []
        for item in items:
            try:
                outcomes.append(Outcome(fn(item)))
            except UsappError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failure of this task, retried by run_tasks
                outcomes.append(Outcome(failure=_describe(exc)))
        return outcomes

    def close(self) -> None:
        return None


@dataclass
class ProcessPool(_Closing):
    """Spec 13.1: ``workers`` processes of this machine.  A worker that dies breaks
    the pool: every unfinished task of the attempt fails and the next attempt
    starts a fresh pool."""

    workers: int = 2
    name: str = field(default="process", init=False)
    _pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_workers(self.workers)

    def attempt(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        futures = [self._pool.submit(fn, item) for item in items]
        outcomes, broken = [], False
        for future in futures:
            try:
                outcomes.append(Outcome(future.result()))
            except UsappError:
                self.close()
                raise
            except BrokenProcessPool as exc:
                broken = True
                outcomes.append(Outcome(failure=_describe(exc)))
            except Exception as exc:  # noqa: BLE001 - retried by run_tasks
                outcomes.append(Outcome(failure=_describe(exc)))
        if broken:
            self.close()
        return outcomes

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass
class DaskExecutor(_Closing):
    """Spec 13.1: tasks on a ``dask.distributed`` cluster.

    With no ``address``, a ``LocalCluster`` of ``workers`` workers, one thread
    each, in worker processes (``processes=True``) or as threads of this
    process (``processes=False``: starts in well under a second, but the
    workers then share one interpreter lock).  The LocalCluster's scheduler
    re-runs no task itself (``allowed_failures=0``): a task whose worker dies
    fails at once with ``KilledWorker`` and :func:`run_tasks` alone decides
    whether it runs again (spec 13.3).  Its workers run without Dask's
    statistical profiler, whose history grows with a task's running time
    (spec 13.4, memory).  With an ``address``
    (``tcp://host:port``), the running scheduler there, with its own
    ``allowed-failures`` setting; ``workers`` is then only what the figures
    report.  The tasks and their inputs must be importable on the workers
    (the package installed there).
    """

    address: str | None = None
    workers: int = 2
    processes: bool = True
    name: str = field(default="dask", init=False)
    _client: Any = field(default=None, init=False, repr=False)
    _cluster: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_workers(self.workers)
        if self.address is not None and (not isinstance(self.address, str) or len(self.address) > 256):
            raise ParameterError("a Dask scheduler address must be a string of at most 256 characters")
        try:
            distributed = importlib.import_module("distributed")
        except ModuleNotFoundError:
            raise ParameterError("the Dask executor needs the optional extra: pip install 'usapp[dask]'") from None
        if self.address is None:
            dask = importlib.import_module("dask")
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                self._cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                         processes=self.processes, dashboard_address=None,
                                                         scheduler_kwargs={"allowed_failures": 0})
            self._client = distributed.Client(self._cluster)
        else:
            self._client = distributed.Client(self.address)

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (a test closes a worker through it)."""
        return self._client

    def attempt(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        if self._client is None:
            raise ParameterError("this Dask executor is closed")
        futures = self._client.map(fn, list(items), pure=False)
        outcomes = []
        try:
            for future in futures:
                try:
                    outcomes.append(Outcome(future.result()))
                except UsappError:
                    raise
                except Exception as exc:  # noqa: BLE001 - KilledWorker, CommClosedError, ...: retried
                    outcomes.append(Outcome(failure=_describe(exc)))
        finally:
            self._client.cancel(futures)
        return outcomes

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def run_tasks(executor: Executor, fn: Callable[[Any], Any], items: Sequence[Any], *, retries: int = 1,
              labels: Sequence[str] | None = None) -> list[Any]:
    """Spec 13.3: every task's value, in order; failed tasks are run again up to ``retries`` times.

    A UsappError from a task propagates unchanged.  A task still failing
    after its retries abandons the round: ``RecoveryError`` naming it (by
    ``labels``, else its index) and the last failure.
    """
    if type(retries) is not int or not 0 <= retries <= MAX_RETRIES:
        raise ParameterError(f"retries must be an integer in [0, {MAX_RETRIES}]")
    items = list(items)
    names = [str(i) for i in range(len(items))] if labels is None else list(labels)
    if len(names) != len(items):
        raise ParameterError("one label per task")
    values: list[Any] = [None] * len(items)
    pending = list(range(len(items)))
    failures: dict[int, str] = {}
    for _ in range(retries + 1):
        if not pending:
            break
        outcomes = executor.attempt(fn, [items[i] for i in pending])
        still = []
        for index, outcome in zip(pending, outcomes):
            if outcome.failure is None:
                values[index] = outcome.value
            else:
                failures[index] = outcome.failure
                still.append(index)
        pending = still
    if pending:
        first = pending[0]
        raise RecoveryError(f"task {names[first]} failed {retries + 1} times ({failures[first]}); "
                            f"{len(pending)} task(s) unfinished: the round is abandoned")
    return values


def make_executor(name: str, workers: int = 1, address: str | None = None) -> Executor:
    """An executor by name: ``inprocess``, ``process`` or ``dask`` (spec 13.1)."""
    if name == "inprocess":
        if workers != 1:
            raise ParameterError("the in-process executor has exactly one worker")
        return InProcess()
    if name == "process":
        return ProcessPool(workers)
    if name == "dask":
        return DaskExecutor(address, workers)
    raise ParameterError(f"unknown executor {name!r}: inprocess, process or dask")
