"""`make bench`: what the relay costs. In one run, the same tiny echo MCP server
(bench/echo_server.py) is reached three ways:

  direct   the server launched directly
  cat      `cat | server | cat` (sh -c): the reference byte-copying relay
  mcpjail  `mcpjail run echo` (release build, .build/release/mcpjail) with a temp profile

and measured for: launch-to-initialize time, per-call latency p50/p99 at 1 in flight,
throughput at 64 in flight, with 100 B and 64 KiB payloads, and the relay's own CPU time per call; then mcpjail's resident memory (VmRSS, and VmHWM)
with an 8 MiB message in flight; then the egress proxy (bench/egress_bench.py): connect time
and bulk throughput to 127.0.0.1, direct vs jailed through the proxy. Every figure is the median over ROUNDS rounds (start-up: --startup-rounds, 20 by default), the three
ways interleaved within each round so that machine noise hits them alike.

    .venv/bin/python bench/bench.py [--rounds N] [--startup-rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Resolved: a worktree may link .venv to another checkout's (the jail binds the real path).
VENV = (ROOT / ".venv").resolve()
PY = VENV / "bin" / "python"
ECHO = ROOT / "bench" / "echo_server.py"
MCPJAIL = ROOT / ".build" / "release" / "mcpjail"
MIB = 1024 * 1024

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


class Session:
    """One server reached one way, spoken to over raw pipes (the client's cost is the same
    for all three ways)."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0)
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.buf = b""
        self.next_id = 1

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[: i + 1], self.buf[i + 1 :]
                return line
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise EOFError("the server closed its stdout")
            self.buf += chunk

    def initialize(self) -> None:
        self.write(json.dumps(INIT).encode() + b"\n")
        reply = json.loads(self.readline())
        assert reply["id"] == 0 and "result" in reply, reply
        self.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

    def call_bytes(self, payload: str) -> bytes:
        msg_id = self.next_id
        self.next_id += 1
        return (
            b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"payload":%s}}}\n'
            % (msg_id, json.dumps(payload).encode())
        )

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def check_reply(line: bytes, payload_len: int) -> None:
    # Cheap: the echoed payload makes the reply at least that long.
    if len(line) < payload_len or b'"result"' not in line:
        raise AssertionError(f"bad reply: {line[:200]!r}")


def launch_to_initialize(argv, env) -> float:
    start = time.perf_counter()
    session = Session(argv, env)
    session.initialize()
    elapsed = time.perf_counter() - start
    session.close()
    return elapsed


def relay_pids(session: Session) -> list[int]:
    """The relay's processes: the two cats of `cat | server | cat`, mcpjail itself (its server is
    another process), none for the direct server."""
    pid = session.proc.pid
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    if comm == "mcpjail":
        return [pid]
    if comm == "sh":
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(c) for c in children if Path(f"/proc/{c}/comm").read_text().strip() == "cat"]
    return []


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of every thread of `pids` (schedstat: nanoseconds, not clock ticks)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def latency(argv, env, payload: str, calls: int) -> tuple[float, float, float]:
    """p50 and p99 of one call at a time, and the relay's CPU time per call."""
    session = Session(argv, env)
    session.initialize()
    for _ in range(20):  # warm-up
        session.write(session.call_bytes(payload))
        session.readline()
    relay = relay_pids(session)
    cpu_before = cpu_seconds(relay)
    samples = []
    for _ in range(calls):
        data = session.call_bytes(payload)
        start = time.perf_counter()
        session.write(data)
        line = session.readline()
        samples.append(time.perf_counter() - start)
        check_reply(line, len(payload))
    cpu_per_call = (cpu_seconds(relay) - cpu_before) / calls
    session.close()
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))], cpu_per_call


def write_latency(argv, env, calls: int) -> tuple[float, float]:
    """p50 of a first write (a fresh idempotency key: two durable store writes) and of its
    replay (the stored result, the server not contacted)."""
    session = Session(argv, env)
    session.initialize()

    def timed(payload: str) -> float:
        data = session.call_bytes(payload)
        start = time.perf_counter()
        session.write(data)
        line = session.readline()
        elapsed = time.perf_counter() - start
        check_reply(line, len(payload))
        return elapsed

    run_id = f"{time.time_ns()}-"
    for i in range(20):  # warm-up (and the catalog load)
        timed(f"{run_id}warm{i}")
    first = [timed(f"{run_id}{i:08d}") for i in range(calls)]
    replay = [timed(f"{run_id}{i:08d}") for i in range(calls)]
    session.close()
    return statistics.median(first), statistics.median(replay)


