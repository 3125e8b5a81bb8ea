"""Containment that `mcpjail run` applies today, shown by the jailed payload itself.

Each test runs a probe as the server through `mcpjail run` and, as a companion, the same
probe directly, so that the probe is shown to detect what the jail takes away.
"""

from __future__ import annotations

import os
import subprocess

from conftest import Jail

PROBE = "grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status"


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"):
            fields[key] = value.strip()
    return fields


def test_server_has_no_capabilities_and_no_new_privs(jail: Jail):
    jail.write_profile("probe", "/bin/sh", ["-c", PROBE + " >&2"])
    done = subprocess.run(jail.command("probe"), env=jail.env(), input=b"", capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    jailed = status_fields(jail.stderr_log("probe"))
    assert jailed == {"CapPrm": "0" * 16, "CapEff": "0" * 16, "CapBnd": "0" * 16, "CapAmb": "0" * 16, "NoNewPrivs": "1"}, jailed

    # Companion: the same probe unjailed sees what a process of this user has.
    direct = status_fields(subprocess.run(["/bin/sh", "-c", PROBE], capture_output=True, text=True).stdout)
    assert direct["NoNewPrivs"] == "0"
    if os.geteuid() == 0:
        assert direct["CapEff"] != "0" * 16 and direct["CapBnd"] != "0" * 16
    else:
        assert direct["CapBnd"] != "0" * 16  # an ordinary user's bounding set is full
