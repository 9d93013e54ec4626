"""The station as an OPC UA server on the loopback, checked with a real asyncua client:
state, recipes, a trigger returning the result id, the last result as variables and as
an event, counters, and who may connect."""

from __future__ import annotations

import asyncio
import math

import pytest
from asyncua import Client, ua

from inspector.line.config import OpcUaConfig
from inspector.line.opcua import NAMESPACE, OpcUaOutput
from tests.line_helpers import LineData, free_port, wait_for


@pytest.fixture
def data(tmp_path):
    return LineData(tmp_path, parts=4)


@pytest.fixture
def served(data):
    started = []

    def start(config: OpcUaConfig | None = None, **options):
        station = data.station(**options).start()
        server = OpcUaOutput(station, config or OpcUaConfig(port=free_port())).start()
        started.append((station, server))
        wait_for(lambda: station.handshake.status().state == "ready", what="the station ready")
        return station, server

    yield start
    for station, server in started:
        station.stop()
        server.close()
        station.store.close()


class Events:
    def __init__(self) -> None:
        self.received = []

    def event_notification(self, event) -> None:
        self.received.append(event)


async def _nodes(client: Client) -> dict:
    idx = await client.get_namespace_index(NAMESPACE)
    system = await client.nodes.objects.get_child(f"{idx}:VisionSystem")
    machine = await system.get_child(f"{idx}:VisionStateMachine")
    recipes = await system.get_child(f"{idx}:RecipeManagement")
    results = await system.get_child(f"{idx}:ResultManagement")
    last = await results.get_child(f"{idx}:LastResult")
    return {"idx": idx, "system": system, "machine": machine, "recipes": recipes, "results": results, "last": last}


async def _value(parent, idx: int, name: str):
    return await (await parent.get_child(f"{idx}:{name}")).read_value()


