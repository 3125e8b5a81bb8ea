"""Idempotent write tools (`[tools.NAME] write = true`): a retried write never executes
twice, across repeats, concurrent duplicates from several sessions and two `mcpjail run`
processes, a killed relay, and key expiry. The servers count executions in a file outside
the jail (one line per execution)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import anyio

from conftest import Jail, RawRelay, wait_for
from test_policy import refusal, writes
from test_python_sdk import connect, text_of

WRITE_POLICY = """
[tools.record_write]
write = true
[tools.read_records]
"""


def replayed(result) -> bool:
    return bool((result.meta or {}).get("dev.mcpjail/replayed"))


def test_the_same_write_twice_executes_once_and_replays(jail: Jail):
    jail.fixture_profile(policy=WRITE_POLICY)

    async def main():
        async with connect(jail, "fixture", "legacy") as session:
            first = await session.call_tool("record_write", {"key": "a", "amount": 5})
            assert not first.is_error and not replayed(first), first
            # the same operation spelled differently: member order and number form
            second = await session.call_tool("record_write", {"amount": 5.0, "key": "a"})
            assert replayed(second), second
            assert text_of(second) == text_of(first)
            other = await session.call_tool("record_write", {"key": "b", "amount": 5})
            assert not replayed(other)
            assert not (await session.call_tool("read_records", {})).is_error  # reads are not recorded

    anyio.run(main)
    assert writes(jail) == ["a 5", "b 5"]
    records = [r for r in jail.assert_audit_intact() if r.get("tool") == "record_write"]
    assert [r["idempotency"] for r in records] == ["executed", "replayed", "executed"]
    assert records[0]["idempotency_key"] == records[1]["idempotency_key"] != records[2]["idempotency_key"]


def test_a_supplied_key_reused_with_other_arguments_is_a_mismatch(jail: Jail):
    jail.fixture_profile(policy=WRITE_POLICY)
    key = {"dev.mcpjail/idempotencyKey": "order-42"}

    async def main():
        async with connect(jail, "fixture", "2026-07-28") as session:
            first = await session.call_tool("record_write", {"key": "o", "amount": 1}, meta=key)
            assert not first.is_error, first
            error = refusal(await session.call_tool("record_write", {"key": "o", "amount": 2}, meta=key))
            assert error["type"] == "idempotency_mismatch" and error["retryable"] is False
            again = await session.call_tool("record_write", {"key": "o", "amount": 1}, meta=key)
            assert replayed(again)
            bad = refusal(await session.call_tool("record_write", {"key": "o", "amount": 3}, meta={"dev.mcpjail/idempotencyKey": ""}))
            assert bad["retryable"] is False

    anyio.run(main)
    assert writes(jail) == ["o 1"]


def test_fifty_concurrent_duplicates_from_two_processes_execute_once(jail: Jail):
    jail.fixture_profile(policy=WRITE_POLICY)
    results: list[str] = []

    async def one_process(calls: int):
        async with connect(jail, "fixture", "legacy") as session:
            async def call():
                result = await session.call_tool("record_write", {"key": "dup", "amount": 7, "delay": 1.5})
                assert not result.is_error, result
                results.append(text_of(result))

            async with anyio.create_task_group() as group:
                for _ in range(calls):
                    group.start_soon(call)

    async def main():
        async with anyio.create_task_group() as group:
            group.start_soon(one_process, 25)
            group.start_soon(one_process, 25)

    anyio.run(main)
    assert len(results) == 50
    assert len(set(results)) == 1, set(results)
    assert writes(jail) == ["dup 7"]


def test_a_killed_relay_never_causes_a_second_execution(jail: Jail, raw_relay):
    """200 times: start a write, SIGKILL `mcpjail run` at a random moment (before it
    forwards, while the server works, after it answered, while storing), then retry the
    same write through a surviving session: the stored result or outcome_unknown, never a
    second execution."""
    log = jail.root / "writes.log"
    jail.raw_profile(policy=WRITE_POLICY)
    survivor = raw_relay("raw")
    rng = random.Random(20261122)
    outcomes = {"replayed": 0, "outcome_unknown": 0, "executed": 0}
    for i in range(200):
        key = f"k{i}"
        call = {"name": "record_write", "arguments": {"key": key, "log": str(log), "delay": rng.choice([0, 0, 0.01, 0.05])}}
        victim = RawRelay(jail, "raw")
        victim.send_json({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})
        time.sleep(rng.uniform(0, 0.25))
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        victim.kill()
        reply = survivor.request(1000 + i, "tools/call", call, timeout=30)
        result = reply["result"]
        if result.get("_meta", {}).get("dev.mcpjail/replayed"):
            outcomes["replayed"] += 1
        elif result.get("isError"):
            assert result["structuredContent"]["error"]["type"] == "outcome_unknown", result
            outcomes["outcome_unknown"] += 1
        else:
            outcomes["executed"] += 1  # the kill came before the key was recorded
    lines = log.read_text().splitlines() if log.exists() else []
    counts = {line: lines.count(line) for line in set(lines)}
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    print("killed-relay outcomes:", outcomes)
    survivor.close_stdin()
    survivor.wait()


def test_a_write_answered_with_a_json_rpc_error_replays_that_error_without_running_again(jail: Jail, raw_relay):
    jail.raw_profile(policy=WRITE_POLICY + "[tools.rpc_error]\nwrite = true\n")
    relay = raw_relay("raw")
    call = {"name": "rpc_error", "arguments": {"order": 12}}
    first = relay.request(1, "tools/call", call)
    again = relay.request(2, "tools/call", call)
    assert "result" not in first and first["error"]["code"] == -32602, first
    # The same JSON-RPC error, not a tool result: only the id and the replay mark differ.
    assert "result" not in again, again
    assert again["error"]["code"] == first["error"]["code"] and again["error"]["message"] == first["error"]["message"]
    assert again["error"]["data"]["dev.mcpjail/replayed"] is True, again
    assert jail.received().count(b'"name":"rpc_error"') == 1, "the write ran twice"
    relay.close_stdin()
    assert relay.wait() == 0
    calls = [r for r in jail.assert_audit_intact() if r.get("tool") == "rpc_error"]
    assert [r.get("idempotency") for r in calls] == ["executed", "replayed"], calls
    assert all(r["outcome"] == "protocol_error" and r["error_code"] == -32602 for r in calls), calls


def test_an_expired_key_executes_again(jail: Jail):
    jail.fixture_profile(policy=WRITE_POLICY.replace("write = true", 'write = true\nidempotency_ttl = "1s"'))

    async def main():
        async with connect(jail, "fixture", "legacy") as session:
            assert not replayed(await session.call_tool("record_write", {"key": "t", "amount": 1}))
            assert replayed(await session.call_tool("record_write", {"key": "t", "amount": 1}))
            await anyio.sleep(1.5)
            assert not replayed(await session.call_tool("record_write", {"key": "t", "amount": 1}))

    anyio.run(main)
    assert writes(jail) == ["t 1", "t 1"]


def test_a_corrupted_store_stops_the_start_with_a_clear_error(jail: Jail):
    jail.fixture_profile(policy=WRITE_POLICY)
    jail.state.mkdir(parents=True, exist_ok=True)
    (jail.state / "idempotency.sqlite").write_bytes(b"this is not a database" * 100)
    result = subprocess.run(
        jail.command("fixture"), input=b"", capture_output=True, env=jail.env(), timeout=30)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "idempotency" in err and "idempotency.sqlite" in err, err
    assert not (jail.fixture_state() / "server.pid").exists(), "the server started"
