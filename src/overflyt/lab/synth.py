"""A synthetic national estate: all 98 Danish municipalities, deterministic for a seed.

Exact national totals (:data:`TOTALS`): 13,632 sites, 1,798 physical hosts, 21,480 VMs and
147,909 access points, shared out between the municipalities by (approximate) population and,
within one, between its sites by kind. Each municipality gets realistic shapes: a town hall that
is the network core and holds the shared services (two domain controllers that also serve DNS and
NTP, DHCP, PKI) and the main server room; an administration centre with a second server room in
the larger ones; care centres with a local host running nurse call and access control; app groups
(SQL, case management, finance, citizen self-service, file and print, remote desktop, ...) whose
VMs depend on the domain controllers and on an SQL server; server portgroups of at most
:data:`PORTGROUP_VMS` VMs and :data:`PORTGROUP_GB` GB, each holding whole app groups; a router
(and switches) per site, uplinked to the town hall's core.

``estate_data(code)`` returns one municipality's estate as plain data (what an estate file holds);
``estate(code)`` validates it into an :class:`~overflyt.discovery.estate.Estate`. A municipality does not
depend on the others: each draws from its own seeded generator, and the address plan is laid out
nationally from the quotas alone, so no two municipalities share an address block.

This lives in the package, not in bench/, because the unit tests (the planner's round trip) and the
benchmarks both build on it, and it is held to the same type checking as the code it exercises.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from overflyt.discovery.estate import Estate

SEED = 2027
TOTALS = {"sites": 13_632, "hosts": 1_798, "vms": 21_480, "access_points": 147_909}
PORTGROUP_VMS = 24
PORTGROUP_GB = 3_000

# Kommunekode, name, approximate population (used only as weights).
MUNICIPALITIES: tuple[tuple[str, str, int], ...] = (
    ("101", "Københavns Kommune", 660_000),
    ("147", "Frederiksberg Kommune", 104_000),
    ("151", "Ballerup Kommune", 49_000),
    ("153", "Brøndby Kommune", 39_000),
    ("155", "Dragør Kommune", 15_000),
    ("157", "Gentofte Kommune", 75_000),
    ("159", "Gladsaxe Kommune", 70_000),
    ("161", "Glostrup Kommune", 24_000),
    ("163", "Herlev Kommune", 30_000),
    ("165", "Albertslund Kommune", 28_000),
    ("167", "Hvidovre Kommune", 54_000),
    ("169", "Høje-Taastrup Kommune", 56_000),
    ("173", "Lyngby-Taarbæk Kommune", 56_000),
    ("175", "Rødovre Kommune", 41_000),
    ("183", "Ishøj Kommune", 23_000),
    ("185", "Tårnby Kommune", 43_000),
    ("187", "Vallensbæk Kommune", 17_000),
    ("190", "Furesø Kommune", 41_000),
    ("201", "Allerød Kommune", 26_000),
    ("210", "Fredensborg Kommune", 41_000),
    ("217", "Helsingør Kommune", 63_000),
    ("219", "Hillerød Kommune", 53_000),
    ("223", "Hørsholm Kommune", 25_000),
    ("230", "Rudersdal Kommune", 57_000),
    ("240", "Egedal Kommune", 44_000),
    ("250", "Frederikssund Kommune", 45_000),
    ("253", "Greve Kommune", 51_000),
    ("259", "Køge Kommune", 62_000),
    ("260", "Halsnæs Kommune", 31_000),
    ("265", "Roskilde Kommune", 90_000),
    ("269", "Solrød Kommune", 24_000),
    ("270", "Gribskov Kommune", 41_000),
    ("306", "Odsherred Kommune", 33_000),
    ("316", "Holbæk Kommune", 73_000),
    ("320", "Faxe Kommune", 37_000),
    ("326", "Kalundborg Kommune", 49_000),
    ("329", "Ringsted Kommune", 36_000),
    ("330", "Slagelse Kommune", 80_000),
    ("336", "Stevns Kommune", 24_000),
    ("340", "Sorø Kommune", 30_000),
    ("350", "Lejre Kommune", 29_000),
    ("360", "Lolland Kommune", 40_000),
    ("370", "Næstved Kommune", 84_000),
    ("376", "Guldborgsund Kommune", 60_000),
    ("390", "Vordingborg Kommune", 46_000),
    ("400", "Bornholms Regionskommune", 39_000),
    ("410", "Middelfart Kommune", 39_000),
    ("420", "Assens Kommune", 41_000),
    ("430", "Faaborg-Midtfyn Kommune", 52_000),
    ("440", "Kerteminde Kommune", 24_000),
    ("450", "Nyborg Kommune", 32_000),
    ("461", "Odense Kommune", 208_000),
    ("479", "Svendborg Kommune", 59_000),
    ("480", "Nordfyns Kommune", 30_000),
    ("482", "Langeland Kommune", 12_000),
    ("492", "Ærø Kommune", 6_000),
    ("510", "Haderslev Kommune", 56_000),
    ("530", "Billund Kommune", 27_000),
    ("540", "Sønderborg Kommune", 74_000),
    ("550", "Tønder Kommune", 37_000),
    ("561", "Esbjerg Kommune", 115_000),
    ("563", "Fanø Kommune", 3_500),
    ("573", "Varde Kommune", 50_000),
    ("575", "Vejen Kommune", 42_000),
    ("580", "Aabenraa Kommune", 58_000),
    ("607", "Fredericia Kommune", 52_000),
    ("615", "Horsens Kommune", 98_000),
    ("621", "Kolding Kommune", 95_000),
    ("630", "Vejle Kommune", 121_000),
    ("657", "Herning Kommune", 90_000),
    ("661", "Holstebro Kommune", 59_000),
    ("665", "Lemvig Kommune", 20_000),
    ("671", "Struer Kommune", 21_000),
    ("706", "Syddjurs Kommune", 43_000),
    ("707", "Norddjurs Kommune", 37_000),
    ("710", "Favrskov Kommune", 49_000),
    ("727", "Odder Kommune", 23_000),
    ("730", "Randers Kommune", 99_000),
    ("740", "Silkeborg Kommune", 100_000),
    ("741", "Samsø Kommune", 3_700),
    ("746", "Skanderborg Kommune", 64_000),
    ("751", "Aarhus Kommune", 370_000),
    ("756", "Ikast-Brande Kommune", 42_000),
    ("760", "Ringkøbing-Skjern Kommune", 56_000),
    ("766", "Hedensted Kommune", 47_000),
    ("773", "Morsø Kommune", 20_000),
    ("779", "Skive Kommune", 46_000),
    ("787", "Thisted Kommune", 43_000),
    ("791", "Viborg Kommune", 98_000),
    ("810", "Brønderslev Kommune", 36_000),
    ("813", "Frederikshavn Kommune", 59_000),
    ("820", "Vesthimmerlands Kommune", 37_000),
    ("825", "Læsø Kommune", 1_700),
    ("840", "Rebild Kommune", 31_000),
    ("846", "Mariagerfjord Kommune", 42_000),
    ("849", "Jammerbugt Kommune", 38_000),
    ("851", "Aalborg Kommune", 222_000),
    ("860", "Hjørring Kommune", 64_000),
)

MINIMUM = {"sites": 20, "hosts": 2, "vms": 25}

# Site kinds other than the town hall and administration centre, with their share and, per site,
# access points (weight), uplink bandwidth and access switches.
KINDS: tuple[tuple[str, str, str, int, int, int, int], ...] = (
    # kind, id prefix, Danish name, share, AP weight, uplink Mbps, access switches
    ("daycare", "dagtilbud", "Børnehuset", 34, 4, 100, 0),
    ("school", "skole", "Skole", 18, 25, 1000, 2),
    ("care_centre", "pleje", "Plejecenter", 12, 10, 500, 1),
    ("office", "kontor", "Kontor", 11, 12, 1000, 1),
    ("library", "bibliotek", "Bibliotek", 8, 6, 200, 0),
    ("depot", "materiel", "Materielgård", 7, 3, 200, 0),
)
TOWN_HALL_AP_WEIGHT = 40

# App groups: name, VMs (low, high), role, data disk GB (low, high) or 0, needs SQL.
APPS: tuple[tuple[str, int, int, str | None, int, int, bool], ...] = (
    ("sql", 2, 4, "sql", 200, 1000, False),
    ("esdh", 3, 6, "app", 0, 0, True),
    ("okonomi", 2, 4, "app", 50, 200, True),
    ("borgerservice", 2, 4, "web", 0, 0, True),
    ("sso", 2, 2, "adfs", 0, 0, False),
    ("rds", 3, 8, "rds", 0, 100, False),
    ("fil-print", 2, 4, "file", 200, 1000, False),
    ("backup", 2, 3, "backup", 100, 200, False),
    ("drift", 2, 5, "monitoring", 100, 500, False),
    ("gis", 1, 3, "app", 100, 300, True),
    ("intranet", 1, 2, "web", 0, 0, True),
    ("telefoni", 1, 2, "voice", 0, 0, False),
    ("skoleadm", 2, 5, "app", 0, 200, True),
    ("vikar", 1, 2, "app", 0, 0, True),
    ("arkiv", 1, 2, "archive", 200, 1000, False),
)


@dataclass(frozen=True)
class Quota:
    """One municipality's share of the national totals, and where its addresses start."""

    index: int
    code: str
    name: str
    sites: int
    hosts: int
    vms: int
    access_points: int
    first_site: int  # national index of its first site


