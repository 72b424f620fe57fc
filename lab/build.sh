#!/usr/bin/env bash
# Builds the lab's vCenter simulator launcher (lab/vcsim/main.go) into lab/.build/ofl-vcsim.
# GOPATH mode against Debian's govmomi (golang-github-vmware-govmomi-dev); no network needed.
# Cached: does nothing when the binary is newer than every source file.
set -euo pipefail
lab=$(cd "$(dirname "$0")" && pwd)
out=$lab/.build/ofl-vcsim
if [ -x "$out" ] && [ -z "$(find "$lab/vcsim" -newer "$out" -type f)" ]; then
  exit 0
fi
mkdir -p "$lab/.build/gopath" "$lab/.build/gocache"
echo "Building the lab's vCenter simulator (lab/.build/ofl-vcsim) ..."
cd "$lab/vcsim"
GO111MODULE=off GOFLAGS= GOPATH="$lab/.build/gopath:/usr/share/gocode" GOCACHE="$lab/.build/gocache" \
  go build -o "$out.tmp" .
mv "$out.tmp" "$out"
