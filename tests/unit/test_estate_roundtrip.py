"""Discovery writes an estate file back with its comments and layout kept (ruamel.yaml round trip):
through `overflyt discover vcenter --estate` (vCenter's answer stood in for), and through the
device merge; an unchanged estate is written back byte for byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from overflyt.cli import main
from overflyt.discovery import vcenter
from overflyt.discovery.common import read_estate_file, write_estate_file
from overflyt.discovery.roundtrip import render

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"

ESTATE = """\
# Norddjurs Kommune as it is: written by hand, kept up to date by `overflyt discover`.
schema_version: 1
municipality: {code: "707", name: Norddjurs Kommune}   # flow style, quoted code

vms:
  # The domain controller: never moves alone.
  - {name: ndj-dc01, host: ndj-esx09, cpu: 1, role: ad, criticality: critical}
  - name: ndj-file01        # the town hall's file server
    host: ndj-esx01
    cpu: 2
    tags: ['fil', "backup"]  # as vSphere tags them

  # Printers
  - name: ndj-print01
    host: ndj-esx02
    cpu: 2
devices: []  # discover devices fills this in
"""


def _found(name: str, host: str, cpu: int) -> dict[str, Any]:
    return {"name": name, "host": host, "cpu": cpu}


def test_discover_vcenter_keeps_the_estate_files_comments_and_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = [
        _found("ndj-dc01", "ndj-esx01", 4),
        _found("ndj-file01", "ndj-esx01", 2),
        _found("ndj-print01", "ndj-esx02", 2),
    ]
    found += [_found("ndj-new01", "ndj-esx03", 1)]
    monkeypatch.setattr(vcenter, "read_source", lambda plan, path: type("Facts", (), {"name": "ndj-vcenter"})())
    monkeypatch.setattr(vcenter, "discovered", lambda facts, datacenter: found)
    estate = tmp_path / "estate.yml"
    estate.write_text(ESTATE)
    assert main(["discover", "vcenter", str(SAMPLE), "--estate", str(estate)]) == 0
    capsys.readouterr()
    assert estate.read_text() == (
        ESTATE.replace("host: ndj-esx09, cpu: 1,", "host: ndj-esx01, cpu: 4,").replace(
            "    cpu: 2\ndevices: []",
            "    cpu: 2\n  - name: ndj-new01\n    host: ndj-esx03\n    cpu: 1\ndevices: []",
        )
    )
    assert read_estate_file(estate)["vms"][0] == {**found[0], "role": "ad", "criticality": "critical"}
    # a second discovery with nothing new leaves the file byte for byte as it is
    before = estate.read_bytes()
    assert main(["discover", "vcenter", str(SAMPLE), "--estate", str(estate)]) == 0
    assert estate.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estate.yml"]  # no partial file left


def test_device_fields_land_in_block_style_under_a_flow_empty_list_and_reload_equal(tmp_path: Path) -> None:
    estate = tmp_path / "estate.yml"
    estate.write_text(ESTATE)
    data = read_estate_file(estate)
    data["devices"] = [
        {"hostname": "ndj-core-01", "site": "grenaa-raadhus", "role": "core", "platform": "ios",
         "interfaces": [{"name": "GigabitEthernet0/1", "state": "up", "addresses": ["10.70.100.1/24"]}]},
    ]  # fmt: skip
    write_estate_file(estate, data)
    text = estate.read_text()
    assert yaml.safe_load(text) == data
    assert text.startswith("# Norddjurs Kommune as it is: written by hand")
    assert "  # The domain controller: never moves alone.\n" in text
    assert "  - name: ndj-file01        # the town hall's file server\n" in text
    assert re.search(r"\ndevices: +# discover devices fills this in\n  - hostname: ndj-core-01\n", text), text


def test_a_file_without_comments_or_an_empty_one_is_written_plainly() -> None:
    data = {"vms": [{"name": "a", "cpu": 1}], "devices": []}
    assert render("", data) == "vms:\n  - name: a\n    cpu: 1\ndevices: []\n"
    assert yaml.safe_load(render("vms:\n- name: a\n  cpu: 2\n", data)) == data
    assert render("vms:\n- name: a\n  cpu: 2\n", data).startswith("vms:\n- name: a\n  cpu: 1\n")
