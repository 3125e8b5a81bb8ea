"""Shared set-up for mcpjail's integration tests.

Every test gets its own profile directory and state directory (tmp_path), writes the
profiles it needs there with absolute paths, and launches servers through
`Jail.command(name)`: the one place that says how a server is reached.

MCPJAIL_TEST_DIRECT=1 launches the profile's server directly instead of through
`mcpjail run` (a development aid for checking the fixtures themselves; tests of
mcpjail's own behaviour fail in that mode, as they should).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import shutil
import subprocess
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MCPJAIL = ROOT / ".build" / "debug" / "mcpjail"
SWIFT_CLIENT = ROOT / ".build" / "debug" / "mcpjail-swift-client"
# Resolved: a worktree may link its .venv to another checkout's (the jail binds the real path,
# which the venv's scripts name in their #! lines).
VENV = (ROOT / ".venv").resolve()
VENV_BIN = VENV / "bin"
PYTHON = VENV_BIN / "python"
FIXTURES = ROOT / "tests" / "fixtures"
DIRECT = os.environ.get("MCPJAIL_TEST_DIRECT") == "1"


def toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value)


def toml_array(values: list[str]) -> str:
    return "[" + ", ".join(toml_string(v) for v in values) + "]"


def toml_inline_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{k} = {toml_string(v)}" for k, v in values.items()) + " }"


@dataclass
class Jail:
    """A profile directory and a state directory of one test."""

    root: Path
    # Extra variables of the client's environment for `mcpjail run` (tokens, secrets).
    client_env: dict[str, str] = field(default_factory=dict)
    profiles: Path = field(init=False)
    state: Path = field(init=False)
    home: Path = field(init=False)

    def __post_init__(self) -> None:
        self.profiles = self.root / "profiles"
        self.state = self.root / "state"
        self.home = self.root / "home"
        for d in (self.profiles, self.state, self.home):
            d.mkdir(parents=True, exist_ok=True)

    # -- profiles -------------------------------------------------------------------------
    def server_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8", "TZ": "UTC"}
        env.update(extra or {})
        return env

    def write_profile(
        self,
        name: str,
        command: str | Path,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        stop_timeout: str = "2s",
        max_message: str | None = None,
        relay_spin: str | None = None,
        description: str = "integration test profile",
        read_only: list[str] | None = None,
        read_write: list[str] | None = None,
        policy: str = '[tools]\ndefault = "allow"\n',
        pinned: bool = False,
        code: list[str | Path] | None = None,
    ) -> Path:
        """Every server runs jailed: by default the jail sees /usr (with the merged-/usr links),
        the project's venv and test payloads read-only, and this test's directory writable.

        Profiles are unpinned (`pinned = false`) unless a test asks for `pinned=True`; such a
        test pins them with `jail.pin(name)` (`code` lists the paths to pin besides the command)."""
        lines = [
            f"description = {toml_string(description)}",
            "[server]",
            f"command = {toml_string(str(command))}",
            f"args = {toml_array([str(a) for a in (args or [])])}",
            f"env = {toml_inline_table(self.server_env(env))}",
            'workdir = "/"',
            f"stop_timeout = {toml_string(stop_timeout)}",
        ]
        if code is not None:
            lines.append(f"code = {toml_array([str(c) for c in code])}")
        if not pinned:
            lines.append("pinned = false")
        limits = {"max_message": max_message, "relay_spin": relay_spin}
        if any(v is not None for v in limits.values()):
            lines.append("[limits]")
            lines += [f"{key} = {toml_string(value)}" for key, value in limits.items() if value is not None]
        ro = read_only if read_only is not None else ["/usr", str(VENV), str(FIXTURES), str(ROOT / "tests" / "probes")]
        rw = read_write if read_write is not None else [str(self.root)]
        lines += ["[filesystem]", f"read_only = {toml_array(ro)}", f"read_write = {toml_array(rw)}"]
        # The relay's policy tables ([tools], [auth], ...), as TOML text. The default opens
        # every tool, so tests about other things need not list them.
        lines.append(policy)
        path = self.profiles / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def fixture_profile(self, name: str = "fixture", **kw) -> Path:
        state = self.root / f"{name}-server-state"
        return self.write_profile(name, PYTHON, [str(FIXTURES / "fixture_server.py"), "--state", str(state)], **kw)

    def fixture_state(self, name: str = "fixture") -> Path:
        return self.root / f"{name}-server-state"

    def raw_profile(self, name: str = "raw", ignore_sigterm: bool = False, ignore_eof: bool = False, **kw) -> Path:
        args = [str(FIXTURES / "raw_server.py"), "--record", str(self.record_file(name))]
        if ignore_sigterm:
            args.append("--ignore-sigterm")
        if ignore_eof:
            args.append("--ignore-eof")
        return self.write_profile(name, PYTHON, args, **kw)

    def record_file(self, name: str = "raw") -> Path:
        return self.root / f"{name}.received"

    def received(self, name: str = "raw", own: bool = False) -> bytes:
        """Every byte the raw server has read from its stdin so far; without `own`, less the
        relay's own requests (its tools/list, ids "dev.mcpjail/...", and cancellations)."""
        path = self.record_file(name)
        data = path.read_bytes() if path.exists() else b""
        if own:
            return data
        return b"".join(
            line for line in data.splitlines(keepends=True)
            if b'"id":"dev.mcpjail/' not in line and b'"reason":"timeout"' not in line
        )

    def raw_server_pid(self, name: str = "raw") -> int:
        """The raw server's pid on the host. (The pid it writes itself is the one inside its
        jail's pid namespace, so it is found by its command line instead.)"""
        path = Path(str(self.record_file(name)) + ".pid")
        assert wait_for(path.exists, timeout=10), "the raw server never started"
        record = str(self.record_file(name))
        found: list[int] = []

        def look() -> bool:
            found[:] = find_processes(lambda argv: "raw_server.py" in " ".join(argv) and record in argv)
            return len(found) == 1

        assert wait_for(look, timeout=10), f"raw server for {record}: {found}"
        return found[0]

    def time_profile(self, name: str = "time") -> Path:
        return self.write_profile(name, VENV_BIN / "mcp-server-time", ["--local-timezone=UTC"])

    def git_profile(self, repo: Path, name: str = "git") -> Path:
        return self.write_profile(name, VENV_BIN / "mcp-server-git", ["--repository", str(repo)])

    # -- launching ------------------------------------------------------------------------
    def command(self, name: str) -> list[str]:
        """The command line an MCP client is configured with."""
        if DIRECT:
            server = tomllib.loads((self.profiles / f"{name}.toml").read_text())["server"]
            return [server["command"], *server.get("args", [])]
        return [str(MCPJAIL), "run", name, "--profiles", str(self.profiles)]

    def env(self) -> dict[str, str]:
        """The client's environment for `mcpjail run` (never seen by the server)."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "MCPJAIL_STATE_DIR": str(self.state),
            "CLIENT_SECRET_SHOULD_NOT_LEAK": "hunter2",
            **self.client_env,
        }

    # -- what mcpjail left behind ---------------------------------------------------------
    @property
    def audit_path(self) -> Path:
        return self.state / "audit.jsonl"

    def audit(self) -> list[dict]:
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line.strip()]

    def stderr_log(self, name: str) -> str:
        path = self.state / "logs" / f"{name}.stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def mcpjail(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(MCPJAIL), *args], env=self.env(), capture_output=True, text=True, timeout=timeout
        )

    def pin(self, name: str, *args: str, tools: bool = False) -> subprocess.CompletedProcess:
        """`mcpjail pin NAME` for a profile of this test; fails the test if it fails. The
        files only (`--no-tools`: no server run) unless `tools` asks for the tool pins too."""
        extra = () if tools else ("--no-tools",)
        done = self.mcpjail("pin", name, "--profiles", str(self.profiles), *extra, *args)
        assert done.returncode == 0, f"mcpjail pin {name}: {done.stdout}{done.stderr}"
        return done

    def lock_path(self, name: str) -> Path:
        return self.profiles / f"{name}.lock"

    def verify(self) -> subprocess.CompletedProcess:
        return self.mcpjail("logs", "--verify")

    def assert_audit_intact(self) -> list[dict]:
        """The audit log exists, every line is a record, and `mcpjail logs --verify` agrees."""
        records = self.audit()
        assert records, f"no audit records in {self.audit_path}"
        result = self.verify()
        assert result.returncode == 0, f"logs --verify failed: {result.stdout}{result.stderr}"
        return records


JAILED_UID = 65534  # the id root's jailed servers run as


@pytest.fixture
def jail():
    """A directory the jailed server may write (its test's read_write area): not under
    pytest's tmp_path, which is 0700 for the runner; owned by the server's id when the
    tests run as root, since root's servers run as nobody."""
    root = Path(tempfile.mkdtemp(prefix="mcpjail-it-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        os.chown(root, JAILED_UID, JAILED_UID)
    yield Jail(root)
    shutil.rmtree(root, ignore_errors=True)


# -- a raw client: bytes in, lines out ------------------------------------------------------
class RawRelay:
    """`mcpjail run NAME` (or the direct command) with pipes, driven byte by byte."""

    def __init__(self, jail: Jail, name: str):
        self.jail = jail
        self.name = name
        self.stderr_path = jail.root / f"{name}.client-side-stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            jail.command(name),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=jail.env(),
            bufsize=0,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stdout_bytes = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            self.stdout_bytes += chunk
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.put(line + b"\n")
        if buf:
            self.lines.put(buf)
        self.lines.put(None)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send_json(self, obj: dict) -> None:
        self.send(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def recv_line(self, timeout: float = 15) -> bytes:
        line = self.lines.get(timeout=timeout)
        assert line is not None, "mcpjail closed its stdout"
        return line

    def recv(self, timeout: float = 15) -> dict:
        return json.loads(self.recv_line(timeout))

    def request(self, msg_id, method: str, params: dict | None = None, timeout: float = 15) -> dict:
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send_json(msg)
        return self.recv(timeout)

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def wait(self, timeout: float = 20) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc

    def rest(self, timeout: float = 10) -> list[bytes]:
        """Every line still to come, until mcpjail closes its stdout."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                return out
            out.append(line)

    def client_stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def raw_relay(jail: Jail):
    """Factory: raw_relay(name) starts a RawRelay; all are killed at the end of the test."""
    started: list[RawRelay] = []

    def start(name: str) -> RawRelay:
        relay = RawRelay(jail, name)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.kill()


# -- processes -----------------------------------------------------------------------------
def find_processes(match) -> list[int]:
    """Host pids of live processes whose argv satisfies `match`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if match([a.decode(errors="replace") for a in argv if a]) and pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    for line in status.splitlines():
        if line.startswith("State:"):
            return "Z" not in line.split()[1]
    return True


def descendants(pid: int) -> set[int]:
    """All live descendants of pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if pid_alive(p)}


def wait_for(predicate, timeout: float = 10, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture(scope="session", autouse=True)
def prerequisites():
    """A missing prerequisite is a failure, never a skip."""
    missing = [str(p) for p in (PYTHON, VENV_BIN / "mcp-server-time", VENV_BIN / "mcp-server-git") if not p.exists()]
    if not DIRECT:
        missing += [str(p) for p in (MCPJAIL, SWIFT_CLIENT) if not p.exists()]
    if missing:
        pytest.fail(f"missing prerequisites (run `make build`): {', '.join(missing)}", pytrace=False)


def session_cgroups() -> set[Path]:
    """The session cgroups mcpjail has made beside this process's own cgroups (its parents
    are `mcpjail/` in this process's cgroup of each hierarchy, or at a hierarchy's root)."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, kind = left.split(), right.split()
        if kind and kind[0] in ("cgroup", "cgroup2") and len(fields) >= 5:
            mounts.append((Path(fields[4]), fields[3]))
    own = [line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.count(":") >= 2]
    found: set[Path] = set()
    for mount, root in mounts:
        parents = {mount / "mcpjail"}
        for path in own:
            if path.startswith(root):
                parents.add(mount / path[len(root):].lstrip("/") / "mcpjail")
        for parent in parents:
            if parent.is_dir():
                found.update(child for child in parent.iterdir() if child.is_dir())
    return found


@pytest.fixture(scope="session", autouse=True)
def no_session_cgroups_left():
    """Tests that SIGKILL `mcpjail run` (a crash: it cannot clean up) leave their sessions'
    empty cgroups for the janitor of a later session, which takes those over a minute old.
    A test run does not leave them on the machine: the ones this run made, once empty, go at
    its end."""
    before = session_cgroups()
    yield
    removed = 0
    for path in sorted(session_cgroups() - before):
        procs = path / "cgroup.procs"
        if procs.exists() and not procs.read_text().strip():
            try:
                path.rmdir()
                removed += 1
            except OSError:
                pass
            try:
                path.parent.rmdir()  # the `mcpjail` parent, once nothing else uses it
            except OSError:
                pass
    print(f"\nremoved {removed} empty session cgroups left by SIGKILLed `mcpjail run` processes")


# -- a git repository for mcp-server-git (shared by the Python and Swift SDK tests) --------------
@pytest.fixture
def git_repo(jail: Jail) -> Path:
    repo = jail.root / "repo"
    repo.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(jail.root), "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "test@example.invalid")
    git("config", "user.name", "mcpjail test")
    (repo / "hello.txt").write_text("hello\n")
    git("add", "hello.txt")
    git("commit", "-q", "-m", "first commit through mcpjail")
    (repo / "hello.txt").write_text("hello, changed\n")
    if os.geteuid() == 0:  # the jailed server (nobody) owns the repository it works on
        for path in [repo, *repo.rglob("*")]:
            os.chown(path, JAILED_UID, JAILED_UID, follow_symlinks=False)
    return repo
