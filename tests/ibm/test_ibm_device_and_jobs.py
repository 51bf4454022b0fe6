"""What IBM's client needs beyond sessions: device descriptions, job records, the executor, the instance look-up.

Spoken raw to the combined ASGI app, in memory, and read back with qiskit-ibm-runtime's own
decoders (properties, configuration, ``Target``, executor params and results), so that each
test checks what the client will make of the answer. qiskit-ibm-runtime's integration suite
(``make ibm-suite``) runs the real client against a real server for the same behaviours.
"""

from __future__ import annotations

import json
from typing import Any

import dateutil.parser
import numpy as np
import pytest
import qiskit
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder
from qiskit_ibm_runtime.decoders.executor.decoder import ExecutorResultDecoder
from qiskit_ibm_runtime.options_models import ExecutorOptions
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from qiskit_ibm_runtime.quantum_program.params_converters import QUANTUM_PROGRAM_PARAMS_CONVERTERS
from qiskit_ibm_runtime.utils.backend_converter import convert_to_target
from qiskit_ibm_runtime.utils.backend_decoder import configuration_from_server_data, properties_from_server_data
from qiskit_ibm_runtime.utils.validations import validate_isa_circuits
from trio.abc import Clock

import qmux
from qmux.backends import LocalBackend
from qmux.backends._device import DeviceConfig, coupled_pairs
from qmux.ibm._instance import INSTANCE, PLAN_ID

from .test_ibm_api import API, bell, client, ended, error_of, ibm, state_of

#: a 12-qubit QPU on IBM's heavy-hex lattice (one hexagonal cell: a ring of 12), fast and seeded
DEVICE = DeviceConfig(num_qubits=12, coupling_map="heavy_hex", fractional_gates=False, interactive_ttl=10.0)


#: simulate inline, never on a thread: on the virtual clock a thread's work looks like idle time
INLINE = 60.0


def devices() -> list[qmux.Backend]:
    return [
        LocalBackend("ibm_dev", DEVICE, seed=7, inline_seconds=INLINE),
        LocalBackend(
            "mock_dev", DeviceConfig(num_qubits=12, coupling_map="heavy_hex", mock=True), seed=7, inline_seconds=INLINE
        ),
        LocalBackend(
            "heron",
            DeviceConfig(num_qubits=12, coupling_map="ring", fractional_gates=True),
            seed=7,
            inline_seconds=INLINE,
        ),
    ]


