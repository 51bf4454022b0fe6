"""`Estimator`: expectation values of observables on real circuits, as qiskit's EstimatorV2 (SPEC P2)."""

from __future__ import annotations

from typing import final

from .._core import Job
from ._mode import Mode, resolve_mode, submit
from ._qiskit import require_qiskit

__all__ = ["Estimator"]


@final
class Estimator:
    """Estimates expectation values on a backend, in a session or in job mode.

    Modes as for `Sampler` (SPEC P3). ``await (await estimator.run([(circuit, observable)])).result()``
    is qiskit's `PrimitiveResult`: ``result[0].data.evs``, ``result[0].data.stds`` and
    ``result[0].metadata``.

    `default_precision` (the target standard error of each value) applies to PUBs and runs
    that name none (else the backend's default, 1/64 as on IBM's QPUs); `seed` makes a
    simulated backend's estimates reproducible.
    """

    __slots__ = ("_default_precision", "_mode", "_seed")

    def __init__(
        self, mode: Mode | None = None, *, default_precision: float | None = None, seed: int | None = None
    ) -> None:
        require_qiskit("qmux.Estimator")
        from ._pubs import check_precision, check_seed

        self._mode = resolve_mode(mode, "Estimator")
        self._default_precision = check_precision(default_precision, "default_precision")
        self._seed = check_seed(seed, "seed")

    @property
    def mode(self) -> Mode:
        """The session, or the backend (job mode), this estimator submits to."""
        return self._mode

    @property
    def default_precision(self) -> float | None:
        return self._default_precision

    async def run(self, pubs: object, *, precision: float | None = None) -> Job:
        """Submit one ``"estimator"`` job of `pubs`: ``[(circuit, observables), (circuit, observables, values), ...]``.

        Malformed PUBs (wrong length, observables of the wrong width, negative precision) are
        refused here with an `InvalidInputError`; nothing is submitted.
        """
        from ._pubs import estimator_inputs

        chosen = self._default_precision if precision is None else precision
        return await submit(self._mode, "estimator", estimator_inputs(pubs, precision=chosen, seed=self._seed))

    def __repr__(self) -> str:
        return f"<qmux.Estimator mode={self._mode!r}>"
