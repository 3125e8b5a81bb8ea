"""`make demo`: a real MCP client session (the official Python SDK) through
`mcpjail run time --profiles profiles`, then the audit records it left and a check of
their hash chain. Needs no root: the state directory is a fresh temporary one.

    .venv/bin/python scripts/demo.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parent.parent
MCPJAIL = ROOT / ".build" / "debug" / "mcpjail"
PROFILES = ROOT / "profiles"


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


async def session(env: dict[str, str]) -> None:
    params = StdioServerParameters(
        command=str(MCPJAIL), args=["run", "time", "--profiles", str(PROFILES)], env=env, cwd=str(ROOT)
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as client:
            init = await client.initialize()
            heading(f"connected through mcpjail to {init.server_info.name} {init.server_info.version}")
            print(f"protocol {init.protocol_version}")
            tools = await client.list_tools()
            print("tools:", ", ".join(t.name for t in tools.tools))

            heading('tools/call get_current_time {"timezone": "UTC"}')
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            if result.is_error:
                raise SystemExit(f"demo: the tool failed: {result.content}")
            print(result.content[0].text)

            heading('tools/call convert_time 09:30 Europe/Paris -> Asia/Tokyo')
            result = await client.call_tool(
                "convert_time",
                {"source_timezone": "Europe/Paris", "time": "09:30", "target_timezone": "Asia/Tokyo"},
            )
            print(result.content[0].text)

            heading('the relay refuses what the schema does not allow: get_current_time {"timezone": "UTC", "shell": "rm -rf /"}')
            result = await client.call_tool("get_current_time", {"timezone": "UTC", "shell": "rm -rf /"})
            if not result.is_error:
                raise SystemExit("demo: a smuggled argument was not refused")
            print(json.dumps(result.structured_content, indent=2))


def mcpjail(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MCPJAIL), *args], env=env, capture_output=True, text=True, timeout=30)


def main() -> int:
    state = tempfile.mkdtemp(prefix="mcpjail-demo.")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"), "MCPJAIL_STATE_DIR": state}
    print(f"state directory: {state}")
    print(f"client command:  {MCPJAIL.relative_to(ROOT)} run time --profiles profiles")

    anyio.run(session, env)

    heading("the audit log (mcpjail logs)")
    print(mcpjail(env, "logs").stdout, end="")

    heading("the audit record of the first get_current_time call (mcpjail logs --json)")
    logs = mcpjail(env, "logs", "--json")
    records = [json.loads(line) for line in logs.stdout.splitlines() if line.strip()]
    calls = [r for r in records if r.get("tool") == "get_current_time"]
    if logs.returncode != 0 or not calls:
        print(logs.stdout, logs.stderr, file=sys.stderr)
        print("demo: no audit record of the tools/call", file=sys.stderr)
        return 1
    print(json.dumps(calls[0], indent=2))

    heading("mcpjail logs --verify")
    verify = mcpjail(env, "logs", "--verify")
    print(verify.stdout + verify.stderr, end="")
    if verify.returncode != 0:
        return 1

    heading("server stderr went to its log file, not to the client")
    log = Path(state) / "logs" / "time.stderr.log"
    print(f"{log} ({log.stat().st_size if log.exists() else 0} bytes)")
    print(f"\nlook again with: MCPJAIL_STATE_DIR={state} {MCPJAIL.relative_to(ROOT)} logs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
