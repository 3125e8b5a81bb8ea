"""[limits] in a jailed session: a fork bomb and a memory hog are stopped by the session's
cgroup, wall_time ends the session, the client hears which limit, the audit log says so,
and no cgroup is left behind. Each probe is also run without the limit (the companion).

cgroups need root on this kind of host (cgroup v1); CI runs as root, so these must pass
there. As an ordinary user the strict refusal itself is what is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import Jail, VENV_BIN

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="cgroups need root here")


def add_limits(profile: Path, *lines: str) -> None:
    profile.write_text(profile.read_text() + "[limits]\n" + "".join(line + "\n" for line in lines))


FORK_BOMB = """
import os, signal, sys, time
children = []
for _ in range(60):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
sys.stderr.write(f"started={len(children)}\\n")
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
"""


@ROOT_ONLY
def test_pids_limit_stops_a_fork_bomb(jail: Jail):
    profile = jail.write_profile("bomb", str(VENV_BIN / "python"), ["-c", FORK_BOMB])
    add_limits(profile, "pids = 20")
    done = subprocess.run(jail.command("bomb"), env=jail.env(), input=b"", capture_output=True, timeout=60)
    log = jail.stderr_log("bomb")
    assert "started=" in log, (done.returncode, done.stderr, log)
    started = int(log.split("started=")[1].split()[0])
    assert started < 20, f"{started} processes started under pids = 20"
    assert b"its pids limit was reached" in done.stderr
    # Companion: the same script without the limit starts all 60.
    free = subprocess.run([str(VENV_BIN / "python"), "-c", FORK_BOMB], capture_output=True, text=True, timeout=60)
    assert "started=60" in free.stderr, free.stderr


HOG = "import sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); blocks = [bytearray(16 << 20) for _ in range(16)]; sys.stderr.write('allocated\\n')"


@ROOT_ONLY
def test_memory_limit_kills_the_session_and_says_so(jail: Jail):
    profile = jail.write_profile("hog", str(VENV_BIN / "python"), ["-c", HOG])
    add_limits(profile, 'memory = "64M"')
    done = subprocess.run(jail.command("hog"), env=jail.env(), input=b"", capture_output=True, timeout=60)
    assert done.returncode == 128 + 9, (done.returncode, done.stderr)
    assert b"memory limit was reached" in done.stderr
    assert "allocated" not in jail.stderr_log("hog")
    # Companion: 256 MiB is allowed without the limit.
    free = subprocess.run([str(VENV_BIN / "python"), "-c", HOG], capture_output=True, text=True, timeout=60)
    assert "allocated" in free.stderr


def test_wall_time_ends_the_session_and_answers_in_flight_calls(jail: Jail, raw_relay):
    profile = jail.raw_profile("slow")
    add_limits(profile, 'wall_time = "2s"', 'enforce = "best-effort"')
    relay = raw_relay("slow")
    relay.send_json({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "hang", "arguments": {}}})
    rc = relay.wait(timeout=20)
    assert rc == 128 + 9
    (reply,) = [json.loads(line) for line in relay.rest()]
    error = reply["result"]["structuredContent"]["error"]
    assert error == {"type": "limit_exceeded", "message": "the server was stopped: its wall_time limit was reached", "retryable": False}
    hung = [r for r in jail.assert_audit_intact() if r.get("tool") == "hang"]
    assert hung[0]["outcome"] == "no_response" and hung[0]["decided_by"] == "limits.wall_time"


@ROOT_ONLY
def test_no_cgroup_outlives_the_session(jail: Jail, raw_relay):
    profile = jail.raw_profile("counted")
    add_limits(profile, 'memory = "256M"', "pids = 64")
    relay = raw_relay("counted")
    assert relay.request(1, "hello")["id"] == 1
    session = None
    relay.close_stdin()
    assert relay.wait(timeout=20) == 0
    session = jail.assert_audit_intact()[0]["session"]
    leftovers = subprocess.run(["find", "/sys/fs/cgroup", "-name", session, "-type", "d"], capture_output=True, text=True).stdout
    assert leftovers == "", leftovers


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an ordinary user")
def test_strict_limits_an_ordinary_user_cannot_get_refuse_to_start(jail: Jail):
    import shutil
    profile = jail.write_profile("strict", "/bin/sh", ["-c", "echo started >&2"])
    add_limits(profile, 'memory = "128M"', 'enforce = "strict"')
    os.chmod(profile, 0o644)
    env = {**jail.env(), "MCPJAIL_STATE_DIR": str(jail.root / "user-state")}
    argv = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", "--", *jail.command("strict")]
    done = subprocess.run(argv, env=env, input=b"", capture_output=True, timeout=30)
    if b"cannot enforce" in done.stderr:  # this host: no cgroup an ordinary user may use
        assert done.returncode != 0
        assert b"cannot enforce the [limits]" in done.stderr and b"best-effort" in done.stderr
        assert not (jail.root / "user-state" / "logs" / "strict.stderr.log").exists()  # nothing started
    else:  # a host that delegates a cgroup to this user: the limit is enforced and it runs
        assert done.returncode == 0, done.stderr
