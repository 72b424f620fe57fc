"""The overflyt.vsphere modules that decide without a vCenter (vm_locate, vm_report) run by FQCN
under ansible-playbook, as the roles vm_migrate and vm_rollback call them: a refusal fails the task
with the message the role's report carries (and still returns where the VM was found), a VM wrong
after its move makes its report the failed one, check mode turns a change into would_move, and the
results are the placement functions'."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from localplay import ansible_playbook

from overflyt.precheck.facts import VCenterFacts, VMFacts
from overflyt.providers.vsphere import (
    Placement,
    RelocationTarget,
    locate_for_migration,
    locate_for_rollback,
    relocation_of,
    report_migration,
    report_rollback,
)

REPO = Path(__file__).resolve().parents[2]
VM, SRC, TGT, FOLDER = "ndj-print01", "NDJ-DC", "MJ-DC1", "Kommuner/707-Norddjurs"


def vm(datacenter: str, moid: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": VM, "moid": moid, "datacenter": datacenter, "cluster": "NDJ-Cluster-01", "host": "ndj-esx02",
        "folder": "Servere", "datastores": ["ndj-ds-grenaa-01"], "cpu": 2, "memory_mb": 2048, "disks_gb": [40],
        "portgroups": ["VM-Faelles-10"], "power": "powered_on", "tools": "ok",
    }  # fmt: skip
    values.update(fields)
    return VMFacts(**values).model_dump(mode="json")


def facts(*vms: dict[str, Any]) -> dict[str, Any]:
    return VCenterFacts(name="vc", url="https://vc/sdk", reachable=True, vms={v["moid"]: v for v in vms}).model_dump(
        mode="json"
    )


SOURCE = facts(vm(SRC, "vm-52"))
CLASH = facts(vm(TGT, "vm-2001", folder=FOLDER, power="powered_off"))
AT_TARGET = {
    "cluster": "MJ-Kommuner-01",
    "folder": FOLDER,
    "datastores": ["mj-ds-gold-01"],
    "portgroups": ["NDJ-707-Faelles"],
}
MOVED = facts(vm(TGT, "vm-1043", host="mj-esx02", **AT_TARGET))  # on another host than the target's
ARRIVED = facts(vm(TGT, "vm-1043", host="mj-esx01", **AT_TARGET))
RECORDED = Placement(
    vm=VM, moid="vm-52", datacenter=SRC, cluster="NDJ-Cluster-01", host="ndj-esx02", datastore="ndj-ds-grenaa-01",
    folder="Servere", portgroups=["VM-Faelles-10"], power="powered_on",
)  # fmt: skip
TARGET = {
    "datacenter": TGT, "cluster": "MJ-Kommuner-01", "host": "mj-esx01", "datastore": "mj-ds-gold-01",
    "folder": FOLDER, "portgroups": {"VM-Faelles-10": "NDJ-707-Faelles"},
}  # fmt: skip
BEFORE = RECORDED.model_dump(mode="json", exclude={"moid"})
MOVE = {
    "changed": True, "before": BEFORE, "after": {**BEFORE, **TARGET, "portgroups": ["NDJ-707-Faelles"]},
    "duration_s": 1.5, "cross_vcenter": True, "msg": "moved",
}  # fmt: skip
MIGRATE = {"vm": VM, "purpose": "migrate", "placement": RECORDED.model_dump(mode="json"), "relocation": MOVE,
           "target": TARGET, "tools": "ok"}  # fmt: skip


def task(name: str, module: str, args: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, f"overflyt.vsphere.{module}": args, "register": name, "ignore_errors": True, **more}


TASKS = [
    task("clash", "vm_locate", {"vm": VM, "purpose": "migrate", "source_facts": SOURCE, "target_facts": CLASH,
                                "source_datacenter": SRC, "target_datacenter": TGT}),
    task("leftover", "vm_locate", {"vm": VM, "purpose": "rollback", "source_facts": SOURCE, "target_facts": CLASH,
                                   "target_datacenter": TGT, "recorded": RECORDED.model_dump(mode="json"),
                                   "target_folder": FOLDER}),
    task("missing_option", "vm_locate", {"vm": VM, "purpose": "rollback", "source_facts": SOURCE,
                                         "target_facts": CLASH, "target_datacenter": TGT}),
    task("bad_facts", "vm_locate", {"vm": VM, "purpose": "migrate", "source_facts": {"name": "vc", "vms": "nope"},
                                    "target_facts": CLASH, "source_datacenter": SRC, "target_datacenter": TGT}),
    task("wrong_host", "vm_report", {**MIGRATE, "facts": MOVED, "power": {"changed": False, "skipped": True}}),
    task("moved", "vm_report", {**MIGRATE, "facts": ARRIVED}),
    task("would_move", "vm_report", MIGRATE, check_mode=True),
    task("not_back", "vm_report", {"vm": VM, "purpose": "rollback", "placement": None,
                                   "recorded": RECORDED.model_dump(mode="json"), "target_datacenter": TGT,
                                   "relocation": {**MOVE, "before": MOVE["after"], "after": BEFORE},
                                   "facts": SOURCE, "moved_from_facts": MOVED}),
    task("failed", "vm_report", {"vm": VM, "purpose": "rollback", "placement": None,
                                 "recorded": RECORDED.model_dump(mode="json"), "target_datacenter": TGT,
                                 "leftover": {"changed": True}, "error": "vm x: in neither"}),
]  # fmt: skip
PLAY = [
    {
        "name": "The deciding overflyt.vsphere modules",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            *TASKS,
            {
                "name": "Write what they returned",
                "ansible.builtin.copy": {
                    "content": "{{ {" + ", ".join(f"'{t['name']}': {t['name']}" for t in TASKS) + "} | to_json }}",
                    "dest": "{{ playbook_dir }}/results.json",
                    "mode": "0600",
                },
            },
        ],
    }
]


def run(tmp_path: Path) -> dict[str, dict[str, Any]]:
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    done = ansible_playbook(tmp_path, "localhost")
    assert done.returncode == 0, done.stdout + done.stderr
    results: dict[str, dict[str, Any]] = json.loads((tmp_path / "results.json").read_text())
    return results


def test_the_deciding_modules_under_ansible(tmp_path: Path) -> None:
    r = run(tmp_path)
    source, clash, moved = (VCenterFacts.model_validate(f) for f in (SOURCE, CLASH, MOVED))

    located = locate_for_migration(VM, source, clash, SRC, TGT)
    assert located.refusal is not None
    assert (r["clash"]["failed"], r["clash"]["msg"], r["clash"]["changed"]) == (True, located.refusal, False)
    assert (r["clash"]["placement"], r["clash"]["side"]) == (RECORDED.model_dump(mode="json"), "source")

    leftover = locate_for_rollback(VM, source, clash, RECORDED, TGT, FOLDER)
    assert (r["leftover"].get("failed", False), r["leftover"]["leftover"], r["leftover"]["datacenter"]) == (
        False, True, SRC,
    )  # fmt: skip
    assert leftover.leftover
    assert r["missing_option"]["failed"]
    assert (
        r["missing_option"]["msg"]
        == "purpose is rollback but all of the following are missing: recorded, target_folder"
    )
    assert r["bad_facts"]["failed"]
    assert r["bad_facts"]["msg"] == (
        "source_facts: url: Field required; reachable: Field required; vms: Input should be a valid dictionary"
    )
    assert "nope" not in r["bad_facts"]["msg"]  # never the input values

    target = RelocationTarget(**TARGET)
    wrong = report_migration(
        VM, target, "ok", RECORDED, relocation_of(MOVE, "vm-52"), power_changed=False, after=moved, check_mode=False
    )
    assert wrong.error == f"vm {VM} is not as it should be after its move: host is mj-esx02, not mj-esx01"
    assert (r["wrong_host"]["report"], r["wrong_host"]["msg"]) == (wrong.model_dump(mode="json"), wrong.error)
    assert (r["wrong_host"].get("failed", False), r["wrong_host"]["changed"]) == (False, False)  # the role fails it

    assert r["moved"]["report"]["status"] == "moved"
    assert r["moved"]["report"]["after"]["moid"] == "vm-1043"  # as read after the move
    assert r["would_move"]["report"]["status"] == "would_move"
    assert r["would_move"]["report"]["after"] == {**MOVE["after"], "moid": "vm-52"}
    not_back = report_rollback(
        VM, RECORDED, TGT, None, relocation_of({**MOVE, "before": MOVE["after"], "after": BEFORE}, ""),
        power_changed=False, leftover_removed=False, after=(source, moved), check_mode=False,
    )  # fmt: skip
    assert r["not_back"]["report"] == not_back.model_dump(mode="json")
    assert not_back.error == f"vm {VM} is not back as recorded: a VM of that name is still in {TGT} (vm-1043)"
    assert r["failed"]["report"] == {
        "status": "failed", "before": None, "after": None, "seconds": 0.0, "leftover_removed": True,
        "error": "vm x: in neither",
    }  # fmt: skip


def test_every_module_documents_exactly_its_options(tmp_path: Path) -> None:
    """ansible-doc reads every module's DOCUMENTATION, EXAMPLES and RETURN, and the options it
    documents are the module's argument_spec."""
    modules = sorted((REPO / "collections/ansible_collections/overflyt/vsphere/plugins/modules").glob("*.py"))
    names = [f"overflyt.vsphere.{m.stem}" for m in modules]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", *names],
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), ANSIBLE_LOCAL_TEMP=str(tmp_path)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    docs = json.loads(done.stdout)
    assert sorted(docs) == names, done.stderr
    for module in modules:
        doc = docs[f"overflyt.vsphere.{module.stem}"]
        assert doc["examples"], module.stem
        assert doc["return"], module.stem
        # the one argument spec, which the module and its action plugin both validate against
        spec = next(
            node.value
            for node in ast.parse(module.read_text()).body
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["ARGUMENT_SPEC"]
        )
        assert isinstance(spec, ast.Dict)
        options = {ast.literal_eval(key) for key in spec.keys if key is not None}
        assert set(doc["doc"]["options"]) == options, module.stem


