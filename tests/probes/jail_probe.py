"""A payload that tries to get out of its jail and reports, as one JSON object on stderr,
what each attempt did. mcpjail's jail tests run it jailed and, as the companion, unjailed,
so that every attempt is shown both to be stopped and to detect the breach.

    python jail_probe.py CONFIG_JSON

CONFIG_JSON names what to try: a host file to read, a host directory to write into, a host
pid to look for, a host loopback port and an abstract unix socket name to connect to, an
environment variable that must not leak, and how much to write into /tmp.
"""

import errno
import json
import os
import socket
import sys


def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except OSError as error:
        return {"ok": False, "errno": errno.errorcode.get(error.errno, str(error.errno))}


def main() -> None:
    config = json.loads(sys.argv[1])
    report = {}
    report["read_host_file"] = attempt(lambda: open(config["host_file"]).read())
    report["write_outside"] = attempt(lambda: open(os.path.join(config["host_dir"], "escaped"), "w").write("x"))
    report["see_host_process"] = {"ok": os.path.exists(f"/proc/{config['host_pid']}/cmdline")}
    report["host_env"] = {"ok": config["env_marker"] in os.environ}
    report["fds"] = {"ok": True, "value": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))}

    def tcp():
        with socket.create_connection(("127.0.0.1", config["host_port"]), timeout=2):
            return "connected"

    report["host_loopback"] = attempt(tcp)

    def abstract():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect("\0" + config["abstract_name"])
            return "connected"

    report["abstract_socket"] = attempt(abstract)
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    report["capabilities"] = {"ok": True, "value": {k: status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs")}}
    report["devices"] = {"ok": True, "value": sorted(os.listdir("/dev"))}
    report["proc_sys_write"] = attempt(lambda: os.close(os.open("/proc/sys/kernel/hostname", os.O_WRONLY)))
    report["init_environ"] = attempt(lambda: len(open("/proc/1/environ", "rb").read()))
    # The same reads against a process of the same user outside any jail (the companion).
    report["host_environ"] = attempt(lambda: len(open(f"/proc/{config['host_pid']}/environ", "rb").read()))
    report["init_mem"] = attempt(lambda: os.close(os.open("/proc/1/mem", os.O_RDONLY)))
    report["init_exe_write"] = attempt(lambda: os.close(os.open("/proc/1/exe", os.O_WRONLY)))
    report["hostname"] = {"ok": True, "value": socket.gethostname()}
    report["ids"] = {"ok": True, "value": [os.getuid(), os.getgid(), os.getgroups()]}

    def fill_tmp():
        with open("/tmp/fill", "wb") as f:
            chunk = b"x" * (1 << 20)
            for _ in range(config["fill_mib"]):
                f.write(chunk)
        return "filled"

    report["fill_tmp"] = attempt(fill_tmp)
    try:
        os.unlink("/tmp/fill")
    except OSError:
        pass
    if config.get("jailed"):  # never try this on the host
        report["root_writable"] = attempt(lambda: open("/escaped-root", "w").write("x"))
    sys.stderr.write("PROBE " + json.dumps(report) + "\n")
    sys.stderr.flush()


main()
