"""Containment that `mcpjail run` applies today, shown by the jailed payload itself.

Each test runs a probe as the server through `mcpjail run` and, as a companion, the same
probe directly, so that the probe is shown to detect what the jail takes away.
"""

from __future__ import annotations

import os
import subprocess

from conftest import Jail

PROBE = "grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status"


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
            fields[key] = value.strip()
    return fields


def test_server_has_no_capabilities_and_no_new_privs(jail: Jail):
    jail.write_profile("probe", "/bin/sh", ["-c", PROBE + " >&2"])
    done = subprocess.run(jail.command("probe"), env=jail.env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    jailed = status_fields(jail.stderr_log("probe"))
    assert jailed == {"CapPrm": "0" * 16, "CapEff": "0" * 16, "CapBnd": "0" * 16, "CapAmb": "0" * 16, "NoNewPrivs": "1", "Seccomp": "2"}, jailed

    # Companion: the same probe unjailed sees what a process of this user has.
    direct = status_fields(subprocess.run(["/bin/sh", "-c", PROBE], capture_output=True, text=True).stdout)
    assert direct["NoNewPrivs"] == "0" and direct["Seccomp"] == "0"
    if os.geteuid() == 0:
        assert direct["CapEff"] != "0" * 16 and direct["CapBnd"] != "0" * 16
    else:
        assert direct["CapBnd"] != "0" * 16  # an ordinary user's bounding set is full


def test_seccomp_filter_refuses_new_namespaces(jail: Jail):
    """unshare(CLONE_NEWUSER) is refused with EPERM inside; the same command works outside."""
    command = "unshare --user true && echo UNSHARE-OK || echo UNSHARE-REFUSED"
    jail.write_profile("unshare", "/bin/sh", ["-c", command + " >&2"])
    done = subprocess.run(jail.command("unshare"), env=jail.env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    log = jail.stderr_log("unshare")
    assert "UNSHARE-REFUSED" in log and "Operation not permitted" in log, log
    direct = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True)
    assert "UNSHARE-OK" in direct.stdout, direct.stdout + direct.stderr


def test_an_unknown_syscall_in_the_profile_starts_nothing(jail: Jail):
    profile = jail.write_profile("badsys", "/bin/sh", ["-c", "echo started >&2"])
    profile.write_text(profile.read_text() + '\n[seccomp]\ndeny = ["not_a_syscall"]\n')
    done = subprocess.run(jail.command("badsys"), env=jail.env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode != 0
    assert b"not_a_syscall" in done.stderr
    assert "started" not in jail.stderr_log("badsys")
