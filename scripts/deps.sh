#!/usr/bin/env bash
# Installs what mcpjail's build, tests, demo and benchmarks need on a fresh Debian 12
# machine. Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The -dev packages hold the static archives mcpjail links into its one static binary
# (libseccomp.a, libcap.a, libsqlite3.a; libc.a; libstdc++.a and libgcc_eh.a for the Swift runtime).
apt_packages=(libseccomp-dev libcap-dev libsqlite3-dev libpcre2-dev libc6-dev libstdc++-12-dev libgcc-12-dev
  python3-venv bubblewrap iproute2 util-linux procps git curl)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "make deps: missing Debian packages: ${missing[*]} (run 'sudo make deps')" >&2
    exit 1
  fi
  echo "make deps: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The venv uses Debian's python3 (not a pyenv shim): real clients, servers and test tools.
venv=.venv
stamp=$venv/.deps-stamp
if [ ! -x $venv/bin/python ]; then
  /usr/bin/python3 -m venv $venv
fi
if [ ! -f $stamp ] || [ requirements.txt -nt $stamp ]; then
  $venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  touch $stamp
fi
