"""The official Swift MCP SDK (modelcontextprotocol/swift-sdk 0.12.1, in
Sources/mcpjail-swift-client) through `mcpjail run`: a second, independent client."""

from __future__ import annotations

import json
import subprocess

from conftest import SWIFT_CLIENT, Jail


def run_swift_client(jail: Jail, name: str, *args: str) -> dict:
    proc = subprocess.run(
        [str(SWIFT_CLIENT), *args, "--", *jail.command(name)],
        env=jail.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"swift client failed ({proc.returncode}): {proc.stderr}"
    return json.loads(proc.stdout)


def test_swift_client_time_server(jail: Jail):
    jail.time_profile()
    report = run_swift_client(jail, "time", "--tool", "get_current_time", "--arguments", '{"timezone": "UTC"}')
    assert report["serverInfo"]["name"] == "mcp-time"
    assert {"get_current_time", "convert_time"} <= set(report["tools"])
    call = report["call"]
    assert call["isError"] is False
    payload = json.loads(call["content"][0]["text"])
    assert payload["timezone"] == "UTC" and payload["datetime"].endswith("+00:00")
    records = jail.assert_audit_intact()
    calls = [r for r in records if r.get("method") == "tools/call"]
    assert len(calls) == 1 and calls[0]["tool"] == "get_current_time" and calls[0]["outcome"] == "ok"


def test_swift_client_fixture_server_large_result(jail: Jail):
    # 256 KiB, not 8 MiB: swift-sdk 0.12.1's StdioTransport reads 4 KiB at a time and rescans
    # its whole buffer for a newline after each read, so its cost grows with the square of the
    # message size (1 MiB takes ~17 s in a debug build). The 8 MiB case is the Python SDK's.
    jail.fixture_profile()
    report = run_swift_client(jail, "fixture", "--tool", "big", "--arguments", '{"mib": 0.25}')
    assert report["serverInfo"]["name"] == "mcpjail-fixture"
    text = report["call"]["content"][0]["text"]
    assert len(text) == 256 * 1024 and set(text) == {"x"}
    jail.assert_audit_intact()


def test_swift_client_tool_error(jail: Jail):
    jail.time_profile()
    report = run_swift_client(jail, "time", "--tool", "get_current_time", "--arguments", '{"timezone": "Nope/Nowhere"}')
    assert report["call"]["isError"] is True
    records = jail.assert_audit_intact()
    assert [r["outcome"] for r in records if r.get("method") == "tools/call"] == ["tool_error"]


def test_swift_client_git_server(jail: Jail, git_repo):
    jail.git_profile(git_repo)
    report = run_swift_client(jail, "git", "--tool", "git_log", "--arguments", json.dumps({"repo_path": str(git_repo)}))
    assert {"git_status", "git_log", "git_diff_unstaged"} <= set(report["tools"])
    call = report["call"]
    assert call["isError"] is False
    assert "first commit through mcpjail" in call["content"][0]["text"]
    calls = [r for r in jail.assert_audit_intact() if r.get("method") == "tools/call"]
    assert [c["tool"] for c in calls] == ["git_log"] and calls[0]["outcome"] == "ok"
