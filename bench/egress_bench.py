"""`make bench`, egress section: what the egress proxy adds. In one run, the same client
(bench/egress_client.py) reaches servers on this machine's 127.0.0.1 two ways:

  direct   the client on the host
  egress   the client jailed by `mcpjail run`, `[network] egress = ["127.0.0.1:P", ...]`:
           its connections land on the jail's listener and are carried by mcpjail's
           egress proxy (accept, policy, connect out, splice both ways)

Connect time is from connect() to the server's first byte (so the proxy's own connect
out is included); bulk is a download of BULK bytes, best of REPEATS.

    .venv/bin/python bench/egress_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
CLIENT = ROOT / "bench" / "egress_client.py"
MCPJAIL = ROOT / ".build" / "release" / "mcpjail"


def serve(listener: socket.socket, payload: int) -> None:
    """Accepts forever: sends `payload` bytes (or one byte "x") and closes."""
    chunk = memoryview(bytes(1 << 20))

    def handle(conn: socket.socket) -> None:
        with conn:
            if payload == 0:
                conn.sendall(b"x")
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            left = payload
            while left > 0:
                n = min(left, len(chunk))
                conn.sendall(chunk[:n])
                left -= n

    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def listen(payload: int) -> tuple[socket.socket, int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    threading.Thread(target=serve, args=(listener, payload), daemon=True).start()
    return listener, listener.getsockname()[1]


def run(argv: list[str], env: dict, log: Path | None) -> dict:
    # stdin stays open until the client is done, as an MCP client's does: at EOF on its stdin
    # `mcpjail run` stops the server (after [server] stop_timeout, 2 s by default).
    read_end, write_end = os.pipe()
    try:
        done = subprocess.run(argv, env=env, stdin=read_end, capture_output=True, text=True, timeout=300)
    finally:
        os.close(read_end)
        os.close(write_end)
    text = (log.read_text() if log.exists() else "") if log else done.stderr
    lines = [l for l in text.splitlines() if l.startswith("EGRESS-BENCH ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"egress bench failed ({done.returncode}): {done.stderr}\n{text}")
    return json.loads(lines[-1].split(" ", 1)[1])


def measure(quick: bool = False, rounds: int = 3) -> str:
    bulk = (256 if quick else 1024) << 20
    connects = 100 if quick else 400
    connect_listener, connect_port = listen(0)
    bulk_listener, bulk_port = listen(bulk)
    tmp = Path(tempfile.mkdtemp(prefix="mcpjail-egress-bench."))
    (tmp / "profiles").mkdir()
    (tmp / "profiles" / "egress.toml").write_text(
        "[server]\n"
        f"command = {json.dumps(str(PY.parent.parent.resolve() / 'bin' / 'python'))}\n"
        f"args = {json.dumps([str(CLIENT), str(connect_port), str(bulk_port), str(connects), str(bulk), '3'])}\n"
        "pinned = false\n"  # the bench measures the egress path; pins are measured by bench/pins.py
        "[filesystem]\n"
        f"read_only = [\"/usr\", {json.dumps(str(PY.parent.parent.resolve()))}, {json.dumps(str(ROOT / 'bench'))}]\n"
        "[network]\n"
        f"egress = [\"127.0.0.1:{connect_port}\", \"127.0.0.1:{bulk_port}\"]\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "MCPJAIL_STATE_DIR": str(tmp / "state")}
    direct_argv = [str(PY), str(CLIENT), str(connect_port), str(bulk_port), str(connects), str(bulk), "3"]
    jailed_argv = [str(MCPJAIL), "run", "egress", "--profiles", str(tmp / "profiles")]
    log = tmp / "state" / "logs" / "egress.stderr.log"
    results: dict[str, list[dict]] = {"direct": [], "egress": []}
    for _ in range(rounds):
        results["direct"].append(run(direct_argv, env, None))
        if log.exists():
            log.unlink()
        results["egress"].append(run(jailed_argv, env, log))
    connect_listener.close()
    bulk_listener.close()

    def med(way: str, key: str) -> float:
        return statistics.median(r[key] for r in results[way])

    d_connect, e_connect = med("direct", "connect_p50"), med("egress", "connect_p50")
    d_p99, e_p99 = med("direct", "connect_p99"), med("egress", "connect_p99")
    d_bulk, e_bulk = med("direct", "bulk_bytes_per_s"), med("egress", "bulk_bytes_per_s")
    gb = 1e9
    lines = [
        "",
        f"egress proxy (127.0.0.1, median of {rounds} rounds; {connects} connects, {bulk >> 20} MiB downloads):",
        "| metric | direct | through the egress proxy | added / ratio |",
        "|---|---|---|---|",
        f"| connect to first byte, p50 | {d_connect * 1e6:.0f} µs | {e_connect * 1e6:.0f} µs | +{(e_connect - d_connect) * 1e6:.0f} µs |",
        f"| connect to first byte, p99 | {d_p99 * 1e6:.0f} µs | {e_p99 * 1e6:.0f} µs | +{(e_p99 - d_p99) * 1e6:.0f} µs |",
        f"| bulk download | {d_bulk / gb:.2f} GB/s | {e_bulk / gb:.2f} GB/s | {e_bulk / d_bulk:.2f} |",
        f"targets: added connect time <= 1 ms (p50 {'met' if e_connect - d_connect <= 1e-3 else 'MISSED'}); "
        f"bulk >= 1 GB/s ({'met' if e_bulk >= gb else 'MISSED'})",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    if not MCPJAIL.exists():
        print(f"bench: {MCPJAIL} is missing (make release)", file=sys.stderr)
        return 1
    print(measure(quick=opts.quick, rounds=opts.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