def test_each_module_runs_in_the_worker_as_it_runs_as_a_module(tmp_path: Path) -> None:
    """Each module has an action plugin of its name (its work runs in the task's worker, no module
    interpreter starts), and the deciding modules return the same through it as they return run as
    a module process (AnsibleModule), refusals and validation failures included."""
    plugins = REPO / "collections/ansible_collections/overflyt/vsphere/plugins"
    assert sorted(p.stem for p in (plugins / "action").glob("*.py")) == sorted(
        p.stem for p in (plugins / "modules").glob("*.py")
    )
    through_ansible = run(tmp_path)
    for t in TASKS:
        name = t["name"]
        module = next(k.rsplit(".", 1)[1] for k in t if k.startswith("overflyt.vsphere."))
        args = {**t[f"overflyt.vsphere.{module}"], "_ansible_check_mode": bool(t.get("check_mode"))}
        (tmp_path / f"{name}.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        done = subprocess.run(
            [sys.executable, str(plugins / "modules" / f"{module}.py"), str(tmp_path / f"{name}.json")],
            env=dict(os.environ, PYTHONPATH=str(REPO / "collections")),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        as_module = json.loads(done.stdout)
        as_module.pop("invocation")  # a registered result never holds it (Ansible's strategy drops it)
        # what ansible-playbook adds to any failed or registered result, whichever ran it
        in_worker = dict(through_ansible[name])
        in_worker.pop("_ansible_no_log", None)
        if in_worker.get("exception") == "(traceback unavailable)":
            del in_worker["exception"]
        in_worker.setdefault("failed", False)
        as_module.setdefault("failed", False)
        as_module.setdefault("changed", False)
        assert in_worker == as_module, name
        assert done.returncode == (1 if as_module["failed"] else 0), (name, done.stderr)
