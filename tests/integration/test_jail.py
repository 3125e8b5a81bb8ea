"""The jail every `mcpjail run` builds: a payload of our own tries to get out, jailed
through `mcpjail run` and, as the companion, unjailed, as root and as an ordinary user
(uid 65534 via setpriv).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import MCPJAIL, ROOT, VENV_BIN

PROBE = ROOT / "tests" / "probes" / "jail_probe.py"
NOBODY = 65534
USERS = ["self", "nobody"] if os.geteuid() == 0 else ["self"]


def as_user(argv: list[str], user: str) -> list[str]:
    if user == "self":
        return argv
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test as an ordinary user"
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv]


@pytest.fixture
def host(request):
    """What the probe tries to reach: files, a process, a loopback port, an abstract socket."""
    root = Path(tempfile.mkdtemp(prefix="mcpjail-jail-"))
    os.chmod(root, 0o755)
    secret = root / "host-secret.txt"
    secret.write_text("host secret")
    os.chmod(secret, 0o644)
    outside = root / "outside"
    outside.mkdir(mode=0o777)
    os.chmod(outside, 0o777)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    abstract_name = f"mcpjail-test-{os.getpid()}-{id(root)}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(8)
    config = {
        "host_file": str(secret),
        "host_dir": str(outside),
        "host_pid": os.getpid(),
        "host_port": listener.getsockname()[1],
        "abstract_name": abstract_name,
        "env_marker": "MCPJAIL_PROBE_MARKER",
        "fill_mib": 12,
    }
    yield root, config
    listener.close()
    abstract.close()
    shutil.rmtree(root, ignore_errors=True)


def run_jailed(root: Path, config: dict, user: str) -> dict:
    work = root / f"work-{user}"
    profiles = work / "profiles"
    profiles.mkdir(parents=True)
    args = json.dumps({**config, "jailed": True})
    (profiles / "probe.toml").write_text(
        "[server]\n"
        f"command = {json.dumps(str(VENV_BIN / 'python'))}\n"
        "pinned = false\n"
        f"args = [{json.dumps(str(PROBE))}, {json.dumps(args)}]\n"
        "[filesystem]\n"
        f"read_only = [\"/usr\", {json.dumps(str((ROOT / '.venv').resolve()))}, {json.dumps(str(PROBE.parent))}]\n"
        'tmpfs = { "/tmp" = "8M" }\n'
        "[limits]\n"
        'enforce = "best-effort"\n'  # an ordinary user may have no cgroup to enforce memory and pids with
    )
    if user == "nobody":
        for path in [work, profiles, profiles / "probe.toml"]:
            os.chown(path, NOBODY, NOBODY)
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(work), "MCPJAIL_STATE_DIR": str(work / "state"),
        config["env_marker"]: "leaked",
    }
    done = subprocess.run(
        as_user([str(MCPJAIL), "run", "probe", "--profiles", str(profiles)], user),
        input=b"", capture_output=True, env=env, timeout=60,
    )
    log = (work / "state" / "logs" / "probe.stderr.log").read_text(errors="replace")
    assert done.returncode == 0, f"mcpjail run: {done.returncode} {done.stderr.decode(errors='replace')}\n{log}"
    lines = [l for l in log.splitlines() if l.startswith("PROBE ")]
    assert lines, f"the probe reported nothing:\n{log}"
    return json.loads(lines[-1][len("PROBE "):])


def run_unjailed(config: dict, user: str) -> dict:
    extra_read, extra_write = os.pipe()  # an inherited fd the jail would not pass on
    try:
        done = subprocess.run(
            as_user([str(VENV_BIN / "python"), str(PROBE), json.dumps(config)], user),
            capture_output=True, text=True, timeout=60, pass_fds=[extra_read],
            env={"PATH": "/usr/bin:/bin", config["env_marker"]: "leaked"},
        )
    finally:
        os.close(extra_read)
        os.close(extra_write)
    lines = [l for l in done.stderr.splitlines() if l.startswith("PROBE ")]
    assert lines, done.stderr
    return json.loads(lines[-1][len("PROBE "):])


@pytest.mark.parametrize("user", USERS)
def test_jailed_probe_is_stopped_and_the_unjailed_probe_gets_through(host, user: str):
    root, config = host
    jailed = run_jailed(root, config, user)
    free = run_unjailed(config, user)

    # Host files outside the profile: invisible; nothing can be written outside.
    assert jailed["read_host_file"] == {"ok": False, "errno": "ENOENT"}
    assert free["read_host_file"]["ok"] and free["read_host_file"]["value"] == "host secret"
    assert not jailed["write_outside"]["ok"] and jailed["write_outside"]["errno"] in ("ENOENT", "EROFS")
    assert free["write_outside"]["ok"]
    assert jailed["root_writable"] == {"ok": False, "errno": "EROFS"}

    # Host processes: not visible (own pid namespace); the probe's init is pid 1.
    assert jailed["see_host_process"] == {"ok": False}
    assert free["see_host_process"] == {"ok": True}

    # The client's environment does not leak; only fds 0-2 cross.
    assert jailed["host_env"] == {"ok": False}
    assert free["host_env"] == {"ok": True}
    assert set(jailed["fds"]["value"]) <= {0, 1, 2, 3}  # 3: the listing's own directory fd
    assert len(set(free["fds"]["value"]) - {0, 1, 2, 3}) >= 1

    # Host loopback and abstract unix sockets: unreachable (own network namespace).
    assert not jailed["host_loopback"]["ok"] and jailed["host_loopback"]["errno"] in ("ECONNREFUSED", "ENETUNREACH")
    assert free["host_loopback"] == {"ok": True, "value": "connected"}
    assert not jailed["abstract_socket"]["ok"] and jailed["abstract_socket"]["errno"] == "ECONNREFUSED"
    assert free["abstract_socket"] == {"ok": True, "value": "connected"}

    # No capabilities, no_new_privs.
    caps = jailed["capabilities"]["value"]
    assert caps == {"CapEff": "0" * 16, "CapPrm": "0" * 16, "CapBnd": "0" * 16, "CapAmb": "0" * 16, "NoNewPrivs": "1"}
    assert free["capabilities"]["value"]["NoNewPrivs"] == "0"

    # A minimal /dev; /proc/sys not writable; init's memory, environment and binary closed.
    assert set(jailed["devices"]["value"]) == {"null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr"}
    assert len(free["devices"]["value"]) > 20
    assert not jailed["proc_sys_write"]["ok"] and jailed["proc_sys_write"]["errno"] in ("EACCES", "EPERM", "EROFS")
    assert not jailed["init_environ"]["ok"] and jailed["init_environ"]["errno"] == "EACCES"
    assert not jailed["init_mem"]["ok"] and jailed["init_mem"]["errno"] == "EACCES"
    assert not jailed["init_exe_write"]["ok"] and jailed["init_exe_write"]["errno"] == "EACCES"
    if user == "self":
        assert free["host_environ"]["ok"]  # the probe can read an accessible environ
        if os.geteuid() == 0:
            assert free["proc_sys_write"]["ok"]  # the host's root can write it

    # Identity and hostname: root's servers run as nobody; an ordinary user stays itself.
    assert jailed["hostname"]["value"] == "mcpjail"
    uid, gid, groups = jailed["ids"]["value"]
    if os.geteuid() == 0 and user == "self":
        assert (uid, gid, groups) == (NOBODY, NOBODY, [])  # supplementary groups dropped
    elif user == "nobody":
        assert (uid, gid) == (NOBODY, NOBODY)
    else:
        assert (uid, gid) == (os.getuid(), os.getgid())

    # /tmp is a tmpfs of the profile's size: filling it stops at 8 MiB.
    assert jailed["fill_tmp"] == {"ok": False, "errno": "ENOSPC"}
    assert free["fill_tmp"] == {"ok": True, "value": "filled"}
    assert not (Path(config["host_dir"]) / "escaped").exists() or free["write_outside"]["ok"]


def test_a_profile_path_that_does_not_exist_starts_nothing(tmp_path: Path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "bad.toml").write_text(
        "[server]\ncommand = \"/bin/sh\"\npinned = false\n[filesystem]\nread_only = [\"/usr\", \"/no/such/path\"]\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MCPJAIL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([str(MCPJAIL), "run", "bad", "--profiles", str(profiles)], input=b"", capture_output=True, env=env, timeout=30)
    assert done.returncode != 0
    assert b"/no/such/path does not exist" in done.stderr
    assert not (tmp_path / "state" / "logs" / "bad.stderr.log").exists()


def test_jail_setup_failures_name_the_stage_and_leave_nothing(jail: "Jail"):
    """A script whose interpreter the jail lacks fails at exec, with the stage and a hint."""
    script = jail.root / "server.sh"
    script.write_text("#!/opt/no-such-interpreter\n")
    os.chmod(script, 0o755)
    jail.write_profile("noexec", script)
    done = subprocess.run(jail.command("noexec"), env=jail.env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode != 0
    assert b"mcpjail: jail setup failed at exec: No such file or directory" in done.stderr
    assert b"hint:" in done.stderr and b"#! line" in done.stderr
    assert b"audit" not in done.stdout  # nothing was relayed


def test_a_jail_without_a_network_namespace_names_that_cause(jail: "Jail"):
    """The jail makes its network namespace itself, while mcpjail writes its id maps. Where no
    namespace is left (user.max_net_namespaces = 0, in a user namespace of the test's own),
    `run` names that stage and errno, not the id maps it then could not write, and starts
    nothing. The control: the same limit stops `unshare -n` there."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed"
    limited = [unshare, "--user", "--map-root-user", "sh", "-c", 'echo 0 > /proc/sys/user/max_net_namespaces && exec "$@"', "sh"]
    control = subprocess.run([*limited, unshare, "--net", "true"], capture_output=True, timeout=30)
    assert control.returncode != 0 and b"No space left on device" in control.stderr, control.stderr
    marker = jail.root / "ran"
    jail.write_profile("nonet", "/bin/sh", ["-c", f"echo ran > {marker}"])
    done = subprocess.run([*limited, *jail.command("nonet")], env=jail.env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode != 0
    assert b"mcpjail: jail setup failed at the network namespace: No space left on device" in done.stderr, done.stderr
    assert b"user.max_net_namespaces" in done.stderr
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a setuid-root binary needs root")
@pytest.mark.parametrize("user", ["self", "nobody"])
def test_a_setuid_binary_gives_no_privileges_in_the_jail(jail: "Jail", user: str):
    """A setuid-root copy of `id`: run unjailed by an ordinary user it reports euid 0 (the
    probe detects the breach); run in the jail it does not (no_new_privs, root unmapped),
    whether mcpjail runs as root (the server as nobody) or as an ordinary user (nobody, its
    own id mapped)."""
    suid_dir = jail.root / "suid"
    suid_dir.mkdir()
    os.chmod(suid_dir, 0o755)
    binary = suid_dir / "id-suid"
    shutil.copy("/usr/bin/id", binary)
    os.chown(binary, 0, 0)
    os.chmod(binary, 0o4755)
    unjailed = subprocess.run(as_user([str(binary), "-u"], "nobody"), capture_output=True, text=True, timeout=30)
    assert unjailed.stdout.strip() == "0", unjailed  # the setuid bit works outside
    profile = jail.write_profile("suid", "/bin/sh", ["-c", f"{binary} -u >&2; {binary} -un >&2 || true"], read_only=["/usr", str(suid_dir)])
    if user == "nobody":
        # An ordinary user may have no cgroup to enforce memory and pids with.
        with profile.open("a") as f:
            f.write('[limits]\nenforce = "best-effort"\n')
        os.chmod(jail.root, 0o755)
        os.chown(jail.root, NOBODY, NOBODY)  # not what is in it: the binary stays root's and setuid
        for directory in (jail.profiles, jail.state, jail.home):
            for path in [directory, *directory.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
    done = subprocess.run(as_user(jail.command("suid"), user), env=jail.env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = jail.stderr_log("suid").splitlines()[1:]
    assert lines[0] == str(NOBODY), lines
