"""The synthetic national estate: exact totals, deterministic, valid, and shaped like the real thing."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime
from ipaddress import IPv4Network
from typing import Any

import pytest

from overflyt.discovery.estate import Estate, validate_estate
from overflyt.lab import synth
from overflyt.planning.waves import PlanningOptions, plan_waves


@pytest.fixture(scope="module")
def nation() -> dict[str, dict[str, Any]]:
    return {code: synth.estate_data(code) for code in synth.quotas()}


def test_national_totals_are_exact(nation: dict[str, dict[str, Any]]) -> None:
    assert len(nation) == 98
    assert sum(len(e["sites"]) for e in nation.values()) == 13_632
    assert sum(len(e["hosts"]) for e in nation.values()) == 1_798
    assert sum(len(e["vms"]) for e in nation.values()) == 21_480
    assert sum(len(s.get("access_points", [])) for e in nation.values() for s in e["sites"]) == 147_909


def test_every_municipality_is_a_valid_estate(nation: dict[str, dict[str, Any]]) -> None:
    for code, data in nation.items():
        estate = Estate.model_validate(data)
        assert estate.municipality.code == code
        assert validate_estate(estate) == [], code


def test_municipalities_are_the_98_with_their_codes() -> None:
    codes = [code for code, _, _ in synth.MUNICIPALITIES]
    names = [name for _, name, _ in synth.MUNICIPALITIES]
    assert len(set(codes)) == len(set(names)) == 98
    assert all(len(c) == 3 and c.isdigit() for c in codes)
    assert ("707", "Norddjurs Kommune") in [(c, n) for c, n, _ in synth.MUNICIPALITIES]


def test_quotas_follow_population_and_keep_minimums() -> None:
    quotas = synth.quotas()
    copenhagen, laesoe = quotas["101"], quotas["825"]
    for field in ("sites", "hosts", "vms", "access_points"):
        assert max(quotas.values(), key=lambda q: getattr(q, field)) == copenhagen, field
        assert sum(getattr(q, field) for q in quotas.values()) == synth.TOTALS[field]
    assert laesoe.sites >= synth.MINIMUM["sites"]
    assert laesoe.hosts >= synth.MINIMUM["hosts"]
    assert laesoe.vms >= synth.MINIMUM["vms"]
    # Sites are laid out nationally one after another, so no two municipalities share an address.
    firsts = sorted((q.first_site, q.sites) for q in quotas.values())
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(firsts))


def test_apportion_is_exact_and_keeps_the_minimum() -> None:
    assert synth.apportion(10, [1, 1, 1]) == [4, 3, 3]  # ties go to the earlier share
    assert synth.apportion(10, [5, 3, 2], minimum=2) == [4, 3, 3]
    assert synth.apportion(7, [0, 1], minimum=0) == [0, 7]
    with pytest.raises(ValueError, match="cannot give 3 shares at least 4 out of 10"):
        synth.apportion(10, [1, 1, 1], minimum=4)


def test_deterministic_per_seed_and_per_municipality() -> None:
    assert synth.estate_data("707") == synth.estate_data("707")
    assert synth.estate_data("707", seed=1) != synth.estate_data("707")
    assert synth.estate_data("707", seed=1) == synth.estate_data("707", seed=1)
    with pytest.raises(KeyError, match="no municipality with kommunekode 999"):
        synth.estate_data("999")


def test_shapes(nation: dict[str, dict[str, Any]]) -> None:
    lans: set[str] = set()
    servers: set[str] = set()
    for code, data in nation.items():
        sites = data["sites"]
        town_hall = sites[0]
        assert (town_hall["id"], town_hall["kind"], "uplink" in town_hall) == ("raadhus", "town_hall", False)
        core = next(d["hostname"] for d in data["devices"] if d["role"] == "core")
        assert all(s["uplink"]["device"] == core for s in sites[1:])
        assert len({s["kind"] for s in sites}) >= 5, code
        host_site = {h["name"]: h["site"] for h in data["hosts"]}
        vms = data["vms"]
        by_role = Counter(vm.get("role") for vm in vms)
        assert (by_role["ad"], by_role["dhcp"]) == (2, 1), code
        # The shared services live in the town hall's server room; everything else needs something.
        assert all(host_site[vm["host"]] == "raadhus" for vm in vms if vm.get("role") in ("ad", "dhcp"))
        assert all(vm.get("depends_on") for vm in vms if vm.get("role") != "ad"), code
        assert len({vm["app_group"] for vm in vms}) >= 8, code
        # Portgroups: at most PORTGROUP_VMS VMs, one home site, whole app groups.
        pg_vms: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for vm in vms:
            (pg,) = vm["portgroups"]
            pg_vms[pg].append(vm)
        group_pgs: dict[str, set[str]] = defaultdict(set)
        for pg, members in pg_vms.items():
            assert len(members) <= synth.PORTGROUP_VMS
            assert len({host_site[vm["host"]] for vm in members}) == 1
            for vm in members:
                group_pgs[vm["app_group"]].add(pg)
        assert all(len(pgs) == 1 for pgs in group_pgs.values())
        # Disks: an OS disk of 40-100 GB, data disks up to 1 TB.
        assert all(40 <= vm["disks_gb"][0] <= 100 and max(vm["disks_gb"]) <= 1000 for vm in vms)
        assert 100 <= sum(sum(vm["disks_gb"]) for vm in vms) / len(vms) <= 400, code
        # Server rooms: the town hall always, care centres with a local host in the larger ones.
        assert {"raadhus"} <= set(host_site.values())
        # Access points: every site has some, the town hall and schools the most; names unique.
        aps = [ap for s in sites for ap in s["access_points"]]
        assert all(s["access_points"] for s in sites), code
        assert len(set(aps)) == len(aps)
        assert len(town_hall["access_points"]) >= max(len(s["access_points"]) for s in sites if s["kind"] == "daycare")
        lans.update(s["address_block"] for s in sites)
        servers.update(pg["subnet"] for pg in data["portgroups"])
    # Nationally unique address plan: every site LAN and server subnet distinct, and apart.
    assert len(lans) == 13_632
    assert not any(IPv4Network(s).overlaps(IPv4Network("10.128.0.0/9")) for s in lans)
    assert all(IPv4Network(s).subnet_of(IPv4Network("10.128.0.0/9")) for s in servers)
    # Copenhagen is the biggest: more than a thousand sites, care centres with local hosts.
    copenhagen = nation["101"]
    assert len(copenhagen["sites"]) > 1000
    assert any(h["site"].startswith("pleje") for h in copenhagen["hosts"])


@pytest.mark.parametrize("code", ["101", "825"])
def test_the_largest_and_the_smallest_can_be_planned_with_the_defaults(code: str) -> None:
    result = plan_waves(synth.estate(code), PlanningOptions(first_window=datetime(2027, 3, 6, 18, 0)))
    assert len(result.plan.sites) == synth.quotas()[code].sites
    assert all(e.minutes <= e.window_minutes for e in result.estimates)
