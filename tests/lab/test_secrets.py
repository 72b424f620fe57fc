"""No secret is ever written anywhere a run leaves traces.

The lab's vCenter and device passwords, an ansible-vault password and the Prefect API's auth string
are the canaries. A plan whose device password comes from an ansible-vault file runs a pre-check, a
real cutover and a rollback through the Prefect flows, then a cutover that fails (the devices' password
changes between its pre-check and its backup: the reason is shown, the site rolled back), with Prefect's API asking for the auth string
(OVERFLYT_API_AUTH_FILE: the CLI's way; Prefect's temporary API server started as `overflyt wave run`
starts it); every byte under the state directory (run records, ansible-runner private dirs — read
while the cutover runs and after), Prefect's database (logs, artifacts, results), /dev/shm, the
console and every process's command line (while the run lasts) is searched for every canary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventories" / "norddjurs"


def _files(*roots: Path) -> list[Path]:
    """Every regular file under the roots. Read while a run works in them: a directory that vanishes
    mid-walk (an ansible-local temporary directory, removed when its task ends) is passed over, as
    os.walk does, rather than failing the scan."""
    found = []
    for root in roots:
        for directory, _, names in os.walk(root):
            found += [p for p in (Path(directory, n) for n in names) if p.is_file() and not p.is_symlink()]
    return found


def _leaks(canaries: dict[str, str], *roots: Path) -> list[str]:
    found = []
    for path in _files(*roots):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [f"{name} in {path}" for name, value in canaries.items() if value.encode() in data]
    return found


def _on_command_lines(canaries: dict[str, str]) -> list[str]:
    """Canaries on a process's command line: what every local user can read in the process list."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            found += [
                f"{name} on the command line of {entry.name}" for name, v in canaries.items() if v.encode() in cmdline
            ]
    return found


def _orphaned_secret_dirs() -> list[str]:
    """Secret dirs (named overflyt-secrets-<pid>-…) whose run has ended: none may be left, whoever
    left it (a killed run's are swept by the next run). Those of runs still going are not counted."""
    orphaned = []
    for directory in Path("/dev/shm").glob("overflyt-secrets-*"):
        owner = directory.name.removeprefix("overflyt-secrets-").split("-", 1)[0]
        if not owner.isdigit() or not Path(f"/proc/{owner}").exists():
            orphaned.append(directory.name)
    return orphaned


@pytest.fixture
def vault_plan(lab: dict[str, Any], tmp_path: Path) -> tuple[Path, str]:
    """The sample plan, with the device password in an ansible-vault file."""
    plan_dir = tmp_path / "norddjurs"
    shutil.copytree(SAMPLE, plan_dir)
    state = Path(lab["state_dir"])
    text = (plan_dir / "plan.yml").read_text()
    text = text.replace("../../lab/.state/", f"{state}/")
    # wave 1 with three of its eight VMs (nothing depends on the others): the same path, in less time
    text = re.sub(r"\n  - \{name: ndj-(pki01|radius01|wsus01|mgmt01|print01),[^\n]*", "", text)
    text = text.replace(
        "secret: {env: OVERFLYT_NDJ_NETWORK_PASSWORD}",
        "secret: {vault: {file: secrets.vault.yml, key: network_password}}",
    )
    (plan_dir / "plan.yml").write_text(text)
    vault_password = "canary-vault-Hemmelig-8472"
    password_file = tmp_path / "vault-password"
    password_file.write_text(vault_password + "\n")
    plain = tmp_path / "secrets.yml"
    plain.write_text(f"network_password: {lab['env']['OVERFLYT_NDJ_NETWORK_PASSWORD']}\n")
    subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file),
         "--output", str(plan_dir / "secrets.vault.yml"), str(plain)],
        check=True, capture_output=True,
    )  # fmt: skip
    plain.unlink()
    return plan_dir / "plan.yml", str(password_file)


SCRIPT = """
import subprocess
import sys
import urllib.error
import urllib.request
from flows import (MigrateWaveParams, PrecheckWaveParams, RollbackSiteParams, migrate_wave, precheck_wave,
                   rollback_site)
from overflyt.orchestration.local import prepare_local_database
from prefect.server.api.server import SubprocessASGIServer
prepare_local_database()  # Prefect's temporary API, as `overflyt wave run` starts it
migrate = sys.modules["flows.migrate_wave"]
plan, logins = sys.argv[1], sys.argv[2]  # logins: the devices' user with a changed and with its own password
real_log_steps = migrate.log_steps

def log_steps():  # the failing cutover: the devices' password changes between the pre-check and the backup
    log = real_log_steps()
    def on_step(site, step, status):
        if step == "backup":
            line = open(logins).read().splitlines()[0 if status == "started" else 1]
            subprocess.run(["chpasswd"], input=line + "\\n", text=True, check=True)
        log(site, step, status)
    return on_step

wave = MigrateWaveParams(plan=plan, wave=1, dry_run=False, approved_by="test", outside_window=True)
states = [
    precheck_wave(PrecheckWaveParams(plan=plan, wave=1), return_state=True),
    migrate_wave(wave, return_state=True),
    rollback_site(RollbackSiteParams(plan=plan, site="grenaa-raadhus"), return_state=True),
]
migrate.log_steps = log_steps
failing = migrate_wave(wave, return_state=True)
print("STATES", [s.type.value for s in states], failing.type.value)
print("FAILED BECAUSE", failing.message)
try:  # the temporary API asked for the auth string
    urllib.request.urlopen(SubprocessASGIServer().api_url + "/flow_runs/filter", data=b"{}", timeout=10)
    print("API WITHOUT AUTH STRING: 200")
except urllib.error.HTTPError as exc:
    print("API WITHOUT AUTH STRING:", exc.code)
sys.exit(0 if all(s.is_completed() for s in states) and failing.is_failed() else 1)
"""