def throughput(argv, env, payload: str, calls: int, in_flight: int = 64) -> float:
    session = Session(argv, env)
    session.initialize()
    messages = [session.call_bytes(payload) for _ in range(calls)]
    window = threading.Semaphore(in_flight)
    failure: list[BaseException] = []

    def writer() -> None:
        try:
            for data in messages:
                window.acquire()
                session.write(data)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    start = time.perf_counter()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    for _ in range(calls):
        check_reply(session.readline(), len(payload))
        window.release()
    elapsed = time.perf_counter() - start
    thread.join()
    session.close()
    if failure:
        raise failure[0]
    return calls / elapsed


def vm_hwm_kib(pid: int) -> int:
    return status_kib(pid, "VmHWM")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def peak_rss_with_big_message(argv, env) -> tuple[float, float, float, float]:
    """mcpjail's memory in MiB: resident after warm-up; the most resident seen (VmRSS sampled
    every millisecond) while an 8 MiB request and its 8 MiB reply are in flight; and VmHWM,
    the lifetime peak (start-up included), before and after."""
    session = Session(argv, env)
    session.initialize()
    session.write(session.call_bytes("x" * 100))
    session.readline()
    pid = session.proc.pid
    time.sleep(0.1)  # the relay releases its start-up pages just after the first call's answer
    idle = status_kib(pid, "VmRSS")
    hwm_before = vm_hwm_kib(pid)
    payload = "x" * (8 * MIB)
    data = session.call_bytes(payload)
    reader_line: list[bytes] = []
    reader = threading.Thread(target=lambda: reader_line.append(session.readline()), daemon=True)
    in_flight_max = [idle]

    def sample() -> None:
        while reader.is_alive():
            in_flight_max[0] = max(in_flight_max[0], status_kib(pid, "VmRSS"))
            time.sleep(0.001)

    reader.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    session.write(data)
    reader.join(timeout=60)
    sampler.join(timeout=5)
    check_reply(reader_line[0], len(payload))
    hwm_after = vm_hwm_kib(pid)
    session.close()
    return idle / 1024, in_flight_max[0] / 1024, hwm_before / 1024, hwm_after / 1024


def bwrap_argv() -> list[str]:
    """The same echo server under bubblewrap with every namespace unshared: the reference
    for what a jail's start-up costs."""
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for link in ("/bin", "/sbin", "/lib", "/lib64"):
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
    argv += ["--ro-bind", str(VENV), str(VENV), "--ro-bind", str(ROOT / "bench"), str(ROOT / "bench")]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", str(PY), str(ECHO)]
    return argv


def teardown_after_eof(argv, env) -> float:
    """From the client's EOF to the launched process's exit."""
    session = Session(argv, env)
    session.initialize()
    killer = threading.Timer(30, session.proc.kill)  # a stuck teardown must not hang the bench
    killer.start()
    start = time.perf_counter()
    session.proc.stdin.close()
    # A blocking waitpid: wait(timeout=...) polls with sleeps doubling from 0.5 ms, which
    # rounded every teardown up to 3.5, 7.5 or 15.5 ms.
    session.proc.wait()
    elapsed = time.perf_counter() - start
    killer.cancel()
    session.proc.stdout.close()
    return elapsed


