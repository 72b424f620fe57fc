#!/usr/bin/env bash
# `make demo`: the main job on the sample municipality (Norddjurs) against the lab —
# validate the plan, pre-check wave 1, dry-run it, run it for real, show where to look, and open
# the Prefect UI (overflyt serve) with the deployments and this run.
# The lab and the migrated wave stay up afterwards; `overflyt rollback` and `overflyt lab down`
# put everything back.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=inventories/norddjurs/plan.yml
bin=.venv/bin
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export OVERFLYT_STATE_DIR=${OVERFLYT_STATE_DIR:-$PWD/.overflyt/state}

step() { printf '\n== %s\n' "$*"; }

# The lab is one per machine: the demo takes its turn on the lock test sessions and benchmarks take
# (up to 15 min), and hands it to what it starts (OVERFLYT_LAB_LOCK_FD; a caller holding it passes its own).
if [ -z "${OVERFLYT_LAB_LOCK_FD:-}" ]; then
  exec 9>>/run/lock/overflyt-lab-tests.lock
  if ! flock -n 9; then
    echo "waiting for the lab: a test session or a benchmark is using it (/run/lock/overflyt-lab-tests.lock) ..."
    flock -w 900 9 || { echo "the lab stayed in use for 15 min; try again later" >&2; exit 1; }
  fi
  export OVERFLYT_LAB_LOCK_FD=9
fi

step "Validating the sample plan"
$bin/overflyt plan validate "$PLAN"
$bin/overflyt plan show "$PLAN" | head -20

step "Bringing the lab up (vCenter simulator, FRR routers, clients and servers)"
$bin/overflyt lab up
# The plan's credentials references read these variables; the lab holds the values.
eval "$($bin/python - <<'PY'
import json, shlex, subprocess
status = json.loads(subprocess.check_output([".venv/bin/overflyt", "lab", "status", "--json"]))
print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in status["env"].items()))
PY
)"

step "Pre-checks of wave 1 (read-only)"
$bin/overflyt precheck "$PLAN" --wave 1

step "Dry run of wave 1 (the same playbooks under --check --diff; nothing changes)"
$bin/overflyt wave run "$PLAN" --wave 1 --dry-run

if [ -f "$OVERFLYT_STATE_DIR/707/wave-1/state.json" ] && grep -q '"status": "done"' "$OVERFLYT_STATE_DIR/707/wave-1/state.json"; then
  step "Wave 1 is already cut over (an earlier demo): rolling it back first"
  $bin/overflyt rollback "$PLAN" --site grenaa-raadhus
fi

step "Wave 1 for real: VMs and network of Grenaa Rådhus cut over together"
$bin/overflyt wave run "$PLAN" --wave 1 --approved-by "make demo" --ticket DEMO-1 --outside-window

cat <<MSG

== Done
Run records and reports:  $OVERFLYT_STATE_DIR/707/wave-1/
  latest wave report:     $(ls -td "$OVERFLYT_STATE_DIR"/707/wave-1/wave/*/ | head -1)report.md
Prefect runs and artifacts are in Prefect's local database (PREFECT_HOME=${PREFECT_HOME:-~/.prefect}).
Put it back:  .venv/bin/overflyt rollback $PLAN --site grenaa-raadhus   and   .venv/bin/overflyt lab down
MSG

step "The Prefect UI: every municipality's deployments and schedules, this run's report (overflyt serve)"
port=${OVERFLYT_UI_PORT:-4200}
if [ -t 0 ] && [ -z "${CI:-}" ]; then
  echo "Open the address below; Ctrl-C stops the UI and its worker (the lab and the wave stay)."
  exec $bin/overflyt serve --port "$port"
fi
# No terminal (CI, a pipe): start it, show that it serves, stop it again.
log=$(mktemp)
$bin/overflyt serve --port "$port" >"$log" 2>&1 &
serve_pid=$!
for _ in $(seq 360); do
  grep -q 'overflyt: Prefect UI: ' "$log" && break
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.5
done
cat "$log"
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" || true
rm -f "$log"
echo "(not a terminal: stopped it again; run '.venv/bin/overflyt serve' to keep the UI up)"
