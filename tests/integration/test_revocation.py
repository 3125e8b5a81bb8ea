"""Revocation: removing (or renaming) a server's profile stops its running sessions within a
second, answering calls in flight with server_revoked; `mcpjail revoke` does it and counts
them; `mcpjail ps` lists sessions from a registry that stays right after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import time

from conftest import Jail, pid_alive, wait_for


def test_removing_the_profile_stops_an_idle_session(jail: Jail, raw_relay):
    profile = jail.raw_profile()
    relay = raw_relay("raw")
    assert "result" in relay.request(1, "ping")
    server = jail.raw_server_pid()
    started = time.monotonic()
    profile.unlink()
    assert relay.wait(timeout=5) == 78
    assert time.monotonic() - started < 1.5, "revocation took longer than a second"
    assert wait_for(lambda: not pid_alive(server), timeout=2), "the server outlived its revocation"
    again = jail.mcpjail("run", "raw", "--profiles", str(jail.profiles))
    assert again.returncode != 0 and "no profile 'raw'" in again.stderr


def test_renaming_the_profile_or_its_directory_stops_the_session_within_a_second(jail: Jail, raw_relay):
    # A rename inside the directory is a kernel notification; the directory itself renamed
    # away is seen by the supervisor's periodic look (dnotify does not report it).
    for rename_directory in (False, True):
        profile = jail.raw_profile()
        relay = raw_relay("raw")
        assert "result" in relay.request(1, "ping")
        started = time.monotonic()
        if rename_directory:
            moved = jail.profiles.with_name(jail.profiles.name + ".moved")
            jail.profiles.rename(moved)
        else:
            profile.rename(profile.with_suffix(".toml.off"))
        try:
            assert relay.wait(timeout=5) == 78
            assert time.monotonic() - started < 1.5, "revocation took longer than a second"
        finally:
            if rename_directory:
                moved.rename(jail.profiles)


def test_revoke_during_a_long_call_answers_it_and_reports_the_session(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    relay.send_json({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "hang", "arguments": {}}})
    assert wait_for(lambda: b'"hang"' in jail.received(), timeout=10)
    listed = jail.mcpjail("ps", "--json")
    entries = json.loads(listed.stdout)
    assert [e["server"] for e in entries] == ["raw"] and entries[0]["pid"] == relay.proc.pid
    started = time.monotonic()
    revoke = jail.mcpjail("revoke", "raw", "--reason", "test", "--profiles", str(jail.profiles))
    assert revoke.returncode == 0, revoke.stderr
    assert "stopped 1 of 1 running session" in revoke.stdout
    reply = relay.recv(timeout=5)
    assert time.monotonic() - started < 1.5
    error = reply["result"]["structuredContent"]["error"]
    assert error["type"] == "server_revoked" and error["retryable"] is False
    assert relay.wait(timeout=5) == 78
    moved = (jail.profiles / "raw.toml.revoked").read_text()
    assert moved.startswith("# revoked ") and "test" in moved.splitlines()[0]
    assert json.loads(jail.mcpjail("ps", "--json").stdout) == []
    records = [r for r in jail.audit() if r.get("request_id") in (7, "7")]
    assert records and records[-1]["error_type"] == "server_revoked"


def test_an_edited_profile_keeps_the_running_policy_and_says_so(jail: Jail, raw_relay):
    profile = jail.raw_profile()
    relay = raw_relay("raw")
    assert "result" in relay.request(1, "ping")
    profile.write_text(profile.read_text() + "# edited\n")
    time.sleep(0.5)
    assert "result" in relay.request(2, "ping")
    relay.close_stdin()
    assert relay.wait() == 0
    assert any(r["method"] == "mcpjail/profile_changed" for r in jail.assert_audit_intact())


def test_ps_forgets_a_session_killed_with_sigkill(jail: Jail, raw_relay):
    jail.raw_profile()
    relay = raw_relay("raw")
    assert "result" in relay.request(1, "ping")
    assert len(json.loads(jail.mcpjail("ps", "--json").stdout)) == 1
    os.kill(relay.proc.pid, signal.SIGKILL)
    relay.proc.wait(timeout=5)
    assert list((jail.state / "sessions").iterdir()), "the killed session left no entry to test with"
    assert json.loads(jail.mcpjail("ps", "--json").stdout) == []
    assert list((jail.state / "sessions").iterdir()) == [], "the dead entry was not removed"
    assert "no running sessions" in jail.mcpjail("ps").stdout
