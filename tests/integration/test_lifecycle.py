"""Lifecycle: client EOF, signals to mcpjail, the server's death and exit status, requests in
flight when the server dies, and no process left behind (checked in /proc)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import MCPJAIL, VENV_BIN, Jail, descendants, find_processes, pid_alive, wait_for


def sleeper_under(pid: int) -> int:
    """The host pid of the `sleep 1000` a server started (its own pidfile holds the pid
    inside the jail's pid namespace)."""
    found: list[int] = []

    def look() -> bool:
        tree = descendants(pid)
        found[:] = [p for p in find_processes(lambda argv: argv[-2:] == ["sleep", "1000"] or argv[-2:] == ["/bin/sleep", "1000"]) if p in tree]
        return len(found) == 1

    assert wait_for(look, timeout=10), f"no sleeper under {pid}: {found}"
    return found[0]


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_client_eof_ends_the_session_cleanly(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    assert relay.request(1, "hello")["id"] == 1
    server = jail.raw_server_pid()
    assert server in descendants(relay.proc.pid)
    relay.close_stdin()
    assert relay.wait(timeout=15) == 0
    assert not pid_alive(server)


def test_closed_stdio_is_dev_null_not_a_pipe_of_mcpjails(jail: Jail):
    """A client that starts mcpjail with stdout (or stdin) closed: the number must not go to
    the first pipe mcpjail makes (the namespace holder's, before main), or the relay would
    answer into it (or read the client from it). It is /dev/null; the session still runs
    and ends cleanly."""
    jail.raw_profile()
    proc = subprocess.Popen(
        jail.command("raw"), env=jail.env(), stdin=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
    )
    try:
        jail.raw_server_pid()  # the session is up
        assert os.readlink(f"/proc/{proc.pid}/fd/1") == "/dev/null"
        assert os.readlink(f"/proc/{proc.pid}/fd/0").startswith("pipe:")  # the control: ours
        proc.stdin.close()
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
    finally:
        kill_quietly(proc.pid)
        proc.wait()
    # Stdin closed: the client is at its end at once, and nothing is left behind.
    done = subprocess.run(
        jail.command("raw"), env=jail.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(0), timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""


def test_client_eof_then_sigterm_then_sigkill(jail: Jail, raw_relay):
    """A server that ignores EOF gets SIGTERM after stop_timeout; one that also ignores
    SIGTERM gets SIGKILL after another stop_timeout."""
    jail.raw_profile("stubborn", ignore_eof=True, stop_timeout="1s")
    jail.raw_profile("mule", ignore_eof=True, ignore_sigterm=True, stop_timeout="1s")
    for name, status, least in (("stubborn", 128 + signal.SIGTERM, 0.9), ("mule", 128 + signal.SIGKILL, 1.9)):
        relay = raw_relay(name)
        assert relay.request(1, "hello")["id"] == 1
        server = jail.raw_server_pid(name)
        start = time.monotonic()
        relay.close_stdin()
        rc = relay.wait(timeout=20)
        elapsed = time.monotonic() - start
        assert not pid_alive(server), name
        assert least <= elapsed < least + 4, f"{name}: stopped after {elapsed:.2f}s"
        assert rc == status, f"{name}: exit status {rc}, expected {status}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_mcpjail_stops_the_server(jail: Jail, raw_relay, sig):
    jail.raw_profile(ignore_eof=True, stop_timeout="1s")
    relay = raw_relay("raw")
    assert relay.request(1, "hello")["id"] == 1
    server = jail.raw_server_pid()
    relay.proc.send_signal(sig)
    relay.wait(timeout=15)
    assert not pid_alive(server)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_mcpjail_escalates_to_sigkill(jail: Jail, raw_relay, sig):
    jail.raw_profile(ignore_eof=True, ignore_sigterm=True, stop_timeout="1s")
    relay = raw_relay("raw")
    assert relay.request(1, "hello")["id"] == 1
    server = jail.raw_server_pid()
    relay.proc.send_signal(sig)
    relay.wait(timeout=15)
    assert not pid_alive(server)


@pytest.mark.parametrize("code", [0, 3, 7])
def test_exit_status_is_the_servers(jail: Jail, raw_relay, code: int):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
    relay.send_json({"jsonrpc": "2.0", "id": 1, "method": "hello"})
    assert relay.recv()["id"] == 1
    relay.send_json({"jsonrpc": "2.0", "id": 2, "method": "exit", "params": {"code": code}})
    assert relay.wait(timeout=15) == code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_exit_status_when_the_server_is_killed(jail: Jail, raw_relay, sig):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.send_json({"jsonrpc": "2.0", "id": 1, "method": "kill", "params": {"signal": int(sig)}})
    assert relay.wait(timeout=15) == 128 + sig


def test_requests_in_flight_when_the_server_dies(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.send_json({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "hang", "arguments": {}}})
    relay.send_json({"jsonrpc": "2.0", "id": "eleven", "method": "hang"})
    relay.send_json({"jsonrpc": "2.0", "id": 12, "method": "exit", "params": {"code": 0}})
    assert relay.wait(timeout=15) == 0
    replies = {}
    for line in relay.rest():
        msg = json.loads(line)
        replies[msg["id"]] = msg
    assert set(replies) == {10, "eleven", 12}, replies
    tool = replies[10]["result"]
    assert tool["isError"] is True
    assert tool["content"][0]["type"] == "text" and tool["content"][0]["text"]
    error = tool["structuredContent"]["error"]
    assert error["type"] == "server_unavailable" and error["retryable"] is True and error["message"]
    for key in ("eleven", 12):
        err = replies[key]["error"]
        assert err["code"] == -32000
        assert err["data"]["type"] == "server_unavailable"
        assert err["data"]["retryable"] is True
        assert err["data"]["message"]
    records = jail.assert_audit_intact()
    hung = [r for r in records if r.get("tool") == "hang"]
    assert len(hung) == 1 and hung[0]["outcome"] == "no_response"


# -- nothing outlives `mcpjail run` ----------------------------------------------------------------
@pytest.fixture
def reaper():
    """pids to SIGKILL at the end of the test whatever happened (never leave a sleeper behind)."""
    pids: set[int] = set()
    yield pids
    for p in pids:
        kill_quietly(p)


@pytest.mark.parametrize("ending", ["eof", "sigterm", "server_exit", "server_killed"])
def test_no_process_outlives_mcpjail(jail: Jail, raw_relay, reaper, ending: str):
    jail.raw_profile(stop_timeout="1s")
    relay = raw_relay("raw")
    pidfile = jail.root / "grandchild.pid"
    assert relay.request(1, "spawn", {"pidfile": str(pidfile)})["result"]["pid"]
    server = jail.raw_server_pid()
    grandchild = sleeper_under(server)
    reaper.add(grandchild)
    tree = descendants(relay.proc.pid)
    reaper.update(tree)
    assert pid_alive(grandchild)
    assert {server, grandchild} <= tree
    if ending == "eof":
        relay.close_stdin()
    elif ending == "sigterm":
        relay.proc.send_signal(signal.SIGTERM)
    elif ending == "server_exit":
        relay.send_json({"jsonrpc": "2.0", "id": 2, "method": "exit", "params": {"code": 0}})
    else:
        os.kill(server, signal.SIGKILL)
    relay.wait(timeout=20)
    assert wait_for(lambda: not any(pid_alive(p) for p in tree), timeout=2), [p for p in tree if pid_alive(p)]


SUBREAPER = """
import ctypes, json, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come here
done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True)
left = []
while True:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    left.append(pid)
print(json.dumps({"rc": done.returncode, "stderr": done.stderr.decode(errors="replace"), "orphans": left}))
"""


@pytest.mark.parametrize("args", [["run", "nosuchprofile"], ["run", "bad/name"], ["run", "--help"], ["list"], ["run", "--bogus", "x"]])
def test_no_process_outlives_a_command_that_starts_no_server(jail: Jail, args: list[str]):
    """`mcpjail run` starts its namespace holder before `main`; a command that then starts no
    jail (a missing profile, a refused name, help, another command, a usage error) ends and
    reaps it. Run under a subreaper, which would inherit anything left behind."""
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", SUBREAPER, str(MCPJAIL), *args, "--profiles", str(jail.profiles)],
        env=jail.env(), capture_output=True, text=True, timeout=60,
    )
    outcome = json.loads(done.stdout)
    assert outcome["orphans"] == [], outcome
    assert outcome["rc"] == (0 if args in (["run", "--help"], ["list"]) else 1 if args[1] != "--bogus" else 64), outcome


def test_no_process_outlives_mcpjail_fixture_server(jail: Jail, raw_relay, reaper):
    """The same with the SDK fixture server: its `spawn` tool's grandchild dies with the session."""
    jail.fixture_profile(stop_timeout="1s")
    relay = raw_relay("fixture")
    init = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "1"},
    }
    assert relay.request(1, "initialize", init)["result"]["serverInfo"]["name"] == "mcpjail-fixture"
    relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
    reply = relay.request(2, "tools/call", {"name": "spawn", "arguments": {}})
    assert (jail.fixture_state() / "grandchild.pid").read_text()
    grandchild = sleeper_under(relay.proc.pid)
    reaper.add(grandchild)
    assert reply["result"]["isError"] is False, reply
    tree = descendants(relay.proc.pid)
    reaper.update(tree)
    assert grandchild in tree
    relay.close_stdin()
    relay.wait(timeout=20)
    assert wait_for(lambda: not any(pid_alive(p) for p in tree), timeout=2), [p for p in tree if pid_alive(p)]


def test_fixture_crash_exit_status(jail: Jail, raw_relay):
    """The fixture server's crash tool calls os._exit(3): mcpjail exits 3 and answers the call."""
    jail.fixture_profile()
    relay = raw_relay("fixture")
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}
    relay.request(1, "initialize", init)
    relay.send_json({"jsonrpc": "2.0", "method": "notifications/initialized"})
    relay.send_json({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "crash", "arguments": {}}})
    assert relay.wait(timeout=20) == 3
    (reply,) = [json.loads(x) for x in relay.rest()]
    assert reply["id"] == 2
    assert reply["result"]["structuredContent"]["error"]["type"] == "server_unavailable"
    # stderr of the server (its startup line) went to the log, not to the client
    assert "fixture-server: starting" in jail.stderr_log("fixture")
    assert b"fixture-server" not in relay.stdout_bytes
