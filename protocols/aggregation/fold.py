"""Spec 7.1 step 3 and 7.3: the product of the inputs' ciphertexts, folded while they are read.

:class:`Fold` multiplies the ciphertexts mod n^2 in the order given until
it is told how many will come; with at least :data:`PIPELINE_MIN` of them
and two CPUs, a helper thread multiplies chunks of :data:`CHUNK` values while
the caller's thread is still reading the next inputs (gmpy2 releases the
interpreter lock inside its arithmetic when the thread's context allows it),
and the caller's thread joins in once it has read the last one.
Multiplication mod n^2 is associative and commutative, so the result is the
same integer as the sequential product (``paillier.product_mod``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

import gmpy2
from gmpy2 import mpz

from protocols.primitives import opcount
from protocols.primitives.numtheory import count_modmul
from protocols.schemes.paillier import _available_cpus, product_mod

PIPELINE_MIN = 256
"""Fewest inputs for which the fold uses a helper thread (below it the thread costs more than it saves)."""
CHUNK = 32
"""Values handed to the helper at a time."""


def _multiply(values: Sequence[mpz], modulus: mpz) -> mpz:
    with gmpy2.context(allow_release_gil=True):  # integer arithmetic only: no other setting matters
        acc = mpz(1)
        for value in values:
            acc = acc * value % modulus
    return acc


class Fold:
    """The running product of ``expected`` ciphertexts mod ``modulus`` (spec 7.1 step 3).

    Call :meth:`add` once per value, then :meth:`result` once.  Counted as
    ``expected - 1`` multiplications mod n^2, as ``product_mod`` counts them.
    """

    def __init__(self, modulus: mpz, expected: int) -> None:
        self.modulus = mpz(modulus)
        self.expected = expected
        self.pending: list[mpz] = []
        self.values: list[mpz] = []
        self.helper: threading.Thread | None = None
        self.queue: queue.SimpleQueue | None = None
        self.partials: list = []
        if expected >= PIPELINE_MIN and _available_cpus() >= 2:
            self.queue = queue.SimpleQueue()
            self.helper = threading.Thread(target=self._work, args=(self.queue,), name="aggregation-fold",
                                           daemon=True)
            self.helper.start()

    def _work(self, chunks: queue.SimpleQueue) -> None:
        try:
            acc = mpz(1)
            while True:
                chunk = chunks.get()
                if chunk is None:
                    break
                acc = acc * _multiply(chunk, self.modulus) % self.modulus
            self.partials.append(acc)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in result()
            self.partials.append(exc)

    def add(self, value: mpz) -> None:
        if self.queue is None:
            self.values.append(value)
            return
        self.pending.append(value)
        if len(self.pending) == CHUNK:
            self.queue.put(self.pending)
            self.pending = []

    def stop(self) -> None:
        """End the helper thread without a result (the caller is raising)."""
        if self.queue is not None and self.helper is not None:
            self.queue.put(None)
            self.helper.join()
            self.queue = None

    def result(self) -> mpz:
        if self.queue is None or self.helper is None:
            return product_mod(self.values, self.modulus)
        if opcount.active():
            count_modmul(self.modulus, max(0, self.expected - 1))
        mine = _multiply(self.pending, self.modulus)
        while True:  # help with the chunks the helper has not taken yet
            try:
                chunk = self.queue.get_nowait()
            except queue.Empty:
                break
            mine = mine * _multiply(chunk, self.modulus) % self.modulus
        self.queue.put(None)
        self.helper.join()
        self.queue = None
        other = self.partials[0]
        if isinstance(other, BaseException):
            raise other
        return mine * other % self.modulus
