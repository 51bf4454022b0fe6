"""Every public parameter, fuzzed: no crash, no hang, only clear qmux errors (issue: bad input).

Hypothesis throws values of every kind at each entry point of the in-process API; each call
must either work or raise a `qmux.QmuxError` whose message names the parameter. Anything else
(TypeError, KeyError, AttributeError, a hang) is a defect.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import qmux
from qmux.testing import qpu

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["a", "25m", "1h30m", "-5m", "", "0", "dedicated", "batch", "echo"]),
)

CALLS = ["session", "run", "job_mode", "job", "find_session", "backend", "least_busy", "settings", "config", "duration"]


async def _call(which: str, service: qmux.Service, args: list[Any]) -> None:
    match which:
        case "session":
            session = qmux.Session(service=service, backend=args[0], max_time=args[1], mode=args[2])
            await session.close()
        case "run":
            session = qmux.Session(service=service, backend="a")
            await session.run(args[0], args[1], options=args[2])
            await session.cancel()
        case "job_mode":
            await service.submit_job(args[0], args[1], args[2], args[3])
        case "job":
            await service.job(args[0])
        case "find_session":
            await service.session(args[0])
        case "backend":
            service.backend(args[0])
        case "least_busy":
            service.least_busy(operational=args[0], simulator=args[1], min_num_qubits=args[2])
        case "settings":
            qmux.ServiceSettings(idle_open_timeout=args[0], shutdown_grace=args[1], max_mailbox=args[2])
        case "config":
            qmux.BackendConfig(num_qubits=args[0], max_ttl=args[1], interactive_ttl=args[2], job_timeout=args[3])
        case "duration":
            qmux.parse_duration(args[0])


tried = {"inputs": 0, "refused": 0}


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CALLS), st.lists(anything, min_size=4, max_size=4))
def test_every_public_parameter_refuses_bad_input_clearly(which: str, args: list[Any]) -> None:
    async def scenario() -> None:
        with trio.fail_after(10_000):
            async with qmux.open_service([qpu("a")]) as service:
                try:
                    await _call(which, service, args)
                except qmux.QmuxError as exc:
                    tried["refused"] += 1
                    assert str(exc), "an error must say what was wrong"
                tried["inputs"] += 1

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
