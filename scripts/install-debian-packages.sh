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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