async def _until(condition, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_a_trigger_over_opc_ua_returns_the_result_id_and_the_result_shows_as_variables_and_an_event(data, served):
    station, server = served()
    data.drop(1)

    async def line():
        async with Client(server.endpoint) as client:
            n = await _nodes(client)
            idx = n["idx"]
            assert await _value(n["machine"], idx, "CurrentState") == "Ready"
            assert await _value(n["recipes"], idx, "Products") == ["Label", "Label B"]
            handler = Events()
            subscription = await client.create_subscription(20, handler)
            event_type = await client.nodes.root.get_child(
                ["0:Types", "0:EventTypes", "0:BaseEventType", f"{idx}:ResultReadyEventType"]
            )
            await subscription.subscribe_events(n["system"], event_type)
            accepted, result_id, reason = await n["machine"].call_method(f"{idx}:StartSingleJob", "plc-4711")
            assert accepted and not reason
            await _until(lambda: _is(n["last"], idx, "ResultId", result_id))
            verdict = await _value(n["last"], idx, "Verdict")
            defects = await _value(n["last"], idx, "DefectCount")
            score = await _value(n["last"], idx, "AnomalyScore")
            await _until(lambda: _is(n["results"], idx, "FailCount", 1))
            await _until(lambda: asyncio.sleep(0, result=bool(handler.received)))
            event = handler.received[0]
            return result_id, verdict, defects, score, event

    result_id, verdict, defects, score, event = asyncio.run(line())
    assert result_id.startswith(f"{station.runs[0]}-1-")
    assert verdict == "FAIL" and defects >= 1 and math.isnan(score)  # the recipe is not taught
    assert (event.ResultId, event.Verdict, event.TriggerId) == (result_id, "FAIL", "plc-4711")
    assert event.ImageName.endswith("p00001.png")


async def _is(parent, idx, name, expected) -> bool:
    return await _value(parent, idx, name) == expected


def test_recipes_are_listed_and_selected_by_product_name_and_refusals_say_why(data, served):
    _station, server = served(require_ack=True)
    data.drop(0)

    async def line():
        async with Client(server.endpoint) as client:
            n = await _nodes(client)
            idx = n["idx"]
            unknown = await n["recipes"].call_method(f"{idx}:PrepareRecipe", "Nonesuch")
            switched = await n["recipes"].call_method(f"{idx}:PrepareRecipe", "Label B")
            await _until(lambda: _is(n["recipes"], idx, "ActiveProduct", "Label B"))
            await _until(lambda: _is(n["machine"], idx, "State", "ready"))
            listed = await n["recipes"].call_method(f"{idx}:GetRecipeList")
            first = await n["machine"].call_method(f"{idx}:StartSingleJob", "")
            await _until(lambda: _is(n["machine"], idx, "State", "result"))
            refused = await n["machine"].call_method(f"{idx}:StartSingleJob", "")
            reason = await _value(n["machine"], idx, "Reason")
            acked = await n["results"].call_method(f"{idx}:AcknowledgeResult", first[1])
            await _until(lambda: _is(n["machine"], idx, "CurrentState", "Ready"))
            refused_count = await _value(n["results"], idx, "RefusedCount")
            product = await _value(n["last"], idx, "Product")
            return unknown, switched, listed, first, refused, reason, acked, refused_count, product

    unknown, switched, listed, first, refused, reason, acked, refused_count, product = asyncio.run(line())
    assert unknown[0] is False and "Nonesuch" in unknown[1] and "Label B" in unknown[1]
    assert switched == [True, ""]
    assert listed == ["Label", "Label B"]
    assert first[0] is True
    assert refused[0] is False and refused[2] == f"result {first[1]} awaits acknowledgement" == reason
    assert acked == [True, ""]
    assert refused_count == 1 and product == "Label B"


def test_without_anonymous_access_only_the_configured_user_gets_in(data, served, monkeypatch):
    config = OpcUaConfig(port=free_port(), anonymous=False, username="plc", password="s3cret")
    _station, server = served(config)

    async def connect(user: str | None, password: str | None) -> str:
        client = Client(server.endpoint)
        if user is not None:
            client.set_user(user)
            client.set_password(password)
        try:
            async with client:
                n = await _nodes(client)
                return await _value(n["machine"], n["idx"], "State")
        except (ua.UaError, OSError, TimeoutError, asyncio.TimeoutError) as exc:
            return f"refused: {type(exc).__name__}"

    assert asyncio.run(connect(None, None)).startswith("refused")
    assert asyncio.run(connect("plc", "wrong")).startswith("refused")
    assert asyncio.run(connect("plc", "s3cret")) == "ready"


def test_a_port_already_taken_is_said_not_a_hang(data, served):
    station, server = served()
    other = OpcUaOutput(station, OpcUaConfig(port=server.config.port))
    with pytest.raises(Exception, match="OPC UA server at"):
        other.start(timeout=10)


def test_a_configured_station_serves_opc_ua_and_says_offline_when_stopped(data, tmp_path):
    from inspector.line.config import parse_config
    from inspector.line.service import LineService

    port = free_port()
    config = parse_config(
        {
            "recipes": "recipes",
            "database": "results.db",
            "source": {"kind": "trigger", "folder": "incoming"},
            "opcua": {"host": "127.0.0.1", "port": port},
        },
        base=tmp_path,
    )
    connections = []
    service = LineService("line-7", config, pipeline=data.pipeline, on_connection=lambda *c: connections.append(c))
    service.start()
    data.drop(0)
    endpoint = f"opc.tcp://127.0.0.1:{port}/inspector/"

    async def line(trigger: bool):
        async with Client(endpoint) as client:
            n = await _nodes(client)
            idx = n["idx"]
            if trigger:
                await _until(lambda: _is(n["machine"], idx, "State", "ready"))
                _, result_id, _ = await n["machine"].call_method(f"{idx}:StartSingleJob", "")
                await _until(lambda: _is(n["last"], idx, "ResultId", result_id))
            return await _value(n["system"], idx, "StationName"), await _value(n["last"], idx, "Verdict")

    try:
        assert asyncio.run(line(True)) == ("line-7", "PASS")
    finally:
        service.stop()
    assert ("opcua", f"listening on {endpoint}") in connections
    with pytest.raises((OSError, asyncio.TimeoutError, TimeoutError)):
        asyncio.run(line(False))  # stopped: nothing listens any more
    assert service.station.handshake.status().state == "offline"


def test_method_arguments_that_are_not_short_text_are_refused_with_the_reason(data, served):
    station, server = served()
    data.drop(0)

    async def line():
        async with Client(server.endpoint) as client:
            n = await _nodes(client)
            idx = n["idx"]
            start, prepare = f"{idx}:StartSingleJob", f"{idx}:PrepareRecipe"
            number = await n["machine"].call_method(start, ua.Variant(42, ua.VariantType.Int32))
            array = await n["machine"].call_method(start, ua.Variant([1, 2], ua.VariantType.Int32, is_array=True))
            nothing = await n["machine"].call_method(start)
            too_long = await n["machine"].call_method(start, "x" * 500)
            product = await n["recipes"].call_method(prepare, ua.Variant(7, ua.VariantType.Int32))
            ack = await n["results"].call_method(f"{idx}:AcknowledgeResult", ua.Variant(1.5, ua.VariantType.Double))
            state = await _value(n["machine"], idx, "State")
            return number, array, nothing, too_long, product, ack, state

    number, array, nothing, too_long, product, ack, state = asyncio.run(line())
    for refused in (number, array, too_long):
        assert refused[:2] == [False, ""] and "TriggerId" in refused[2]
    assert nothing[:2] == [False, ""] and "argument" in nothing[2]
    assert product[0] is False and "Product must be text" in product[1]
    assert ack[0] is False and "ResultId must be text" in ack[1]
    assert state == "ready" and station.handshake.last_result is None  # no part was taken
