#!/usr/bin/env bash
# `make demo`: the main job on the sample municipality, as far as it is built.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=inventories/norddjurs/plan.yml
bin=.venv/bin
echo "== Validating the sample plan"
$bin/overflyt plan validate "$PLAN"
$bin/overflyt plan show "$PLAN"
if $bin/overflyt lab --help >/dev/null 2>&1; then
  echo; echo "== Bringing the lab up"
  $bin/overflyt lab up
  eval "$($bin/python -c 'import json,subprocess,shlex; s=json.loads(subprocess.check_output([".venv/bin/overflyt","lab","status","--json"])); print("\n".join(f"export {k}={shlex.quote(v)}" for k,v in s["env"].items()))')"
  $bin/overflyt plan validate --credentials "$PLAN"
  echo; echo "The lab stays up; 'overflyt lab status' shows it, 'overflyt lab down' removes it."
fi
