"""`make bench` (second part): what verifying pins costs `mcpjail run`.

Generates a venv-sized tree (FILES files, MB megabytes in a few hundred directories, some
links), pins it as the `code` of the bench's echo server, and starts `mcpjail run` on it
again and again, reading the times mcpjail logs at debug level for its two steps:

  lock         before anything starts: read NAME.lock and the pin cache, check the lock
               pins this profile (a lock whose bytes the cache knows is not parsed)
  check        after the jail's mounts, before exec: walk the tree through the jail's
               root, re-hashing only what the pin cache does not know by inode, size,
               mode, mtime and ctime, and compare with the lock

cold = no pin cache (every file hashed; the files themselves are in the page cache), warm =
the cache a previous run left. Also the launch-to-initialize time, pinned and unpinned.
Every figure is the median of ROUNDS runs. The target: a warm check under 50 ms.

    .venv/bin/python bench/pins.py [--rounds N] [--files 5000] [--mb 50] [--mcpjail PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
ECHO = ROOT / "bench" / "echo_server.py"
INIT = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}) + "\n"
LOCK = re.compile(r"lock of \S+ read and checked in (\d+) µs")
JAIL = re.compile(r"pins of \S+ verified in the jail in (\d+) µs: (\d+) entries, (\d+) files \((\d+) bytes\) hashed")


def make_tree(root: Path, files: int, total_bytes: int) -> tuple[int, int]:
    """A venv-like tree: many small files, a few large ones, ~12 files per directory."""
    rng = random.Random(42)
    weights = [rng.lognormvariate(0, 1.6) for _ in range(files)]
    scale = total_bytes / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] += total_bytes - sum(sizes)
    directories = [root]
    written = 0
    for index, size in enumerate(sizes):
        if index % 12 == 0:
            parent = rng.choice(directories[-40:])
            directory = parent / f"pkg{index // 12:04d}"
            directory.mkdir()
            directories.append(directory)
        path = directories[-1] / f"module_{index:05d}.py"
        path.write_bytes(rng.randbytes(size))
        written += size
        if index % 250 == 0:
            (directories[-1] / f"link_{index:05d}").symlink_to(path.name)
    # Old times, as an installed venv has; and since setting them is itself a change (the
    # ctime), wait until no file counts as just changed (racily clean, never cached).
    past = time.time() - 3600
    for path in root.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)
    time.sleep(3)
    return len(sizes), written


def run_once(mcpjail: Path, profiles: Path, name: str, env: dict) -> tuple[float, dict]:
    """One `mcpjail run NAME` to its initialize reply; the launch time and the logged checks."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(mcpjail), "run", name, "--profiles", str(profiles)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env,
    )
    proc.stdin.write(INIT.encode())
    proc.stdin.flush()
    line = proc.stdout.readline()
    launched = time.perf_counter() - start
    _, err = proc.communicate(timeout=30)
    text = err.decode(errors="replace")
    if b'"result"' not in line:
        raise SystemExit(f"bench: mcpjail run {name} failed: {line!r}\n{text}")
    found = {}
    match = LOCK.search(text)
    if match:
        found["lock"] = (int(match.group(1)) / 1e6, 0, 0)
    match = JAIL.search(text)
    if match:
        found["jail"] = (int(match.group(1)) / 1e6, int(match.group(3)), int(match.group(4)))
    return launched, found


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--mcpjail", type=Path, default=ROOT / ".build" / "release" / "mcpjail")
    opts = parser.parse_args()
    if not opts.mcpjail.exists():
        print(f"bench: {opts.mcpjail} is missing (make release)", file=sys.stderr)
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="mcpjail-bench-pins."))
    os.chmod(tmp, 0o755)
    try:
        tree = tmp / "venv"
        tree.mkdir()
        count, size = make_tree(tree, opts.files, opts.mb * 1_000_000)
        profiles = tmp / "profiles"
        profiles.mkdir()
        common = (
            f"command = {json.dumps(str(PY))}\nargs = [{json.dumps(str(ECHO))}]\n"
            f"code = [{json.dumps(str(tree))}]\n"
        )
        filesystem = f"[filesystem]\nread_only = [\"/usr\", {json.dumps(str(ROOT / '.venv'))}, {json.dumps(str(ROOT / 'bench'))}]\n[tools.echo]\n"
        (profiles / "pinned.toml").write_text("[server]\n" + common + filesystem)
        (profiles / "unpinned.toml").write_text("[server]\n" + common + "pinned = false\n" + filesystem)
        state = tmp / "state"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "MCPJAIL_STATE_DIR": str(state), "MCPJAIL_LOG_LEVEL": "debug"}

        started = time.perf_counter()
        pinned = subprocess.run([str(opts.mcpjail), "pin", "pinned", "--profiles", str(profiles)], env=env, capture_output=True, text=True)
        pin_time = time.perf_counter() - started
        if pinned.returncode != 0:
            raise SystemExit(f"bench: mcpjail pin failed: {pinned.stderr}")
        cache = state / "pins-cache" / "pinned.bin"

        rows: dict[str, dict[str, list]] = {k: {"launch": [], "lock": [], "jail": []} for k in ("unpinned", "cold", "warm")}
        for _ in range(opts.rounds):
            launched, _ = run_once(opts.mcpjail, profiles, "unpinned", env)
            rows["unpinned"]["launch"].append(launched)
            cache.unlink(missing_ok=True)
            for kind in ("cold", "warm"):
                launched, found = run_once(opts.mcpjail, profiles, "pinned", env)
                rows[kind]["launch"].append(launched)
                rows[kind]["lock"].append(found["lock"])
                rows[kind]["jail"].append(found["jail"])

        def median_time(values: list) -> str:
            return fmt(statistics.median(v[0] for v in values)) if values else "-"

        def hashed(values: list) -> str:
            if not values:
                return "-"
            files = statistics.median(v[1] for v in values)
            return f"{files:.0f} files, {statistics.median(v[2] for v in values) / 1e6:.1f} MB"

        print()
        print(f"| pins: {count} files, {size / 1e6:.0f} MB (median of {opts.rounds}) | lock | check in the jail | hashed | launch-to-initialize |")
        print("|---|---|---|---|---|")
        for kind, label in (("unpinned", "pinned = false"), ("cold", "pinned, no pin cache"), ("warm", "pinned, warm pin cache")):
            row = rows[kind]
            print(f"| {label} | {median_time(row['lock'])} | {median_time(row['jail'])} | {hashed(row['jail'])} | {fmt(statistics.median(row['launch']))} |")
        warm = statistics.median(v[0] for v in rows["warm"]["lock"]) + statistics.median(v[0] for v in rows["warm"]["jail"])
        added = statistics.median(rows["warm"]["launch"]) - statistics.median(rows["unpinned"]["launch"])
        print(f"warm: lock + check {fmt(warm)} (target < 50 ms); start-up added over pinned = false: {fmt(added)}; `mcpjail pin` (hashes everything): {fmt(pin_time)}")
        print(f"machine: {os.cpu_count()} CPUs, {os.uname().release}; mcpjail: {opts.mcpjail}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
