#!/usr/bin/env bash
# Installs the Debian packages listed in the given file (one a line, # comments) that are missing.
# Needs root when anything is missing; says so in one sentence otherwise.
set -euo pipefail
list=${1:?usage: install-debian-packages.sh FILE}
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" | tr -d ' ')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "overflyt: Debian packages missing (${missing[*]}); run 'make deps' as root to install them." >&2
  exit 2
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing openssh-server or frr must not start their system services (a system sshd on :22,
# a default FRR instance): the lab runs its own. policy-rc.d answering 101 forbids starting them.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; own_policy=true
fi
trap '$own_policy && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
