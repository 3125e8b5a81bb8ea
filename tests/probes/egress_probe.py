"""Tries network destinations and reports what happened, as JSON.

    egress_probe.py ATTEMPTS.json RESULTS.json

Each attempt is {"id": ..., "kind": "tcp" | "dns" | "udp" | "curl" | "idle" | "many" | "refused", ...}
("family": 6 resolves a name for IPv6 only); each
result is {"ok": bool, "errno": "ECONNREFUSED" | ..., "error": "...", "body": "...",
"seconds": float}. Run jailed (through `mcpjail run`) and unjailed, the same probe shows
what the egress allow-list lets out and what it stops.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import time


def failure(exc: BaseException, started: float) -> dict:
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, None) if isinstance(code, int) and code > 0 else None
    if isinstance(exc, socket.gaierror):
        name = "EAI_NONAME" if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)) else f"EAI_{exc.errno}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        name = "TIMEOUT"
    return {"ok": False, "errno": name, "error": repr(exc), "seconds": round(time.monotonic() - started, 3)}


def http_get(sock: socket.socket, host: str) -> str:
    sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    if not data:
        raise ConnectionResetError(errno.ECONNRESET, "closed without a response")
    return data.decode(errors="replace")


def attempt(a: dict) -> dict:
    started = time.monotonic()
    try:
        kind = a["kind"]
        if kind == "tcp":
            family = socket.AF_INET6 if ":" in a["host"] or a.get("family") == 6 else 0
            if a.get("family") == 6:  # a name, resolved for IPv6 only (AAAA)
                infos = socket.getaddrinfo(a["host"], a["port"], socket.AF_INET6, socket.SOCK_STREAM)
                sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                sock.settimeout(10)
                sock.connect(infos[0][4])
            elif family:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.settimeout(10)
                sock.connect((a["host"], a["port"]))
            else:
                sock = socket.create_connection((a["host"], a["port"]), timeout=10)
            with sock:
                body = http_get(sock, a["host"])
            return {"ok": True, "body": body[-200:], "seconds": round(time.monotonic() - started, 3)}
        if kind == "connect":
            # Connect, send a line, and leave (the connection stays open until the process exits).
            sock = socket.create_connection((a["host"], a["port"]), timeout=10)
            sock.sendall(b"hello\n")
            globals().setdefault("held", []).append(sock)
            return {"ok": True, "seconds": round(time.monotonic() - started, 3)}
        if kind == "abstract":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect("\0" + a["name"])
            return {"ok": True, "seconds": round(time.monotonic() - started, 3)}
        if kind == "sleep":
            open(a["marker"], "w").close()
            time.sleep(a["seconds"])
            return {"ok": True, "seconds": round(time.monotonic() - started, 3)}
        if kind == "dns":
            infos = socket.getaddrinfo(a["host"], 80, proto=socket.IPPROTO_TCP)
            return {"ok": True, "body": sorted({i[4][0] for i in infos}), "seconds": round(time.monotonic() - started, 3)}
        if kind == "udp":
            family = socket.AF_INET6 if a.get("family") == 6 else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(3)
                sock.connect((a["host"], a["port"]))
                sock.send(b"probe")
                sock.recv(100)
            return {"ok": True, "seconds": round(time.monotonic() - started, 3)}
        if kind == "refused":
            # Connect to each of `ports` on `host`, `repeat` times each: how many were refused.
            refused = 0
            for port in a["ports"]:
                for _ in range(a.get("repeat", 1)):
                    try:
                        socket.create_connection((a["host"], port), timeout=5).close()
                    except ConnectionRefusedError:
                        refused += 1
            return {"ok": True, "body": refused, "seconds": round(time.monotonic() - started, 3)}
        if kind == "idle":
            # Connect, stay silent past the idle timeout, then see whether the connection lives.
            with socket.create_connection((a["host"], a["port"]), timeout=10) as sock:
                time.sleep(a["sleep"])
                try:
                    sock.sendall(f"GET / HTTP/1.0\r\nHost: {a['host']}\r\n\r\n".encode())
                    data = sock.recv(65536)
                except OSError as exc:
                    return failure(exc, started)
            return {"ok": bool(data), "errno": None if data else "EOF", "seconds": round(time.monotonic() - started, 3)}
        if kind == "many":
            # Hold `count` connections open at once; report how many got a response.
            # (A refused one may be reset while connect() is still returning.) One address:
            # create_connection would try the name's next address (IPv6, IPv4) after a reset,
            # and each try is a refusal of its own in the audit log.
            address = socket.getaddrinfo(a["host"], a["port"], socket.AF_INET, socket.SOCK_STREAM)[0][4]
            socks = []
            for _ in range(a["count"]):
                try:
                    socks.append(socket.create_connection(address, timeout=10))
                except OSError:
                    pass
            time.sleep(0.5)
            answered = 0
            for sock in socks:
                try:
                    http_get(sock, a["host"])
                    answered += 1
                except OSError:
                    pass
                sock.close()
            return {"ok": True, "body": answered, "seconds": round(time.monotonic() - started, 3)}
        if kind == "curl":
            done = subprocess.run(["curl", "-sS", "--max-time", "10", *a.get("args", []), a["url"]],
                                  capture_output=True, text=True, timeout=20)
            return {"ok": done.returncode == 0, "errno": f"curl:{done.returncode}", "body": done.stdout[-200:],
                    "error": done.stderr[-300:], "seconds": round(time.monotonic() - started, 3)}
        raise ValueError(f"unknown kind {kind}")
    except Exception as exc:  # noqa: BLE001 - every failure is a result
        return failure(exc, started)


def main() -> None:
    attempts = json.loads(open(sys.argv[1]).read())
    results = {a["id"]: attempt(a) for a in attempts}
    with open(sys.argv[2], "w") as out:
        json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