def test_no_secret_lands_in_records_runner_dirs_prefect_or_console(
    lab: dict[str, Any], vault_plan: tuple[Path, str], tmp_path: Path
) -> None:
    plan, vault_password_file = vault_plan
    state, prefect_home = tmp_path / "state", tmp_path / "prefect"
    auth_file = tmp_path / "api-auth"
    auth_file.write_text("overflyt:canary-api-auth-Pw3k-6194\n")
    auth_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERFLYT_") and not k.endswith("AUTH_STRING")}
    env.update(
        OVERFLYT_STATE_DIR=str(state),
        OVERFLYT_PROJECT_DIR=str(REPO),  # the plan is a copy outside the project, run from elsewhere
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        OVERFLYT_VAULT_PASSWORD_FILE=vault_password_file,
        OVERFLYT_NDJ_VCENTER_PASSWORD=lab["env"]["OVERFLYT_NDJ_VCENTER_PASSWORD"],
        OVERFLYT_MJ_VCENTER_PASSWORD=lab["env"]["OVERFLYT_MJ_VCENTER_PASSWORD"],
        OVERFLYT_API_AUTH_FILE=str(auth_file),
    )  # the device password only in the vault
    canaries = {
        "ndj vCenter password": lab["env"]["OVERFLYT_NDJ_VCENTER_PASSWORD"],
        "mj vCenter password": lab["env"]["OVERFLYT_MJ_VCENTER_PASSWORD"],
        "device password": lab["env"]["OVERFLYT_NDJ_NETWORK_PASSWORD"],
        "vault password": Path(vault_password_file).read_text().strip(),
        "API auth string": auth_file.read_text().strip(),
    }
    assert all(len(v) >= 12 for v in canaries.values())

    user = lab["devices"][0]["user"]
    logins = tmp_path / "logins"
    logins.write_text(f"{user}:Changed-by-someone-else-22\n{user}:{lab['devices'][0]['password']}\n")
    logins.chmod(0o600)
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(plan), str(logins)], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    during: set[str] = set()
    scans = 0
    try:
        while process.poll() is None:  # runner dirs and the process list while the playbooks run
            during.update(_leaks(canaries, state))
            during.update(_on_command_lines(canaries))
            scans += 1
            time.sleep(0.3)
        console = process.stdout.read() if process.stdout else ""
    finally:  # whatever happens, the run ends here and the device's password is the lab's again
        if process.poll() is None:
            process.kill()
            process.wait()
        subprocess.run(["chpasswd"], input=logins.read_text().splitlines()[1] + "\n", text=True, check=True)
        logins.unlink()
    assert process.returncode == 0, console[-3000:]
    assert "STATES ['COMPLETED', 'COMPLETED', 'COMPLETED'] FAILED" in console
    # the failing cutover says why — the device, its address and the user — and no secret
    assert re.search(
        rf"FAILED BECAUSE wave 1 ended with exit code 1: grenaa-raadhus: rolled_back — backup: .*"
        rf"device ndj-\S+ \(\S+:\d+\) refused the login of user {user}",
        console,
    ), console[-3000:]
    assert "output hidden" not in console
    assert "Changed-by-someone-else-22" not in console
    assert "API WITHOUT AUTH STRING: 401" in console
    assert scans > 20
    assert sorted(during) == []
    assert _leaks(canaries, state, prefect_home) == []
    assert [name for name, value in canaries.items() if value in console] == []
    assert _orphaned_secret_dirs() == [], "secret files outlived their run"
    # The runs happened and used the secrets: three run records, the vault was read, the wave was
    # cut over and rolled back, Prefect stored the runs.
    assert len(list(state.glob("707/wave-1/*/*/record.json"))) >= 3
    assert re.search(
        r'"grenaa-raadhus": \{\s*"status": "rolled_back"', (state / "707" / "wave-1" / "state.json").read_text()
    )
    assert next(prefect_home.rglob("*.db")).stat().st_size > 0
