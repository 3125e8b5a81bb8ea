"""The relay's byte-level contract, driven over raw pipes against tests/fixtures/raw_server.py:
exact bytes both ways, JSON-RPC errors for bad client input, dropped server garbage,
stderr to the log file, the environment, and the audit records."""

from __future__ import annotations

import base64
import fcntl
import json
import threading
import time
from pathlib import Path

import pytest

from conftest import Jail, vm_hwm_kib, wait_for

MIB = 1024 * 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_structured_error(error: dict, code: int, error_type: str) -> None:
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    data = error["data"]
    assert data["type"] == error_type, error
    assert isinstance(data["message"], str) and data["message"], error
    assert data["retryable"] is False, error


# -- exact bytes -----------------------------------------------------------------------------------
def test_client_to_server_bytes_are_forwarded_exactly(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    # Odd spacing, key order, escapes, non-ASCII, exponent numbers: all must arrive untouched.
    line = (
        b'{ "id" : 1,"method":"initialize" ,"jsonrpc":"2.0","params":{"protocolVersion":"2025-11-25",'
        b'"capabilities":{ },"clientInfo":{"name":"caf\\u00e9 \xf0\x9f\x98\x80","version":"1.50e3"},'
        b'"n":1.50e3,"z":[ ],"s":"a\\/b\\"c"}}\n'
    )
    relay.send(line)
    reply = relay.recv()
    assert reply["id"] == 1
    assert base64.b64decode(reply["result"]["received_b64"]) == line
    call = b'{"jsonrpc":"2.0","id":"str-id-\xc3\xa9","method":"tools/call","params":{"name":"any_tool","arguments":{"k":[1,2.0,true,null]},"_meta":{"progressToken":"p1"}}}\n'
    relay.send(call)
    reply = relay.recv()
    assert reply["id"] == "str-id-\u00e9"
    assert base64.b64decode(reply["result"]["received_b64"]) == call
    assert jail.received() == line + call


def test_server_to_client_bytes_are_forwarded_exactly(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    emitted = [
        b'{"result":{"z":1,"a":[ 1 , 2 ],"t":"caf\\u00e9 \xf0\x9f\x98\x80"} ,"id":5,"jsonrpc":"2.0"}\n',
        b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p1","progress":0.5,"total":1}}\n',
        b'{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n',
        b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s0","reason":"because"}}\n',
        b'{"jsonrpc":"2.0","id":"s1","method":"roots/list"}\n',
        b'{"jsonrpc":"2.0","id":"s2","method":"sampling/createMessage","params":{"messages":[],"maxTokens":8}}\n',
        b'{"jsonrpc":"2.0","id":"s3","method":"elicitation/create","params":{"message":"?","requestedSchema":{"type":"object","properties":{}}}}\n',
    ]
    relay.send_json({"jsonrpc": "2.0", "id": 5, "method": "emit", "params": {"lines_b64": [b64(x) for x in emitted]}})
    got = [relay.recv_line() for _ in emitted]
    assert got == emitted


def test_responses_to_server_requests_and_client_notifications_reach_the_server(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.send_json(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "emit",
            "params": {"lines_b64": [b64(b'{"jsonrpc":"2.0","id":"s1","method":"roots/list"}\n')]},
        }
    )
    assert relay.recv() == {"jsonrpc": "2.0", "id": "s1", "method": "roots/list"}
    answer = b'{"jsonrpc":"2.0","id":"s1","result":{"roots":[{"uri":"file:///srv","name":"srv"}]}}\n'
    error_answer = b'{"jsonrpc":"2.0","id":"s2","error":{"code":-1,"message":"user said no"}}\n'
    cancelled = b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99,"reason":"user"}}\n'
    progress = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}\n'
    initialized = b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
    for line in (answer, error_answer, cancelled, progress, initialized):
        relay.send(line)
    # A request after them: when its answer comes back, the server has read everything before it.
    relay.send_json({"jsonrpc": "2.0", "id": 2, "method": "ping"})
    assert relay.recv()["id"] == 2
    received = jail.received()
    for line in (answer, error_answer, cancelled, progress, initialized):
        assert line in received


