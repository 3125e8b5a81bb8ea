"""The egress benchmark's client: connect time (connect until the server's first byte) and
bulk download throughput to 127.0.0.1, printed as one JSON line on stderr. Run directly and
jailed (`mcpjail run` with `[network] egress` naming the two ports) by bench/egress_bench.py.

    egress_client.py CONNECT_PORT BULK_PORT CONNECTS BULK_BYTES REPEATS
"""

import json
import socket
import statistics
import sys
import time


def main() -> None:
    connect_port, bulk_port, connects, bulk_bytes, repeats = (int(a) for a in sys.argv[1:6])
    times = []
    for _ in range(connects):
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", connect_port)) as sock:
            if sock.recv(1) != b"x":
                raise SystemExit("no first byte")
        times.append(time.perf_counter() - start)
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    rates = []
    for _ in range(repeats):
        with socket.create_connection(("127.0.0.1", bulk_port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            got = 0
            start = time.perf_counter()
            while True:
                n = sock.recv_into(view)
                if n == 0:
                    break
                got += n
            elapsed = time.perf_counter() - start
        if got != bulk_bytes:
            raise SystemExit(f"short read {got}")
        rates.append(got / elapsed)
    print("EGRESS-BENCH " + json.dumps({"connect_p50": statistics.median(times), "connect_p99": sorted(times)[int(len(times) * 0.99) - 1],
                                        "bulk_bytes_per_s": max(rates), "bulk_median": statistics.median(rates)}), file=sys.stderr)


if __name__ == "__main__":
    main()
