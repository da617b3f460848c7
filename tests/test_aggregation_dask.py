"""Spec 13.1 and 13.3 on a Dask LocalCluster of worker processes (specs/aggregation.md).

One cluster of two single-threaded worker processes serves the whole module
(starting one costs seconds).  A worker process is killed (``os._exit``) in
the middle of a round's tree phase; the round is then retried as spec 13.3
says, or abandoned with ``RecoveryError`` when no retry is left.  The tasks'
callables are classes of this module: the workers import it by name (Dask
starts them with the parent's ``sys.path``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_aggregation_executor import played, replay  # noqa: F401 - a module-scoped fixture, shared

from protocols.aggregation.executor import Executor, InProcess, Outcome
from protocols.aggregation.partition import SubtreeJob
from protocols.errors import RecoveryError

pytest.importorskip("distributed")

from protocols.aggregation.executor import DaskExecutor  # noqa: E402 - after the optional import


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes for this module (``processes=True``)."""
    with DaskExecutor(workers=2, processes=True) as ex:
        yield ex


def _two_workers(ex: DaskExecutor) -> None:
    ex.client.wait_for_workers(2, timeout=60)


@dataclass(frozen=True)
class KillsWorker:
    """Runs ``fn``; the first time it gets the subtree ``node`` (or every time, with ``marker``
    None), it kills its worker process first."""

    fn: Callable[[Any], Any]
    node: str
    marker: str | None

    def __call__(self, item: Any) -> Any:
        if isinstance(item, SubtreeJob) and item.node == self.node:
            if self.marker is None:
                os._exit(3)
            if not os.path.exists(self.marker):
                Path(self.marker).write_text(str(os.getpid()))
                os._exit(3)
        return self.fn(item)


@dataclass
class Killing:
    """An executor that runs every task of ``inner`` through :class:`KillsWorker`."""

    inner: DaskExecutor
    node: str
    marker: str | None
    name: str = "dask-killing"
    workers: int = 2

    def attempt(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        return self.inner.attempt(KillsWorker(fn, self.node, self.marker), items)

    def close(self) -> None:
        return None


def _first_subtree(played) -> str:
    hood = played[0].hood
    return hood.children(hood.root)[0]


def test_same_seed_same_bytes_on_dask_worker_processes(played, cluster):
    """Spec 13.1: the round on worker processes gives the in-process round's sums and bytes."""
    _two_workers(cluster)
    with InProcess() as ex:
        expected = replay(played, ex)[0]
    got = replay(played, cluster, depth=2)[0]
    assert got.result == expected.result == played[1].result
    assert got.sent == expected.sent
    assert got.transcript_digest() == expected.transcript_digest()


def test_a_dask_worker_killed_mid_round_is_retried_with_the_same_result(played, cluster, tmp_path):
    """Spec 13.3 item 3: a worker process dies under one subtree's task; the task runs again and the
    round releases the same sums and sends the same bytes."""
    _two_workers(cluster)
    marker = tmp_path / "killed"
    executor: Executor = Killing(cluster, _first_subtree(played), str(marker))
    got, _ = replay(played, executor, retries=1)
    assert marker.exists()
    with InProcess() as ex:
        expected = replay(played, ex)[0]
    assert got.result == expected.result
    assert got.transcript_digest() == expected.transcript_digest()


def test_a_dask_worker_killed_without_retries_abandons_the_round(played, cluster, tmp_path):
    """Spec 13.3 item 3: with no retry left, the round is abandoned with RecoveryError naming the
    subtree.  The task would succeed on a second run (it kills only once), so this also shows that
    the LocalCluster's scheduler did not re-run it on its own (allowed_failures=0)."""
    _two_workers(cluster)
    node = _first_subtree(played)
    marker = tmp_path / "killed"
    with pytest.raises(RecoveryError, match=f"subtree {node}.*abandoned") as info:
        replay(played, Killing(cluster, node, str(marker)), retries=0)
    assert type(info.value) is RecoveryError
    assert marker.exists()


def test_a_dask_worker_that_keeps_dying_abandons_the_round(played, cluster):
    """Spec 13.3 item 3: a task that kills every worker it runs on is abandoned after its retry."""
    _two_workers(cluster)
    node = _first_subtree(played)
    with pytest.raises(RecoveryError, match=f"subtree {node} failed 2 times"):
        replay(played, Killing(cluster, node, None), retries=1)
