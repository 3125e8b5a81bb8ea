"""A tiny standard-library MCP server for `make bench`: answers initialize, tools/list and
tools/call (echoing arguments.payload back as text); ignores notifications."""

import json
import sys

TOOLS = [
    {
        "name": "echo",
        "description": "Echo the payload.",
        "inputSchema": {"type": "object", "properties": {"payload": {"type": "string"}}, "required": ["payload"]},
    }
]


def main() -> None:
    read = sys.stdin.buffer.readline
    out = sys.stdout.buffer
    while True:
        line = read()
        if not line:
            return
        msg = json.loads(line)
        if "id" not in msg:
            continue
        method = msg.get("method")
        if method == "initialize":
            result = {
                "protocolVersion": msg["params"].get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bench-echo", "version": "1.0"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": msg["params"]["arguments"]["payload"]}], "isError": False}
        elif method == "ping":
            result = {}
        else:
            out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no such method"}}).encode() + b"\n")
            out.flush()
            continue
        out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}, separators=(",", ":")).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