def apportion(total: int, weights: list[int], minimum: int = 0) -> list[int]:
    """``total`` split in proportion to ``weights`` (at least ``minimum`` each), exactly, by largest
    remainder (ties to the earlier); integer arithmetic, so the same on every machine."""
    rest = total - minimum * len(weights)
    if rest < 0:
        raise ValueError(f"cannot give {len(weights)} shares at least {minimum} out of {total}")
    whole = sum(weights)
    shares = [rest * w // whole for w in weights]
    remainders = [rest * w % whole for w in weights]
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[: rest - sum(shares)]:
        shares[i] += 1
    return [minimum + s for s in shares]


@cache
def quotas() -> dict[str, Quota]:
    """Every municipality's share of :data:`TOTALS`, by kommunekode."""
    population = [p for _, _, p in MUNICIPALITIES]
    sites = apportion(TOTALS["sites"], population, MINIMUM["sites"])
    hosts = apportion(TOTALS["hosts"], population, MINIMUM["hosts"])
    vms = apportion(TOTALS["vms"], population, MINIMUM["vms"])
    aps = apportion(TOTALS["access_points"], sites, 0)
    out: dict[str, Quota] = {}
    first = 0
    for i, (code, name, _) in enumerate(MUNICIPALITIES):
        out[code] = Quota(i, code, name, sites[i], hosts[i], vms[i], aps[i], first)
        first += sites[i]
    return out


def estate(code: str, seed: int = SEED, scale: tuple[int, int, int] | None = None) -> Estate:
    """One municipality's synthetic estate, validated."""
    return Estate.model_validate(estate_data(code, seed, scale))


def estate_data(code: str, seed: int = SEED, scale: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """One municipality's synthetic estate as plain data (the shape of an estate file); ``scale``
    (sites, hosts, VMs) instead of its national share: a small one of the same shapes (a lab's)."""
    quota = quotas().get(code)
    if quota is None:
        raise KeyError(f"no municipality with kommunekode {code}")
    if scale is not None:
        quota = replace(quota, sites=scale[0], hosts=scale[1], vms=scale[2], access_points=3 * scale[0])
    return _Builder(quota, random.Random(f"overflyt-synth-{seed}-{code}")).build()


def _dotted(address: int) -> str:
    return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"


def _net(base: int, index: int, prefix: int) -> str:
    """The ``index``-th /``prefix`` from ``base`` (integer arithmetic: tens of thousands of these)."""
    return f"{_dotted(base + index * 2 ** (32 - prefix))}/{prefix}"


LANS = 10 << 24  # from 10.0.0.0: one /24 per site, nationally (13,632 of them end below 10.54.0.0)
SERVERS = (10 << 24) + (128 << 16)  # 10.128.0.0/9: 256 server /24s per municipality
UPLINKS = (172 << 24) + (16 << 16)  # 172.16.0.0/14: one /30 per site
MANAGEMENT = (172 << 24) + (24 << 16)  # 172.24.0.0/13: eight device addresses per site


class _Builder:
    def __init__(self, quota: Quota, rng: random.Random) -> None:
        self.q = quota
        self.rng = rng
        self.prefix = f"k{quota.code}"
        self.short = quota.name.removesuffix(" Kommune").removesuffix("s Regionskommune")
        self.sites: list[dict[str, Any]] = []
        self.hosts: list[dict[str, Any]] = []
        self.portgroups: list[dict[str, Any]] = []
        self.vms: list[dict[str, Any]] = []
        self.devices: list[dict[str, Any]] = []
        self.hosts_at: dict[str, list[str]] = {}
        self.stores_at: dict[str, list[str]] = {}
        self.ap_weights: list[int] = []
        self.devices_at: dict[str, int] = {}
        self.dcs: list[str] = []
        self.sql: dict[str, list[str]] = {}

    def build(self) -> dict[str, Any]:
        self._sites()
        self._hosts()
        self._vms()
        self._access_points()
        vcenter = f"{self.prefix}-vcenter"
        return {
            "schema_version": 1,
            "municipality": {"code": self.q.code, "name": self.q.name},
            "vcenters": [
                {
                    "name": vcenter,
                    "url": f"https://vcenter.{self.prefix}.synth.invalid/sdk",
                    "datacenter": f"{self.prefix.upper()}-DC",
                    "cluster": f"{self.prefix.upper()}-Cluster-01",
                }
            ],
            "hosts": self.hosts,
            "sites": self.sites,
            "portgroups": self.portgroups,
            "vms": self.vms,
            "devices": self.devices,
        }

    # -- sites and their network ---------------------------------------------------------------

    def _sites(self) -> None:
        q, rng = self.q, self.rng
        core = f"{self.prefix}-core-01"
        self._site("raadhus", f"{self.short} Rådhus", "town_hall", None, TOWN_HALL_AP_WEIGHT)
        self._device(core, "raadhus", "core")
        self._device(f"{self.prefix}-fw-01", "raadhus", "firewall")
        for k in range(1 + (q.sites > 60) + (q.sites > 300)):
            self._device(f"{self.prefix}-sw-raadhus-{k + 1:02d}", "raadhus", "access")
        kinds: list[tuple[str, str, str, int, int, int, int]] = []
        if self._has_admin_centre():
            kinds.append(("office", "adm", "Administrationscenter", 0, 15, 10000, 2))
        # Care centres with a local host come first so there are enough of them.
        kinds += [KINDS[2]] * self._care_hosts()
        rest = q.sites - 1 - len(kinds)
        kinds += rng.choices(KINDS, weights=[k[3] for k in KINDS], k=rest)
        numbers: dict[str, int] = {}
        for kind in kinds:
            name, prefix, label, _, weight, mbps, switches = kind
            numbers[prefix] = numbers.get(prefix, 0) + 1
            n = numbers[prefix]
            site_id = prefix if prefix == "adm" else f"{prefix}-{n:03d}"
            title = f"{self.short} {label}" if prefix == "adm" else f"{label} {self.short} {n}"
            self._site(site_id, title, name, {"device": core, "bandwidth_mbps": mbps}, weight)
            self._device(f"{self.prefix}-{site_id}-rtr-01", site_id, "distribution")
            for k in range(rng.randint(0, switches) if switches else 0):
                self._device(f"{self.prefix}-{site_id}-sw-{k + 1:02d}", site_id, "access")

    def _has_admin_centre(self) -> bool:
        return self.q.hosts >= 6

    def _care_hosts(self) -> int:
        return min(self.q.hosts // 8, self.q.vms // 40)

    def _site(self, site_id: str, name: str, kind: str, uplink: dict[str, Any] | None, ap_weight: int) -> None:
        g = self.q.first_site + len(self.sites)
        site: dict[str, Any] = {"id": site_id, "name": name, "kind": kind, "address_block": _net(LANS, g, 24)}
        if uplink is not None:
            site["uplink"] = {
                "device": uplink["device"],
                "subnet": _net(UPLINKS, g, 30),
                "bandwidth_mbps": uplink["bandwidth_mbps"],
            }
        self.sites.append(site)
        self.ap_weights.append(ap_weight)

    def _device(self, hostname: str, site_id: str, role: str) -> None:
        g = self.q.first_site + len(self.sites) - 1
        k = self.devices_at.get(site_id, 0)
        self.devices_at[site_id] = k + 1
        platform = "ios" if self.rng.random() < 0.65 else "aoscx"
        address = _dotted(MANAGEMENT + g * 8 + k)
        self.devices.append(
            {"hostname": hostname, "site": site_id, "role": role, "platform": platform, "management": address}
        )

    def _access_points(self) -> None:
        counts = apportion(self.q.access_points, self.ap_weights, 0)
        for site, count in zip(self.sites, counts, strict=True):
            site["access_points"] = [f"{site['id']}-ap{k + 1:03d}" for k in range(count)]

    # -- hosts and VMs -----------------------------------------------------------------------------

    def _hosts(self) -> None:
        q, rng = self.q, self.rng
        care_sites = [s["id"] for s in self.sites if s["kind"] == "care_centre"][: self._care_hosts()]
        rooms = ["raadhus", "adm"] if self._has_admin_centre() else ["raadhus"]
        rest = q.hosts - len(care_sites)
        split = apportion(rest, [11, 9][: len(rooms)], 1)
        placement = [site for site, n in zip(rooms, split, strict=True) for _ in range(n)] + care_sites
        for k, site in enumerate(placement):
            name = f"{self.prefix}-esx{k + 1:03d}"
            self.hosts.append(
                {
                    "name": name,
                    "vcenter": f"{self.prefix}-vcenter",
                    "site": site,
                    "cpu_cores": rng.choice([32, 48, 64]),
                    "memory_mb": rng.choice([512, 768, 1024]) * 1024,
                }
            )
            self.hosts_at.setdefault(site, []).append(name)
        for site, names in self.hosts_at.items():
            self.stores_at[site] = [f"{self.prefix}-ds-{site}-{n + 1:02d}" for n in range(max(1, len(names) // 2))]

    def _vms(self) -> None:
        q = self.q
        care_sites = [s for s in self.hosts_at if s not in ("raadhus", "adm")]
        care_budget = 4 * len(care_sites)
        rooms: list[str] = [s for s in ("raadhus", "adm") if s in self.hosts_at]
        budgets = apportion(q.vms - care_budget, [len(self.hosts_at[s]) for s in rooms], 0)
        # Town hall: the shared services first.
        groups: dict[str, list[list[dict[str, Any]]]] = {s: [] for s in rooms}
        dc = [self._vm("dc01", "raadhus", "ad", ["ad", "dns", "ntp"], "ad", 0)]
        dc.append(self._vm("dc02", "raadhus", "ad", ["ad", "dns", "ntp"], "ad", 0))
        dhcp = self._vm("dhcp01", "raadhus", "dhcp", ["dhcp"], "ad", 0, [dc[0]["name"]])
        pki = self._vm("pki01", "raadhus", "pki", [], "ad", 0, [dc[0]["name"]])
        groups["raadhus"].append([*dc, dhcp, pki])
        self.dcs = [vm["name"] for vm in dc]
        left = dict(zip(rooms, budgets, strict=True))
        left["raadhus"] -= 4
        copies: dict[str, int] = {}
        for site in rooms:
            k = 0
            while left[site] > 0:
                app = APPS[k % len(APPS)]
                k += 1
                name, low, high, role, data_low, data_high, needs_sql = app
                copies[name] = copies.get(name, 0) + 1
                group = name if copies[name] == 1 else f"{name}{copies[name]}"
                size = min(self.rng.randint(low, high), left[site])
                left[site] -= size
                members: list[dict[str, Any]] = []
                for n in range(size):
                    deps = [self.dcs[n % 2]]
                    servers = self.sql.get(site) or self.sql.get("raadhus")
                    if needs_sql and servers:
                        deps.append(servers[n % len(servers)])
                    if n and role == "web":
                        deps.append(members[0]["name"])
                    data = self.rng.randint(data_low, data_high) if data_high else 0
                    members.append(self._vm(f"{group}-{n + 1:02d}", site, role, [], group, data, deps))
                if name == "sql":
                    self.sql.setdefault(site, []).extend(vm["name"] for vm in members)
                groups[site].append(members)
        care_sql = self.sql.get("raadhus") or self.sql.get("adm") or self.dcs
        for n, site in enumerate(care_sites, start=1):
            members = [
                self._vm(f"nodkald{n:02d}a", site, "nurse-call", [], f"nodkald-{n:02d}", 0, [self.dcs[0]]),
                self._vm(f"nodkald{n:02d}b", site, "nurse-call", [], f"nodkald-{n:02d}", 0, [self.dcs[1]]),
                self._vm(f"omsorg{n:02d}", site, "gateway", [], f"omsorg-{n:02d}", 0, [care_sql[0]]),
                self._vm(f"adgang{n:02d}", site, "access-control", [], f"adgang-{n:02d}", 0, [self.dcs[0]]),
            ]
            groups[site] = [members]
        for site, site_groups in groups.items():
            self._portgroups(site, site_groups)

    def _vm(
        self,
        short: str,
        site: str,
        role: str | None,
        tags: list[str],
        group: str,
        data_gb: int,
        depends_on: list[str] | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        hosts = self.hosts_at[site]
        stores = self.stores_at[site]
        count = len(self.vms)
        power = rng.choices(["powered_on", "powered_off", "suspended"], weights=[90, 8, 2])[0]
        tools = ("ok" if rng.random() < 0.95 else "old") if power == "powered_on" else "not_running"
        vm: dict[str, Any] = {
            "name": f"{self.prefix}-{short}",
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "host": hosts[count % len(hosts)],
            "datastore": stores[count % len(stores)],
            "folder": f"{self.short}/{group}",
            "cpu": rng.choice([1, 2, 2, 2, 4, 4, 8]),
            "memory_mb": rng.choice([2, 4, 8, 8, 16, 32]) * 1024,
            "disks_gb": [rng.choice([40, 60, 80, 100]), *([data_gb] if data_gb else [])],
            "portgroups": [],
            "power": power,
            "tools": tools,
            "app_group": group,
            "criticality": rng.choices(["low", "medium", "high", "critical"], weights=[15, 45, 30, 10])[0],
        }
        if role:
            vm["role"] = role
        if tags:
            vm["tags"] = tags
        if depends_on:
            vm["depends_on"] = depends_on
        self.vms.append(vm)
        return vm

    def _portgroups(self, site: str, groups: list[list[dict[str, Any]]]) -> None:
        """Whole app groups into portgroups of at most PORTGROUP_VMS VMs and PORTGROUP_GB GB."""
        label = {"raadhus": "Faelles", "adm": "Fagsystemer"}.get(site, "Pleje")
        current: list[dict[str, Any]] = []
        size = 0
        batches: list[list[dict[str, Any]]] = []
        for group in groups:
            gb = sum(sum(vm["disks_gb"]) for vm in group)
            if current and (len(current) + len(group) > PORTGROUP_VMS or size + gb > PORTGROUP_GB):
                batches.append(current)
                current, size = [], 0
            current = current + group
            size += gb
        if current:
            batches.append(current)
        for members in batches:
            index = len(self.portgroups)
            vlan = 100 + index
            name = f"VM-{label}-{vlan}"
            network = SERVERS + (self.q.index * 256 + index) * 256
            self.portgroups.append({"name": name, "vlan": vlan, "subnet": f"{_dotted(network)}/24"})
            for n, vm in enumerate(members):
                vm["portgroups"] = [name]
                vm["ip"] = _dotted(network + 11 + n)