# -- bad input from the client -----------------------------------------------------------------------
def test_invalid_json_gets_parse_error_and_relay_carries_on(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.send(b'{"jsonrpc":"2.0","id":1,"method":\n')
    reply = relay.recv()
    assert reply["jsonrpc"] == "2.0" and reply["id"] is None
    assert_structured_error(reply["error"], -32700, "parse_error")
    relay.send(b"\xff\xfe not even utf-8\n")
    assert_structured_error(relay.recv()["error"], -32700, "parse_error")
    reply = relay.request(2, "still_alive")
    assert reply["id"] == 2 and "received_b64" in reply["result"]
    assert b'"method":\n' not in jail.received() and b"not even" not in jail.received()


def test_batch_is_refused_never_forwarded(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.send(b'[{"jsonrpc":"2.0","id":1,"method":"batched_one"},{"jsonrpc":"2.0","id":2,"method":"batched_two"}]\n')
    reply = relay.recv()
    assert "result" not in reply
    assert_structured_error(reply["error"], -32600, "batch_refused")
    reply = relay.request(3, "after_batch")
    assert reply["id"] == 3
    assert b"batched_" not in jail.received()


def test_oversize_line_is_refused_and_relay_carries_on(jail: Jail, raw_relay):
    jail.raw_profile()  # default max_message: 16 MiB
    relay = raw_relay("raw")
    assert relay.request(1, "warm_up")["id"] == 1
    line = b'{"jsonrpc":"2.0","id":7,"method":"too_big","params":{"pad":"' + b"x" * (20 * MIB) + b'"}}\n'
    writer = threading.Thread(target=relay.send, args=(line,), daemon=True)
    writer.start()
    reply = relay.recv(timeout=60)
    # The id comes before the bulk, so the refusal answers that request.
    assert reply["id"] == 7
    assert_structured_error(reply["error"], -32600, "message_too_large")
    writer.join(timeout=60)
    assert not writer.is_alive()
    assert relay.request(8, "after_big_line")["id"] == 8
    assert b"too_big" not in jail.received()
    relay.close_stdin()
    relay.wait()
    refused = [r for r in jail.assert_audit_intact() if r.get("error_type") == "message_too_large"]
    assert len(refused) == 1 and refused[0]["method"] == "too_big" and refused[0]["request_id"] in ("7", 7)


def test_oversize_line_without_a_leading_id_is_refused_with_a_null_id(jail: Jail, raw_relay):
    jail.raw_profile(max_message="1M")
    relay = raw_relay("raw")
    line = b'{"params":{"pad":"' + b"x" * (2 * MIB) + b'"},"jsonrpc":"2.0","id":9,"method":"late_id"}\n'
    relay.send(line)
    reply = relay.recv(timeout=60)
    assert reply["id"] is None
    assert_structured_error(reply["error"], -32600, "message_too_large")
    assert relay.request(10, "after")["id"] == 10


def test_oversize_reply_from_the_server_fails_that_request(jail: Jail, raw_relay):
    """A server reply over the limit never reaches the client, and the call does not hang."""
    jail.raw_profile(max_message="1M")
    relay = raw_relay("raw")
    reply = relay.request(3, "tools/call", {"name": "big", "arguments": {"bytes": 2 * MIB}})
    assert reply["id"] == 3
    result = reply["result"]
    assert result["isError"] is True
    error = result["structuredContent"]["error"]
    assert error["type"] == "message_too_large" and error["retryable"] is False
    reply = relay.request(4, "big", {"bytes": 2 * MIB})
    assert reply["id"] == 4
    assert_structured_error(reply["error"], -32001, "message_too_large")
    small = relay.request(6, "big", {"bytes": 1000})
    assert small["id"] == 6 and "result" in small


def test_oversize_line_is_not_read_into_memory(jail: Jail, raw_relay):
    """A 20 MiB line over a 1 MiB limit: mcpjail's peak RSS grows by far less than the line."""
    jail.raw_profile(max_message="1M")
    relay = raw_relay("raw")
    assert relay.request(1, "warm_up")["id"] == 1
    before = vm_hwm_kib(relay.proc.pid)
    line = b'{"jsonrpc":"2.0","id":7,"method":"too_big","params":{"pad":"' + b"x" * (20 * MIB) + b'"}}\n'
    writer = threading.Thread(target=relay.send, args=(line,), daemon=True)
    writer.start()
    assert_structured_error(relay.recv(timeout=60)["error"], -32600, "message_too_large")
    writer.join(timeout=60)
    assert relay.request(8, "after_big_line")["id"] == 8
    growth_mib = (vm_hwm_kib(relay.proc.pid) - before) / 1024
    assert growth_mib < 8, f"mcpjail's peak RSS grew by {growth_mib:.1f} MiB for a refused 20 MiB line"


# -- bad output from the server ------------------------------------------------------------------------
def test_non_json_from_server_is_dropped(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    good = b'{"jsonrpc":"2.0","id":1,"result":{"ok":true}}\n'
    relay.send_json(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "emit",
            "params": {"lines_b64": [b64(b"Server starting... not JSON\n"), b64(b"{broken json\n"), b64(good)]},
        }
    )
    assert relay.recv_line() == good
    assert relay.request(2, "after")["id"] == 2
    assert b"not JSON" not in relay.stdout_bytes and b"broken" not in relay.stdout_bytes


def test_server_stderr_goes_to_the_log_file_never_to_stdout(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    marker = "stderr-marker-4f1c9a"
    assert relay.request(1, "stderr", {"text": marker})["result"] == {"written": True}
    relay.close_stdin()
    assert relay.wait() == 0
    assert marker.encode() not in relay.stdout_bytes
    assert b"raw-server: started" not in relay.stdout_bytes
    log = jail.stderr_log("raw")
    assert "raw-server: started" in log and marker in log


def test_server_stderr_log_is_size_capped(jail: Jail, raw_relay):
    """A chatty server cannot fill the state directory: past 1 MiB the log rotates once."""
    jail.raw_profile()
    relay = raw_relay("raw")
    chunk = "e" * (256 * 1024)
    for i in range(10):  # 2.5 MiB of stderr
        assert relay.request(i + 1, "stderr", {"text": f"{i}:{chunk}"})["result"] == {"written": True}
    relay.close_stdin()
    assert relay.wait() == 0
    log = jail.state / "logs" / "raw.stderr.log"
    rotated = jail.state / "logs" / "raw.stderr.log.1"
    assert rotated.exists(), "the log never rotated"
    assert log.stat().st_size <= 1024 * 1024 and rotated.stat().st_size <= 1024 * 1024
    assert "9:" + "e" * 16 in log.read_text()  # the newest output is kept
    assert not (jail.state / "logs" / "raw.stderr.log.2").exists()


def test_server_environment_is_the_profiles(jail: Jail, raw_relay):
    jail.raw_profile(env={"FROM_PROFILE": "yes"})
    relay = raw_relay("raw")
    result = relay.request(1, "environ")["result"]
    env = result["environ"]
    assert env.get("FROM_PROFILE") == "yes"
    assert "CLIENT_SECRET_SHOULD_NOT_LEAK" not in env
    assert "MCPJAIL_STATE_DIR" not in env
    assert set(env) <= set(jail.server_env({"FROM_PROFILE": "yes"})) | {"LC_CTYPE"}
    assert result["cwd"] == "/"


# -- the audit log ---------------------------------------------------------------------------------------
AUDIT_FIELDS = {
    "hash", "prev", "time", "server", "profile_digest", "session", "request_id", "method", "tool",
    "arguments_digest", "decision", "outcome", "error_code", "error_type", "latency_us", "bytes_in", "bytes_out",
}  # fmt: skip


def test_audit_records_and_chain(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.request(1, "tools/call", {"name": "lookup", "arguments": {"b": 2, "a": 1}})
    relay.request(2, "tools/call", {"name": "lookup", "arguments": {"a": 1, "b": 2}})
    assert relay.request(3, "tools/call", {"name": "tool_error", "arguments": {}})["result"]["isError"] is True
    assert relay.request(4, "tools/call", {"name": "rpc_error", "arguments": {}})["error"]["code"] == -32602
    relay.close_stdin()
    relay.wait()
    records = jail.assert_audit_intact()
    for r in records:
        # error_code may be left out when there is no error; error_type when the error has no data.type
        required = AUDIT_FIELDS - {"error_type"} - ({"error_code"} if r["outcome"] != "protocol_error" else set())
        assert required <= set(r), f"missing {required - set(r)} in {r}"
    calls = [r for r in records if r["method"] == "tools/call"]
    assert [r["tool"] for r in calls][:2] == ["lookup", "lookup"]
    # canonical arguments: key order does not change the digest
    assert calls[0]["arguments_digest"] == calls[1]["arguments_digest"]
    assert calls[0]["outcome"] == "ok" and calls[0]["server"] == "raw"
    assert calls[0]["request_id"] in (1, "1")
    assert [r["outcome"] for r in calls] == ["ok", "ok", "tool_error", "protocol_error"]
    assert calls[3]["error_code"] == -32602
    # the chain: every record names its predecessor's hash
    for before, after in zip(records, records[1:]):
        assert after["prev"] == before["hash"]
    assert len({r["session"] for r in records}) == 1
    assert len({r["profile_digest"] for r in records}) == 1


def test_logs_verify_detects_an_edited_record(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    for i in range(3):
        relay.request(i, "tools/call", {"name": f"tool{i}", "arguments": {}})
    relay.close_stdin()
    relay.wait()
    records = jail.assert_audit_intact()
    assert len(records) >= 3
    lines = jail.audit_path.read_text().splitlines(keepends=True)
    edited = json.loads(lines[1])
    edited["outcome"] = "ok" if edited["outcome"] != "ok" else "tool_error"
    lines[1] = json.dumps(edited, separators=(",", ":")) + "\n"
    jail.audit_path.write_text("".join(lines))
    result = jail.verify()
    assert result.returncode != 0, result.stdout + result.stderr
    removed = lines[:1] + lines[2:]
    jail.audit_path.write_text("".join(removed))
    assert jail.verify().returncode != 0


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "x" * 65, "has space", "../evil"])
def test_bad_profile_names_are_refused(jail: Jail, name: str):
    jail.raw_profile()
    # A valid profile outside the profile directory must not be reachable through the name.
    evil = jail.root / "evil.toml"
    evil.write_text((jail.profiles / "raw.toml").read_text())
    result = jail.mcpjail("run", name, "--profiles", str(jail.profiles))
    assert result.returncode != 0
    assert result.stdout == ""
    assert f"mcpjail: no profile '{name}' in " in result.stderr
    assert "(the profiles are the allowlist)" in result.stderr
    assert not jail.record_file().with_suffix(".received.pid").exists()
    assert not jail.received()


def test_missing_profile_is_refused_naming_the_directories(jail: Jail):
    result = jail.mcpjail("run", "nosuch", "--profiles", str(jail.profiles))
    assert result.returncode != 0
    assert result.stdout == ""
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"mcpjail: no profile 'nosuch' in {jail.profiles}")
    assert first.endswith("(the profiles are the allowlist)")


def test_profiles_from_the_environment(jail: Jail):
    env = jail.env() | {"MCPJAIL_PROFILES": str(jail.profiles)}
    import subprocess

    from conftest import MCPJAIL

    jail.raw_profile()
    proc = subprocess.run(
        [str(MCPJAIL), "run", "raw"],
        input=b'{"jsonrpc":"2.0","id":1,"method":"via_env"}\n',
        capture_output=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["id"] == 1
    assert wait_for(lambda: b"via_env" in jail.received(), timeout=5)


# -- waiting for the next message ------------------------------------------------------------------
F_GETPIPE_SZ = 1032


def relay_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of mcpjail itself (the server is another process)."""
    tasks = Path(f"/proc/{pid}/task")
    return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks.iterdir()) / 1e9


def test_the_relay_grows_the_client_pipes_it_reads_and_writes(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    stdin, stdout = relay.proc.stdin.fileno(), relay.proc.stdout.fileno()
    relay.request(1, "initialize", {})
    # The test holds the other ends of the same two pipes; the kernel made them 64 KiB.
    assert fcntl.fcntl(stdin, F_GETPIPE_SZ) == 256 * 1024
    assert fcntl.fcntl(stdout, F_GETPIPE_SZ) == 256 * 1024
    big = "x" * (200 * 1024)  # now crosses each pipe in one write
    reply = relay.request(2, "echo", {"text": big})
    assert big.encode() in base64.b64decode(reply["result"]["received_b64"])


def test_the_relay_polls_only_while_its_peers_answer_quickly_and_an_idle_session_sleeps(jail: Jail, raw_relay):
    """relay_spin: a thread polls for the next message while the last one came within the
    budget, and sleeps once its peer is slow or gone quiet."""
    jail.raw_profile("spin", relay_spin="10ms")
    jail.raw_profile("sleep", relay_spin="0ms")
    used: dict[str, tuple[float, float]] = {}
    for name in ("spin", "sleep"):
        relay = raw_relay(name)
        pid = relay.proc.pid
        relay.request(1, "initialize", {})
        # Calls 2 ms apart: each wait ends well inside the 10 ms budget.
        start = relay_cpu_seconds(pid)
        for i in range(150):
            relay.request(10 + i, "tools/call", {"name": "t", "arguments": {}})
            time.sleep(0.002)
        paced = relay_cpu_seconds(pid) - start
        time.sleep(0.1)  # the last spins run out
        start = relay_cpu_seconds(pid)
        time.sleep(1.0)
        idle = relay_cpu_seconds(pid) - start
        used[name] = (paced, idle)
        relay.close_stdin()
        assert relay.wait() == 0
    # The probe sees polling: with relay_spin the paced calls cost the relay far more CPU.
    assert used["spin"][0] > 0.05 and used["spin"][0] > 4 * used["sleep"][0], used
    # ...and none once the session is idle: both sleep in read(2).
    assert used["spin"][1] < 0.02 and used["sleep"][1] < 0.02, used