def jail_startup(ways: dict, env: dict, rounds: int) -> str:
    """Start-up and teardown: direct vs bwrap --unshare-all vs mcpjail run (full jail + relay)."""
    if not shutil.which("bwrap"):
        raise SystemExit("bench: bwrap is missing (make deps installs bubblewrap)")
    contenders = {"direct": ways["direct"], "bwrap --unshare-all": bwrap_argv(), "mcpjail run": ways["mcpjail"]}
    launch: dict[str, list[float]] = {k: [] for k in contenders}
    down: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, argv in contenders.items():
            launch[name].append(statistics.median(launch_to_initialize(argv, env) for _ in range(5)))
            down[name].append(statistics.median(teardown_after_eof(argv, env) for _ in range(3)))
    med = {k: statistics.median(v) for k, v in launch.items()}
    tear = {k: statistics.median(v) for k, v in down.items()}
    lines = ["", "| start-up (median of %d rounds) | launch-to-initialize | added over direct | teardown after EOF |" % rounds, "|---|---|---|---|"]
    for name in contenders:
        lines.append(f"| {name} | {fmt_time(med[name])} | {fmt_time(max(0.0, med[name] - med['direct']))} | {fmt_time(tear[name])} |")
    added_jail = med["mcpjail run"] - med["direct"]
    added_bwrap = med["bwrap --unshare-all"] - med["direct"]
    if added_bwrap > 0:
        lines.append(f"mcpjail's added start-up / bwrap's: {added_jail / added_bwrap:.2f} (target <= 1.0); teardown target < 10 ms")
    else:
        lines.append(f"bwrap's added start-up measured {added_bwrap * 1000:.2f} ms this run (within noise); mcpjail's: {added_jail * 1000:.2f} ms; teardown target < 10 ms")
    return "\n".join(lines)


