"""The inventory beside a plan is read by Ansible itself (issue 17, point 2): ``host_vars/x.yaml``,
``group_vars/<group>/`` directories, Ansible's precedence, inline ``!vault`` values decrypted with
the usual password sources (``ANSIBLE_VAULT_PASSWORD_FILE``, vault ids), drift named with file and
line as Ansible tells it, a vault value never written in clear, one read per command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret
from pydantic import SecretStr

from overflyt.ansible.inventory import build_inventory
from overflyt.cli import main
from overflyt.errors import PlanInvalid
from overflyt.plan import ansible_inventory, load
from overflyt.plan.credentials import ResolvedCredential

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"
FW = "ndj-fw-01"


def vaulted(value: str, password: str, vault_id: str = "default") -> str:
    text = VaultLib().encrypt(value, VaultSecret(password.encode()), vault_id=vault_id).decode()
    return "!vault |\n" + "".join(f"  {line}\n" for line in text.splitlines())


@pytest.fixture
def plan_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample plan with its inventory in another layout Ansible accepts: ``group_vars/network/``
    a directory (with an inline vault value), ``host_vars/<host>.yaml``."""
    monkeypatch.chdir(tmp_path)
    for name in ("ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST", "OVERFLYT_VAULT_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(SAMPLE / "plan.yml", tmp_path / "plan.yml")
    shutil.copy(SAMPLE / "hosts.yml", tmp_path / "hosts.yml")
    (tmp_path / "group_vars" / "network").mkdir(parents=True)
    shutil.copy(SAMPLE / "group_vars" / "network.yml", tmp_path / "group_vars" / "network" / "connection.yml")
    shutil.copy(SAMPLE / "group_vars" / "frr.yml", tmp_path / "group_vars" / "frr.yml")
    (tmp_path / "group_vars" / "network" / "vault.yml").write_text(
        "ansible_password: " + vaulted("s3cret from the vault", "vault-pw")
    )
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / f"{FW}.yaml").write_text("---\nansible_command_timeout: 45\n")
    (tmp_path / "vault-pass").write_text("vault-pw\n")
    return tmp_path


def test_every_layout_is_read_with_ansibles_precedence_and_the_vault_value_decrypted(
    plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(plan_dir / "vault-pass"))
    loaded = load(plan_dir / "plan.yml")
    fw = loaded.connections.host_vars[FW]
    assert fw["ansible_password"].get_secret_value() == "s3cret from the vault"  # group_vars/network/vault.yml
    assert "s3cret" not in repr(loaded)  # a vault value is a secret: never shown
    assert fw["ansible_command_timeout"] == 45  # host_vars/x.yaml beats group_vars/network/
    assert fw["ansible_connection"] == "ansible.netcommon.network_cli"  # group_vars/network/connection.yml
    assert fw["ansible_network_os"] == "cisco.ios.ios"  # group_vars/frr.yml
    assert loaded.connections.host_vars["ndj-core-01"]["ansible_command_timeout"] == 30
    assert loaded.connections.secrets[FW] == frozenset({"ansible_password"})
    assert FW in loaded.connections.groups["frr"]


def test_vault_ids_are_a_password_source_too(plan_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (plan_dir / "group_vars" / "network" / "vault.yml").write_text(
        "ansible_password: " + vaulted("by id", "lab-pw", vault_id="lab")
    )
    (plan_dir / "lab-pass").write_text("lab-pw\n")
    monkeypatch.setenv("ANSIBLE_VAULT_IDENTITY_LIST", f"lab@{plan_dir / 'lab-pass'}")
    assert load(plan_dir / "plan.yml").connections.host_vars[FW]["ansible_password"].get_secret_value() == "by id"


def test_a_vault_value_without_its_password_is_one_clear_error(plan_dir: Path) -> None:
    with pytest.raises(PlanInvalid) as failed:
        load(plan_dir / "plan.yml")
    [issue] = failed.value.issues
    assert (issue.file, issue.line) == ("group_vars/network/vault.yml", 1)
    assert issue.reason.startswith("ansible_password of ndj-core-01: a vault value that could not be decrypted (")
    assert issue.reason.endswith(
        "give its password with ANSIBLE_VAULT_PASSWORD_FILE or vault ids (ANSIBLE_VAULT_IDENTITY_LIST)"
    )


def test_a_malformed_vars_file_is_named_with_its_line(
    plan_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(plan_dir / "vault-pass"))
    (plan_dir / "host_vars" / f"{FW}.yaml").write_text("---\nansible_port: [2223\n")
    assert main(["plan", "validate", "plan.yml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[1].startswith(f"  host_vars/{FW}.yaml:3: YAML parsing failed: ")
    assert "Traceback" not in err


def test_a_wrong_port_in_host_vars_yaml_is_drift_named_with_its_file_and_line(
    plan_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(plan_dir / "vault-pass"))
    (plan_dir / "host_vars" / f"{FW}.yaml").write_text("---\nansible_command_timeout: 45\nansible_port: 2223\n")
    assert main(["plan", "validate", "plan.yml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "overflyt: plan invalid: 1 error",
        f"  host_vars/{FW}.yaml:3: {FW}.ansible_port: differs from the plan's port 2222 (value: 2223)",
    ]


def test_the_inventory_is_read_once_per_command(plan_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(plan_dir / "vault-pass"))
    reads: list[Path] = []
    real = ansible_inventory._read
    monkeypatch.setattr(ansible_inventory, "_read", lambda source: reads.append(source) or real(source))
    load(plan_dir / "plan.yml")
    load(plan_dir / "plan.yml")
    assert reads == [plan_dir / "hosts.yml"]
    (plan_dir / "host_vars" / f"{FW}.yaml").write_text("---\nansible_command_timeout: 46\n")  # changed: read again
    assert load(plan_dir / "plan.yml").connections.host_vars[FW]["ansible_command_timeout"] == 46
    assert len(reads) == 2


def test_the_vault_password_reaches_the_run_as_a_secret_file_and_wins_over_the_reference(
    plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(plan_dir / "vault-pass"))
    loaded = load(plan_dir / "plan.yml")
    credentials = {
        name: ResolvedCredential(name, "overflyt", SecretStr("from the reference")) for name in loaded.plan.credentials
    }
    inventory, secrets = build_inventory(
        loaded.plan, loaded.connections, plan_dir, sites=["grenaa-raadhus"], credentials=credentials, vcenters=False
    )
    fw = inventory["all"]["children"]["network"]["hosts"][FW]
    assert (
        fw["ansible_password"]
        == "{{ lookup('ansible.builtin.file', overflyt_secret_files['inventory/ndj-fw-01/ansible_password']) }}"
    )
    assert fw["ansible_user"] == "overflyt"
    assert secrets[f"inventory/{FW}/ansible_password"].get_secret_value() == "s3cret from the vault"
    assert "s3cret from the vault" not in repr(inventory)
    # a failed login names where the password came from: the inventory's vault value, or the plan's entry
    assert fw["overflyt_credentials"] == f"the inventory's ansible_password of {FW}"
    # the sample has no password in its inventory; read from a working directory that holds another
    # inventory's group_vars/ (this test's, with a vault password), which must not leak into it
    sample = load(SAMPLE / "plan.yml")
    inventory, _ = build_inventory(
        sample.plan, sample.connections, SAMPLE, sites=["grenaa-raadhus"], credentials=credentials, vcenters=False
    )
    core = inventory["all"]["children"]["network"]["hosts"]["ndj-core-01"]
    assert core["overflyt_credentials"] == "credentials entry ndj-network"
