"""Plans for the lab benchmarks, generated in the sample plan's image (same endpoints, credentials
references and trust files, so ``overflyt lab up --plan`` builds the matching lab).

* :func:`vm_plan` — P3: ``sites`` sites of ``vms_per_site`` VMs each, one wave holding every site,
  each site its own server subnet behind its own router (the first site's is the core the others hang
  off); concurrency limits all set to one value.
* :func:`device_plan` — P4: one site whose ``devices`` routers (one distribution router, the rest
  access switches hanging off it) get the cutover's change; no VMs.

Addresses stay inside the pools the lab uses (10.70.0.0/16 on the municipal side, 10.255.70.0/24
for the datacentre links), management addresses are 127.0.70.N on port 2222 like the sample's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from common import REPO

SAMPLE = REPO / "inventories" / "norddjurs" / "plan.yml"


def _base(concurrency: int) -> dict[str, Any]:
    sample = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    lab_state = REPO / "lab" / ".state"
    plan: dict[str, Any] = {
        key: sample[key] for key in ("schema_version", "municipality", "credentials", "source", "target", "ssh")
    }
    for side in ("source", "target"):
        plan[side]["vcenter"]["tls"] = {"ca_file": str(lab_state / "tls" / "ca.pem")}
    plan["ssh"] = {"known_hosts": str(lab_state / "known_hosts")}
    plan["concurrency"] = dict.fromkeys(("global", "per_host", "per_datastore", "per_site"), concurrency)
    plan["rollback"] = "automatic"
    plan["on_site_failure"] = "continue"
    plan["approval_required"] = False
    return plan


def _device(n: int, hostname: str, site: str, role: str) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "site": site,
        "role": role,
        "platform": "frr",
        "management": f"127.0.70.{n}",
        "port": 2222,
        "credentials": "ndj-network",
    }


def vm_disks_gb(j: int) -> list[int]:
    """The disks of a site's VM number ``j`` (from 0): the first a 120 GB file server, the others
    10, 20, 30 or 40 GB in turn, so moves take different times under simulated transfer."""
    return [120] if j == 0 else [10 * (1 + j % 4)]


def vm_plan(
    path: Path, *, sites: int, vms_per_site: int, concurrency: int, hosts: int = 10, sites_at_once: int = 1
) -> Path:
    if not 1 <= sites <= 60 or not 1 <= vms_per_site <= 200:
        raise ValueError("sites 1..60, vms_per_site 1..200")
    plan = _base(concurrency)
    plan["concurrency"]["sites"] = sites_at_once
    plan["network_map"] = []
    plan["storage_map"] = [
        {"source": "ndj-ds-bench-01", "target": "mj-ds-gold-01"},
        {"source": "ndj-ds-bench-02", "target": "mj-ds-silver-01"},
    ]
    plan["sites"], plan["devices"], plan["vms"] = [], [], []
    for i in range(sites):
        site = f"p3-site-{i + 1:02d}"
        subnet, n = f"10.70.{10 + i}.0/24", f"{i + 1:02d}"
        plan["network_map"].append(
            {"source": f"VM-Site-{n}", "target": f"NDJ-707-Site-{n}", "vlan": 1800 + i, "subnet": subnet}
        )
        plan["sites"].append(
            {
                "id": site,
                "name": f"Bench site {i + 1}",
                "kind": "office",
                "address_block": f"10.70.{100 + i}.0/24",
                "dc_link": {"subnet": f"10.255.70.{4 * i}/30", "bandwidth_mbps": 10000},
                "probe": {"netns": f"ofl-cl-{site}", "port": 7070},
            }
        )
        if i:  # every other site hangs off the first site's core router, as in the sample
            uplink = {"device": "p3-rtr-01", "subnet": f"10.70.250.{4 * i}/30", "bandwidth_mbps": 10000}
            plan["sites"][-1]["uplink"] = uplink
        plan["devices"].append(_device(i + 1, f"p3-rtr-{i + 1:02d}", site, "distribution" if i else "core"))
        for j in range(vms_per_site):
            plan["vms"].append(
                {
                    "name": f"p3-vm-{i + 1:02d}-{j + 1:03d}",
                    "site": site,
                    "host": f"ndj-esx{(i * vms_per_site + j) % hosts + 1:02d}",
                    "datastore": f"ndj-ds-bench-0{j % 2 + 1}",
                    "cpu": 1,
                    "memory_mb": 1024,
                    "disks_gb": vm_disks_gb(j),
                    "portgroups": [f"VM-Site-{i + 1:02d}"],
                    "ip": f"10.70.{10 + i}.{11 + j}",
                    "power": "powered_on",
                    "tools": "ok",
                    "app_group": f"app-{i + 1:02d}-{j + 1:03d}",
                    "criticality": "medium",
                }
            )
    plan["waves"] = [
        {
            "number": 1,
            "name": "Benchmark wave",
            "sites": [s["id"] for s in plan["sites"]],
            "window": {"start": "2027-03-06 18:00", "end": "2027-03-08 06:00"},
        }
    ]
    return _write(path, plan)


def device_plan(path: Path, *, devices: int) -> Path:
    if not 1 <= devices <= 60:
        raise ValueError("devices 1..60")
    plan = _base(1)
    site = "p4-site"
    plan["network_map"], plan["storage_map"], plan["vms"] = [], [], []
    plan["sites"] = [
        {
            "id": site,
            "name": "Bench site",
            "kind": "office",
            "address_block": "10.70.100.0/24",
            "dc_link": {"subnet": "10.255.70.0/30", "bandwidth_mbps": 10000},
            "probe": {"netns": f"ofl-cl-{site}", "port": 7070},
        }
    ]
    plan["devices"] = [_device(1, "p4-rtr-01", site, "distribution")]
    plan["devices"] += [_device(n, f"p4-sw-{n:02d}", site, "access") for n in range(2, devices + 1)]
    plan["waves"] = [
        {
            "number": 1,
            "name": "Benchmark wave",
            "sites": [site],
            "window": {"start": "2027-03-06 18:00", "end": "2027-03-07 06:00"},
        }
    ]
    return _write(path, plan)


def _write(path: Path, plan: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Generated by bench/labplan.py for a benchmark; not a real plan.\n" + yaml.safe_dump(plan, sort_keys=False),
        encoding="utf-8",
    )
    return path