def fmt_time(seconds: float) -> str:
    if seconds >= 0.1:
        return f"{seconds * 1000:.0f} ms"
    if seconds >= 0.001:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    # Start-up needs more: one launch is ~20 ms, and 5 rounds gave mcpjail's added start-up
    # 1.27x and 1.54x bwrap's in two runs of nearly the same code.
    parser.add_argument("--startup-rounds", type=int, help="rounds of the start-up table, 5 launches each way a round (20; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    parser.add_argument("--startup-only", action="store_true", help="only the start-up and teardown table")
    opts = parser.parse_args()
    if opts.startup_rounds is None:
        opts.startup_rounds = 3 if opts.quick else 20
    if not MCPJAIL.exists():
        print(f"bench: {MCPJAIL} is missing (make release)", file=sys.stderr)
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="mcpjail-bench."))
    (tmp / "profiles").mkdir()
    (tmp / "profiles" / "echo.toml").write_text(
        "[server]\n"
        f"command = {json.dumps(str(PY))}\n"
        f"args = [{json.dumps(str(ECHO))}]\n"
        'env = { PATH = "/usr/bin:/bin" }\n'
        "pinned = false\n"  # bench measures the relay; pins are measured on their own below
        "[filesystem]\n"
        f"read_only = [\"/usr\", {json.dumps(str(VENV))}, {json.dumps(str(ROOT / 'bench'))}]\n"
        # The full relay policy: the tool allow-list and strict schema validation of every call.
        "[tools.echo]\n"
    )
    # The same server with its tool marked as a write: idempotent at the relay.
    (tmp / "profiles" / "echo-write.toml").write_text(
        (tmp / "profiles" / "echo.toml").read_text().replace("[tools.echo]\n", "[tools.echo]\nwrite = true\n")
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "MCPJAIL_STATE_DIR": str(tmp / "state")}
    server = f"{shlex.quote(str(PY))} {shlex.quote(str(ECHO))}"
    ways = {
        "direct": [str(PY), str(ECHO)],
        "cat": ["/bin/sh", "-c", f"cat | {server} | cat"],
        "mcpjail": [str(MCPJAIL), "run", "echo", "--profiles", str(tmp / "profiles")],
    }
    small, large = "x" * 100, "x" * (64 * 1024)
    scale = 0.2 if opts.quick else 1.0
    n_lat = {"100 B": int(2000 * scale), "64 KiB": int(400 * scale)}
    n_thr = {"100 B": int(8000 * scale), "64 KiB": int(1000 * scale)}
    payloads = {"100 B": small, "64 KiB": large}

    results: dict[tuple[str, str], list[float]] = {}

    def add(metric: str, way: str, value: float) -> None:
        results.setdefault((metric, way), []).append(value)

    started = time.perf_counter()
    for argv in ways.values():  # warm the page cache: the first launch of anything is slow
        launch_to_initialize(argv, env)
    if opts.startup_only:
        print(jail_startup(ways, env, rounds=opts.startup_rounds))
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    for r in range(opts.rounds):
        for way, argv in ways.items():
            launches = [launch_to_initialize(argv, env) for _ in range(5)]
            add("launch-to-initialize", way, statistics.median(launches))
            for label, payload in payloads.items():
                p50, p99, cpu = latency(argv, env, payload, n_lat[label])
                add(f"latency p50, {label}", way, p50)
                add(f"latency p99, {label}", way, p99)
                add(f"relay CPU per call @1, {label}", way, cpu)
                add(f"throughput @64, {label}", way, throughput(argv, env, payload, n_thr[label]))
        print(f"bench: round {r + 1}/{opts.rounds} done ({time.perf_counter() - started:.0f} s)", flush=True)

    write_argv = [str(MCPJAIL), "run", "echo-write", "--profiles", str(tmp / "profiles")]
    write_rounds = [write_latency(write_argv, env, int(500 * scale)) for _ in range(opts.rounds)]
    read_p50 = statistics.median(results[("latency p50, 100 B", "mcpjail")])
    first_p50 = statistics.median(r[0] for r in write_rounds)
    replay_p50 = statistics.median(r[1] for r in write_rounds)
    rss_idle, rss_in_flight, hwm_before, hwm_after = peak_rss_with_big_message(ways["mcpjail"], env)
    jail_table = jail_startup(ways, env, rounds=opts.startup_rounds)

    metrics = list(dict.fromkeys(m for m, _ in results))
    rows = []
    for metric in metrics:
        med = {way: statistics.median(results[(metric, way)]) for way in ways}
        is_rate = metric.startswith("throughput")
        cell = (lambda v: f"{v:,.0f} calls/s") if is_rate else fmt_time
        rows.append(
            [
                metric,
                cell(med["direct"]) if med["direct"] else "-",
                cell(med["cat"]),
                cell(med["mcpjail"]),
                f"{med['mcpjail'] / med['cat']:.2f}",
                f"{med['mcpjail'] / med['direct']:.2f}" if med["direct"] else "-",
            ]
        )
    header = ["metric (median of %d rounds)" % opts.rounds, "direct", "cat | server | cat", "mcpjail run", "mcpjail/cat", "mcpjail/direct"]
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"
    print()
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |")
    print()
    print(
        f"mcpjail resident memory (VmRSS): {rss_idle:.1f} MiB after warm-up, at most {rss_in_flight:.1f} MiB while an "
        f"8 MiB request and its 8 MiB reply are in flight (target < 20 MiB); lifetime peak (VmHWM, start-up "
        f"included): {hwm_before:.1f} MiB before, {hwm_after:.1f} MiB after"
    )
    print(jail_table)
    print(
        f"\nwrite tools (idempotency, SQLite synchronous=FULL in the state directory), 100 B calls, median of "
        f"{opts.rounds} rounds:\n"
        f"| call through mcpjail run | p50 |\n|---|---|\n"
        f"| read tool (no idempotency), from the table above | {fmt_time(read_p50)} |\n"
        f"| write tool, first call (key recorded, result stored) | {fmt_time(first_p50)} |\n"
        f"| write tool, replay (stored result, server not contacted) | {fmt_time(replay_p50)} |\n"
        f"idempotency adds {fmt_time(first_p50 - read_p50)} to a first write (target < 1 ms); replay {fmt_time(replay_p50)} (target < 200 us)"
    )
    sys.path.insert(0, str(ROOT / "bench"))
    import egress_bench  # noqa: E402 - beside this file

    print(egress_bench.measure(quick=opts.quick, rounds=max(3, opts.rounds)))
    microbench = ROOT / ".build" / "release" / "mcpjail-microbench"
    if microbench.exists():
        print("\nschema validation (mcpjail-microbench, target < 10 us per typical tool call):")
        print(subprocess.run([str(microbench)], capture_output=True, text=True, timeout=600).stdout)
    print("latency and launch: lower is better (ratio <= 1.0 means mcpjail costs no more); throughput: higher is better (ratio >= 1.0)")
    print(
        "relay CPU per call: the CPU time of the relay's own processes (the two cats; mcpjail's threads) over the latency "
        "run, divided by its calls; mcpjail's includes polling for the next message ([limits] relay_spin)"
    )
    cpu = os.cpu_count()
    print(f"machine: {cpu} CPUs, {os.uname().release}; mcpjail: {MCPJAIL.relative_to(ROOT)}; calls per latency run {n_lat}, per throughput run {n_thr}")
    print(f"bench: {time.perf_counter() - started:.0f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
