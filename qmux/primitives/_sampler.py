"""`Sampler`: counts of real circuits, as qiskit's SamplerV2 gives them (SPEC P1)."""

from __future__ import annotations

from typing import final

from .._core import Job
from ._mode import Mode, resolve_mode, submit
from ._qiskit import require_qiskit

__all__ = ["Sampler"]


@final
class Sampler:
    """Samples circuits on a backend, in a session or in job mode.

    ``Sampler(mode=session)`` runs in that session; ``Sampler(mode=backend)`` in job mode;
    ``Sampler()`` inside ``async with Session(...)`` picks that session up (SPEC P3).
    ``await (await sampler.run([(circuit,)], shots=1024)).result()`` is qiskit's
    `PrimitiveResult`: ``result[0].data.meas.get_counts()``, one `BitArray` per classical
    register, named as the circuit names it.

    `default_shots` applies to PUBs and runs that name none (else the backend's default, 4096);
    `seed` makes a simulated backend's samples reproducible.
    """

    __slots__ = ("_default_shots", "_mode", "_seed")

    def __init__(self, mode: Mode | None = None, *, default_shots: int | None = None, seed: int | None = None) -> None:
        require_qiskit("qmux.Sampler")
        from ._pubs import check_seed, check_shots

        self._mode = resolve_mode(mode, "Sampler")
        self._default_shots = check_shots(default_shots, "default_shots")
        self._seed = check_seed(seed, "seed")

    @property
    def mode(self) -> Mode:
        """The session, or the backend (job mode), this sampler submits to."""
        return self._mode

    @property
    def default_shots(self) -> int | None:
        return self._default_shots

    async def run(self, pubs: object, *, shots: int | None = None) -> Job:
        """Submit one ``"sampler"`` job of `pubs`: ``[(circuit,), (circuit, values), (circuit, values, shots)]``.

        Malformed PUBs are refused here with an `InvalidInputError` naming the PUB and the
        problem; nothing is submitted. A circuit too wide for the backend fails its own job.
        """
        from ._pubs import sampler_inputs

        chosen = self._default_shots if shots is None else shots
        return await submit(self._mode, "sampler", sampler_inputs(pubs, shots=chosen, seed=self._seed))

    def __repr__(self) -> str:
        return f"<qmux.Sampler mode={self._mode!r}>"