async def run(http: Any, program_id: str, params: Any, backend: str = "ibm_dev", **body: Any) -> str:
    payload = json.dumps({"program_id": program_id, "params": params, "backend": backend, **body}, cls=RuntimeEncoder)
    response = await http.post(f"{API}/jobs", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id


async def target_of(http: Any, backend: str = "ibm_dev") -> Any:
    configuration = configuration_from_server_data((await http.get(f"{API}/backends/{backend}/configuration")).json())
    properties = properties_from_server_data((await http.get(f"{API}/backends/{backend}/properties")).json())
    return convert_to_target(configuration, properties)


def sampler_params(circuit: QuantumCircuit, shots: int = 100) -> dict[str, Any]:
    return {"pubs": [(circuit, None, shots)], "version": 2, "support_qiskit": True}


# -- the device: calibration, Target, coupling map --------------------------------------------------


async def test_properties_are_a_consistent_calibration_the_client_reads_and_caches() -> None:
    async with ibm(devices()) as (_, app), client(app) as http:
        first = await http.get(f"{API}/backends/ibm_dev/properties")
        again = await http.get(f"{API}/backends/ibm_dev/properties")
        assert first.content == again.content  # the same calibration on every call: the client may cache it
        properties = properties_from_server_data(first.json())
        assert len(properties.qubits) == 12
        for qubit in range(12):
            t1, t2 = properties.t1(qubit), properties.t2(qubit)
            assert 100e-6 < t1 < 400e-6 and 0 < t2 <= 2 * t1
            assert 0 < properties.readout_error(qubit) < 0.05
        # every 2-qubit gate on a coupled pair shares that pair's error; rz is virtual: no error, no time
        assert properties.gate_error("cz", (0, 1)) == properties.gate_error("cx", (1, 0)) > 0
        assert properties.gate_error("rz", 3) == 0 and properties.gate_length("rz", 3) == 0
        other = properties_from_server_data((await http.get(f"{API}/backends/heron/properties")).json())
        assert other.t1(0) != properties.t1(0)  # another device, other figures


def strings_outside_dates(document: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (key path, string) of `document` but its date fields and the names of dated values.

    A dated value (``{"date", "name", "unit", "value"}``) is named as IBM names it ("T1", "T2",
    which a date parser reads as times); the client's suite lets them be.
    """
    if isinstance(document, dict):
        skipped = {"date", "last_update_date", *(("name",) if "date" in document else ())}
        return [
            found
            for name, value in document.items()
            if name not in skipped
            for found in strings_outside_dates(value, f"{key}.{name}".lstrip("."))
        ]
    if isinstance(document, list):
        return [found for item in document for found in strings_outside_dates(item, key)]
    return [(key, document)] if isinstance(document, str) else []


async def test_properties_hold_dates_only_in_their_date_fields() -> None:
    """A reader that deserializes dates by their look (as the client's suite checks) finds no other."""
    async with ibm(devices()) as (_, app), client(app) as http:
        for backend in ("ibm_dev", "heron"):
            document = (await http.get(f"{API}/backends/{backend}/properties")).json()
            strings = strings_outside_dates(document)
            assert ("gates.gate", "t") in strings  # all of qiskit's gates are calibrated, t among them
            look_like_dates = []
            for key, text in strings:
                try:
                    dateutil.parser.parse(text)
                except ValueError:
                    continue
                look_like_dates.append((key, text))
            assert look_like_dates == []


async def test_the_target_is_per_qubit_with_the_devices_coupling_map_and_reset() -> None:
    async with ibm(devices()) as (_, app), client(app) as http:
        target = await target_of(http)
        assert set(target.build_coupling_map().get_edges()) == set(coupled_pairs("heavy_hex", 12))
        assert "reset" in target and "measure" in target
        assert target.qubit_properties[5].t1 > 0
        validate_isa_circuits([bell()], target)  # (0, 1) is coupled: an untranspiled Bell circuit is ISA
        far = QuantumCircuit(12)
        far.cx(0, 2)
        with pytest.raises(Exception, match=r"not supported|ISA"):
            validate_isa_circuits([far], target)
        laid_out = generate_preset_pass_manager(target=target, optimization_level=1).run(far)
        validate_isa_circuits([laid_out], target)  # qiskit's transpiler routes it on the device


async def test_the_simulation_honours_the_coupling_map_as_the_device_would(autojump_clock: Clock) -> None:
    async with ibm(devices()) as (local, app), client(app) as http:
        far = QuantumCircuit(12)
        far.h(0)
        far.cx(0, 2)
        far.measure_all()
        refused = await run(http, "sampler", sampler_params(far))
        await ended(local, refused)
        state = await state_of(http, refused)
        assert state["status"] == "Failed"
        assert "applies cx to qubits (0, 2), which are not coupled on backend 'ibm_dev'" in state["reason"]
        assert "heavy_hex" in state["reason"] and "generate_preset_pass_manager" in state["reason"]

        transpiled = generate_preset_pass_manager(target=await target_of(http), optimization_level=1).run(far)
        fine = await run(http, "sampler", sampler_params(transpiled))
        await ended(local, fine)
        assert (await state_of(http, fine))["status"] == "Completed"
        result = json.loads((await http.get(f"{API}/jobs/{fine}/results")).text, cls=RuntimeDecoder)
        assert sum(result[0].data.meas.get_counts().values()) == 100


async def test_fractional_gates_are_listed_only_by_devices_that_offer_them() -> None:
    async with ibm(devices()) as (_, app), client(app) as http:
        plain = (await http.get(f"{API}/backends/ibm_dev/configuration")).json()["basis_gates"]
        heron = (await http.get(f"{API}/backends/heron/configuration")).json()["basis_gates"]
        assert {"rzz", "rx"} <= set(heron) and not {"rzz", "rx", "ry"} & set(plain)
        assert {"rz", "sx", "cz", "cx", "h"} <= set(plain)  # virtual rz is not fractional


async def test_a_calibration_id_that_is_not_the_devices_is_refused_by_name() -> None:
    async with ibm(devices()) as (_, app), client(app) as http:
        current = (await http.get(f"{API}/backends/ibm_dev/configuration")).json()["calibration_id"]
        assert (await http.get(f"{API}/backends/ibm_dev/configuration", params={"calibration_id": current})).is_success
        wrong = await http.get(f"{API}/backends/ibm_dev/configuration", params={"calibration_id": "invalid_id"})
        assert wrong.status_code == 404
        assert "no calibration 'invalid_id'" in error_of(wrong)["message"] and current in error_of(wrong)["message"]
        payload = {"program_id": "sampler", "params": {}, "backend": "ibm_dev", "calibration_id": "invalid_id"}
        assert (await http.post(f"{API}/jobs", json=payload)).status_code == 422


async def test_mock_devices_are_marked_and_their_jobs_listed_only_on_request(autojump_clock: Clock) -> None:
    async with ibm(devices()) as (local, app), client(app) as http:
        listed = {d["name"]: d for d in (await http.get(f"{API}/backends")).json()["devices"]}
        assert listed["mock_dev"]["class"] == "mock" and listed["ibm_dev"]["class"] == "qpu"
        assert listed["ibm_dev"]["physical_qubits"] == 12
        real = await run(http, "sampler", sampler_params(bell()))
        mock = await run(http, "sampler", sampler_params(bell()), backend="mock_dev")
        await ended(local, mock)
        plain = [j["id"] for j in (await http.get(f"{API}/jobs")).json()["jobs"]]
        everything = [j["id"] for j in (await http.get(f"{API}/jobs", params={"include_mocks": "true"})).json()["jobs"]]
        assert plain == [real] and everything == [mock, real]


# -- job records: params, private, metrics, tags, delete ---------------------------------------------


async def test_job_params_are_the_inputs_as_submitted_unless_excluded(autojump_clock: Clock) -> None:
    async with ibm(devices()) as (local, app), client(app) as http:
        job_id = await run(http, "sampler", sampler_params(bell(), shots=1))
        with_params = (await http.get(f"{API}/jobs/{job_id}")).text
        params = json.loads(with_params, cls=RuntimeDecoder)["params"]
        assert params["pubs"][0][0] == bell() and params["pubs"][0][2] == 1
        assert "params" not in (await http.get(f"{API}/jobs/{job_id}", params={"exclude_params": "true"})).json()
        await ended(local, job_id)


async def test_a_private_jobs_params_are_not_kept_and_its_result_is_read_once(autojump_clock: Clock) -> None:
    async with ibm(devices()) as (local, app), client(app) as http:
        job_id = await run(http, "sampler", sampler_params(bell()), private=True)
        document = (await http.get(f"{API}/jobs/{job_id}")).json()
        assert document["private"] is True and "params" not in document
        await ended(local, job_id)
        first = await http.get(f"{API}/jobs/{job_id}/results")
        assert first.status_code == 200 and json.loads(first.text, cls=RuntimeDecoder)[0].data.meas
        second = await http.get(f"{API}/jobs/{job_id}/results")
        assert second.status_code == 204 and second.content == b""


async def test_metrics_are_the_cores_with_ibms_usage_fields(autojump_clock: Clock) -> None:
    """SPEC U1 through IBM's route: timestamps, usage, queue_seconds, attempts; the client's usage()."""
    async with (
        ibm([LocalBackend("slow", DEVICE, job_seconds=2.0, inline_seconds=INLINE)]) as (local, app),
        client(app) as http,
    ):
        job_id = await run(http, "sampler", sampler_params(bell()), backend="slow")
        pending = (await http.get(f"{API}/jobs/{job_id}/metrics")).json()
        assert pending["usage"]["status"] == "pending"
        await ended(local, job_id)
        metrics = (await http.get(f"{API}/jobs/{job_id}/metrics")).json()
        assert metrics["attempts"] == 1 and metrics["timestamps"]["finished"] is not None
        assert metrics["usage"]["status"] == "complete"
        assert metrics["usage"]["qpu_charge_time_seconds"] == metrics["usage"]["quantum_seconds"] == 2.0
        # what ran the job, as IBM names its runtime's packages: this server and its qiskit
        assert metrics["qiskit_version"] == f"qmux-{qmux.__version__},qiskit-{qiskit.__version__}"


async def test_tags_are_replaced_and_filter_the_listing(autojump_clock: Clock) -> None:
    async with ibm(devices()) as (local, app), client(app) as http:
        job_id = await run(http, "sampler", sampler_params(bell()), tags=["first"])
        replaced = await http.put(f"{API}/jobs/{job_id}/tags", json={"tags": ["second", "third", "second"]})
        assert replaced.status_code == 204
        assert (await http.get(f"{API}/jobs/{job_id}")).json()["tags"] == ["second", "third"]
        found = (await http.get(f"{API}/jobs", params={"tags": ["third"]})).json()["jobs"]
        assert [j["id"] for j in found] == [job_id]
        assert (await http.get(f"{API}/jobs", params={"tags": ["first"]})).json()["jobs"] == []
        await ended(local, job_id)


async def test_a_deleted_job_is_cancelled_if_queued_and_gone_from_ibms_api(autojump_clock: Clock) -> None:
    async with (
        ibm([LocalBackend("slow", DEVICE, job_seconds=5.0, inline_seconds=INLINE)]) as (local, app),
        client(app) as http,
    ):
        running = await run(http, "sampler", sampler_params(bell()), backend="slow")
        queued = await run(http, "sampler", sampler_params(bell()), backend="slow")
        assert (await http.delete(f"{API}/jobs/{queued}")).status_code == 204
        assert await (await local.job(queued)).status() == "CANCELLED"  # SPEC J2: it never runs
        for path in (f"{API}/jobs/{queued}", f"{API}/jobs/{queued}/results", f"{API}/jobs/{queued}/metrics"):
            assert (await http.get(path)).status_code == 404
        assert [j["id"] for j in (await http.get(f"{API}/jobs")).json()["jobs"]] == [running]
        await ended(local, running)


# -- the executor program ---------------------------------------------------------------------------


def executor_params(program: QuantumProgram) -> dict[str, Any]:
    """What ``Executor.run`` sends: the client's own v2.0 encoder, as JSON."""
    encoded: dict[str, Any] = (
        QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"].encoder(program, ExecutorOptions()).model_dump(mode="json")
    )
    return encoded


async def test_the_executor_samples_every_bound_circuit_of_a_quantum_program(autojump_clock: Clock) -> None:
    async with ibm(devices()) as (local, app), client(app) as http:
        target = await target_of(http)
        circuit = QuantumCircuit(2)
        theta = Parameter("theta")
        circuit.rx(theta, 0)
        circuit.cx(0, 1)
        circuit.measure_all()
        isa = generate_preset_pass_manager(target=target, optimization_level=1).run(circuit)
        program = QuantumProgram(shots=50)
        program.append_circuit_item(isa, circuit_arguments=np.array([[0.0], [np.pi]]))
        job_id = await run(http, "executor", executor_params(program))
        await ended(local, job_id)
        assert (await state_of(http, job_id))["status"] == "Completed", await state_of(http, job_id)
        result = ExecutorResultDecoder.decode((await http.get(f"{API}/jobs/{job_id}/results")).text)
        bits = result[0]["meas"]
        assert bits.shape == (2, 50, 2) and bits.dtype == bool
        assert not bits[0].any()  # rx(0): always 00
        assert bits[1].all()  # rx(pi) then cx: always 11


async def test_an_executor_job_that_is_not_a_quantum_program_fails_alone_with_why(autojump_clock: Clock) -> None:
    async with ibm(devices()) as (local, app), client(app) as http:
        job_id = await run(http, "executor", {"schema_version": "v9.9"})
        await ended(local, job_id)
        state = await state_of(http, job_id)
        assert state["status"] == "Failed" and "schema_version='v9.9' are not supported" in state["reason"]


# -- IBM Cloud's instance look-up -----------------------------------------------------------------


async def test_the_instance_search_and_catalog_answer_with_this_servers_one_instance() -> None:
    async with ibm(devices()) as (_, app), client(app) as http:
        found = await http.post("/cloud/global-search/v3/resources/search", json={"query": "service_name:x"})
        assert found.status_code == 200
        (item,) = found.json()["items"]
        assert item["crn"] == INSTANCE and item["doc"]["extensions"] and not found.json()["search_cursor"]
        entry = (await http.get(f"/cloud/global-catalog/{item['service_plan_unique_id']}")).json()
        assert entry["overview_ui"]["en"]["display_name"] == "Internal" and entry["metadata"]["pricing"]["type"]
        assert (await http.get("/cloud/global-catalog/other-plan")).status_code == 404
        assert item["service_plan_unique_id"] == PLAN_ID
    async with ibm(devices()) as (_, app), client(app, authorization=None) as anonymous:
        assert (await anonymous.post("/cloud/global-search/v3/resources/search", json={})).status_code == 401
