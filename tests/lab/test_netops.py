"""The network half of a site cutover against the lab's FRR routers: backup, configure + verify,
real traffic post-check, restore byte-equal (sections included); idempotence; a dry run that
provably sends no configuration command; a push the device partly rejects; a restore the device
refuses."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overflyt.errors import PlaybookFailed, RollbackFailed
from overflyt.lab import probe
from overflyt.plan import Plan, load_plan
from overflyt.plan.credentials import ResolvedCredential, resolve_all
from overflyt.record import Run
from overflyt.steps.network import backup_site, configure_site, postcheck_site, restore_site, verify_site

from .labtools import step_ctx

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PLAN_PATH = REPO / "inventories" / "norddjurs" / "plan.yml"
KATTEGAT = "ndj-kattegat-rtr-01"
VOLATILE = ("Building configuration", "Current configuration")


@pytest.fixture(scope="module")
def ctx(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in lab["env"].items():
            mp.setenv(name, value)
        mp.setenv("OVERFLYT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        plan = load_plan(PLAN_PATH)
        yield {"plan": plan, "credentials": resolve_all(plan, PLAN_PATH.parent), "lab": lab}


def new_run(plan: Plan, wave: int, site: str, *, dry_run: bool = False) -> Run:
    return Run.create("wave", plan.municipality.code, wave, [site], dry_run=dry_run)


def namespace(lab: dict[str, Any], device: str) -> str:
    return str(next(d["namespace"] for d in lab["devices"] if d["name"] == device))


def vtysh(lab: dict[str, Any], device: str, *commands: str) -> str:
    args = ["vtysh", "-N", namespace(lab, device)]
    for command in commands:
        args += ["-c", command]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def running(lab: dict[str, Any], device: str) -> str:
    """The running configuration normalised as net_backup saves it."""
    lines = [line.rstrip() for line in vtysh(lab, device, "show running-config").splitlines()]
    return "\n".join(line for line in lines if not line.startswith(VOLATILE)).strip("\n") + "\n"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def answers(lab: dict[str, Any], site: str, addresses: list[str]) -> list[str]:
    client = next(c for c in lab["clients"] if c["site"] == site)
    return probe(client["namespace"], [(a, 7070) for a in addresses])


def routes(lab: dict[str, Any], device: str) -> list[str]:
    return [line for line in running(lab, device).splitlines() if line.startswith("ip route ")]


@pytest.fixture
def restore_by_hand(ctx: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Safety net: whatever a test does, every device it names is put back to its initial routes."""
    lab = ctx["lab"]
    initial: dict[str, str] = {}
    yield initial
    for device, config in initial.items():
        want = [line for line in config.splitlines() if line.startswith("ip route ")]
        have = routes(lab, device)
        commands = [f"no {r}" for r in have if r not in want] + [r for r in want if r not in have]
        if commands:
            vtysh(lab, device, "configure terminal", *commands)
        assert running(lab, device) == config, f"{device} not back to its initial configuration"


def creds(ctx: dict[str, Any]) -> dict[str, ResolvedCredential]:
    return dict(ctx["credentials"])


# -- (a) the whole cycle on one site, with real traffic -------------------------------------------


def test_cutover_moves_traffic_and_restore_brings_it_back(ctx: dict[str, Any], restore_by_hand: dict[str, str]) -> None:
    plan, lab = ctx["plan"], ctx["lab"]
    restore_by_hand[KATTEGAT] = before = running(lab, KATTEGAT)
    run = new_run(plan, 2, "kattegatskolen")
    assert answers(lab, "kattegatskolen", ["10.70.10.11", "10.70.20.21"]) == [
        "source 10.70.10.11",
        "source 10.70.20.21",
    ]

    started = time.monotonic()
    backups = backup_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen")
    backup_s = time.monotonic() - started
    assert list(backups) == [KATTEGAT]
    assert Path(backups[KATTEGAT].file).read_text() == before
    assert backups[KATTEGAT].sha256 == sha(before)
    assert Path(backups[KATTEGAT].file).parent == run.dir / "backups" / "cutover"

    # before the change, the post-check fails and names every moved server
    with pytest.raises(PlaybookFailed) as failed:
        postcheck_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen")
    for address in ["10.70.10.11", "10.70.10.12", "10.70.10.20"]:
        assert f"{address} answered 'source {address}' (expected target)" in str(failed.value)

    started = time.monotonic()
    result = configure_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen", backups, dry_run=False)
    configure_s = time.monotonic() - started
    device = result.devices[KATTEGAT]
    assert (device.pushed_lines, device.changed, device.verified) == (
        ["ip route 10.70.10.0/24 10.255.70.9"],
        True,
        True,
    )
    assert routes(lab, KATTEGAT) == ["ip route 0.0.0.0/0 10.70.250.9", "ip route 10.70.10.0/24 10.255.70.9"]

    started = time.monotonic()
    verified = verify_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen")
    verify_s = time.monotonic() - started
    assert verified.devices[KATTEGAT].verified
    assert verified.devices[KATTEGAT].config_sha256 != sha(before)

    started = time.monotonic()
    check = postcheck_site(
        step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen", expect={"10.70.20.21": "source"}
    )
    postcheck_s = time.monotonic() - started
    assert not check.skipped
    assert check.probes["10.70.10.11"].side == "target"
    assert check.probes["10.70.20.21"].side == "source"
    assert sorted(check.probes) == sorted([*(f"10.70.10.{n}" for n in (11, 12, 13, 14, 15, 16, 17, 20)), "10.70.20.21"])
    assert all(p.ok and p.reached for p in check.probes.values())
    assert answers(lab, "kattegatskolen", ["10.70.10.11", "10.70.20.21"]) == [
        "target 10.70.10.11",
        "source 10.70.20.21",
    ]

    started = time.monotonic()
    restored = restore_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen", backups, dry_run=False)
    restore_s = time.monotonic() - started
    device_r = restored.devices[KATTEGAT]
    assert device_r.pushed_lines == ["no ip route 10.70.10.0/24 10.255.70.9"]
    assert (device_r.restored, device_r.after_sha256, device_r.backup_sha256) == (True, sha(before), sha(before))
    assert device_r.before_sha256 != sha(before)
    assert running(lab, KATTEGAT) == before
    assert answers(lab, "kattegatskolen", ["10.70.10.11"]) == ["source 10.70.10.11"]
    print(
        f"\nkattegatskolen: backup {backup_s:.1f}s, configure+verify {configure_s:.1f}s, verify {verify_s:.1f}s, "
        f"post-check {postcheck_s:.1f}s, restore {restore_s:.1f}s"
    )


# -- (b) idempotence, with a next hop replaced ----------------------------------------------------


def test_second_configure_and_second_restore_change_nothing(
    ctx: dict[str, Any], restore_by_hand: dict[str, str]
) -> None:
    plan, lab = ctx["plan"], ctx["lab"]
    devices = ["ndj-core-01", "ndj-fw-01", "ndj-sw-raadhus-01"]
    for name in devices:
        restore_by_hand[name] = running(lab, name)
    run = new_run(plan, 1, "grenaa-raadhus")
    backups = backup_site(step_ctx(plan, PLAN_PATH, 1, run, creds(ctx)), "grenaa-raadhus")
    assert sorted(backups) == sorted(devices)

    first = configure_site(step_ctx(plan, PLAN_PATH, 1, run, creds(ctx)), "grenaa-raadhus", backups, dry_run=False)
    assert first.devices["ndj-core-01"].pushed_lines == [
        "ip route 10.70.10.0/24 10.255.70.1",
        "no ip route 10.70.10.0/24 10.70.252.2",
    ]
    assert [first.devices[d].changed for d in devices] == [True, False, False]
    assert all(first.devices[d].verified for d in devices)
    assert "ip route 10.70.10.0/24 10.255.70.1" in routes(lab, "ndj-core-01")
    assert "ip route 10.70.10.0/24 10.70.252.2" not in routes(lab, "ndj-core-01")

    second = configure_site(step_ctx(plan, PLAN_PATH, 1, run, creds(ctx)), "grenaa-raadhus", backups, dry_run=False)
    assert not second.changed
    assert {d: (r.pending_lines, r.pushed_lines, r.verified) for d, r in second.devices.items()} == {
        d: ([], [], True) for d in devices
    }

    restored = restore_site(step_ctx(plan, PLAN_PATH, 1, run, creds(ctx)), "grenaa-raadhus", backups, dry_run=False)
    assert restored.restored
    assert restored.devices["ndj-core-01"].pushed_lines == [
        "no ip route 10.70.10.0/24 10.255.70.1",
        "ip route 10.70.10.0/24 10.70.252.2",
    ]
    assert [restored.devices[d].changed for d in devices] == [True, False, False]
    again = restore_site(step_ctx(plan, PLAN_PATH, 1, run, creds(ctx)), "grenaa-raadhus", backups, dry_run=False)
    assert {d: (r.changed, r.pushed_lines, r.restored) for d, r in again.devices.items()} == {
        d: (False, [], True) for d in devices
    }
    for name in devices:
        assert running(lab, name) == restore_by_hand[name], name


# -- (c) dry run: the diff is shown, no configuration command reaches the device ------------------


def test_dry_run_shows_the_diff_and_sends_no_configuration_command(
    ctx: dict[str, Any], restore_by_hand: dict[str, str]
) -> None:
    plan, lab = ctx["plan"], ctx["lab"]
    device = "ndj-auning-rtr-01"
    restore_by_hand[device] = initial = running(lab, device)
    ns = namespace(lab, device)
    logs = [Path(f"/var/run/frr/{ns}/zebra.log"), Path(f"/var/run/frr/{ns}/staticd.log")]
    # FRR's daemons log every command they receive once `log commands` is on: the device's own record.
    vtysh(lab, device, "configure terminal", "log commands")
    try:
        before = running(lab, device)
        offsets = [log.stat().st_size for log in logs]
        run = new_run(plan, 2, "auning-adm", dry_run=True)
        backups = backup_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "auning-adm", dry_run=True)
        result = configure_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "auning-adm", backups, dry_run=True)
        received = [
            line for log, offset in zip(logs, offsets, strict=True) for line in log.read_text()[offset:].splitlines()
        ]
        after = running(lab, device)
    finally:
        vtysh(lab, device, "configure terminal", "no log commands")

    dry = result.devices[device]
    assert dry.pending_lines == [
        "ip route 10.70.10.0/24 10.255.70.5",
        "ip route 10.70.20.0/24 10.255.70.5",
        "no ip route 10.70.20.0/24 10.70.252.6",
        "ip route 10.70.30.0/24 10.255.70.5",
        "no ip route 10.70.30.0/24 10.70.252.10",
    ]
    assert (dry.pushed_lines, dry.changed, dry.verified) == ([], False, False)
    assert dry.missing == [line for line in dry.pending_lines if not line.startswith("no ")]
    assert after == before  # byte-identical
    # FRR's daemons received exactly the reads of the dry run's sessions (vtysh turns
    # `show running-config` into `do write terminal`) and no configuration command at all
    assert {line.split("@", 1)[-1] for line in received} == {"> enable", "# do write terminal"}, received
    assert not [line for line in received if "configure" in line or "ip route" in line], received
    # the diff was shown: lines removed and added
    stdout = "\n".join(p.read_text() for p in run.dir.glob("ansible/*net-configure*/artifacts/*/stdout"))
    for line in ["+ip route 10.70.20.0/24 10.255.70.5", "-ip route 10.70.20.0/24 10.70.252.6"]:
        assert line in stdout, stdout
    assert running(lab, device) == initial


# -- (d) a push the device partly rejects ----------------------------------------------------------


def test_rejected_line_fails_verify_by_name_and_restore_brings_the_device_back(
    ctx: dict[str, Any], restore_by_hand: dict[str, str]
) -> None:
    plan, lab = ctx["plan"], ctx["lab"]
    restore_by_hand[KATTEGAT] = before = running(lab, KATTEGAT)
    run = new_run(plan, 2, "kattegatskolen")
    backups = backup_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen")
    bad = "ip route 10.70.99.0/33 10.255.70.9"  # vtysh answers "% Unknown command" and goes on
    with pytest.raises(PlaybookFailed) as failed:
        configure_site(
            step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)),
            "kattegatskolen",
            backups,
            dry_run=False,
            extra_lines={KATTEGAT: [bad]},
        )
    assert failed.value.failed_hosts == (KATTEGAT,)
    assert f"{KATTEGAT} does not hold its desired state: missing: {bad}" in str(failed.value)
    assert "ip route 10.70.10.0/24 10.255.70.9" in routes(lab, KATTEGAT)  # the rest of the push landed

    restored = restore_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen", backups, dry_run=False)
    assert restored.devices[KATTEGAT].restored
    assert running(lab, KATTEGAT) == before


# -- restore that cannot restore, and a site without a probe --------------------------------------


def test_restore_brings_back_changes_inside_an_interface_and_a_router_section(
    ctx: dict[str, Any], restore_by_hand: dict[str, str]
) -> None:
    """hier_config's remediation, sections included: a description changed inside ``interface lan``
    and a network swapped inside ``router rip`` (the lab's ripd, passive) during the window come back
    byte-equal; a backup altered since it was taken is refused (RollbackFailed naming the device and
    the step) and nothing is pushed."""
    plan, lab = ctx["plan"], ctx["lab"]
    restore_by_hand[KATTEGAT] = initial = running(lab, KATTEGAT)
    vtysh(lab, KATTEGAT, "configure terminal", "router rip", "passive-interface default", "network 10.70.102.0/24")
    try:
        before = running(lab, KATTEGAT)
        assert "\nrouter rip\n" in before
        run = new_run(plan, 2, "kattegatskolen")
        backups = backup_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen")
        vtysh(lab, KATTEGAT, "configure terminal", "interface lan", "description changed by hand", "exit",
              "router rip", "no network 10.70.102.0/24", "network 10.99.0.0/16", "exit",
              "ip route 10.70.98.0/24 10.255.70.9")  # fmt: skip
        restored = restore_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen", backups, dry_run=False)
        device = restored.devices[KATTEGAT]
        assert device.restored, device
        assert device.unrestorable == []
        assert device.pending_lines[0] == "no ip route 10.70.98.0/24 10.255.70.9"
        assert set(device.pending_lines) == {
            "no ip route 10.70.98.0/24 10.255.70.9",
            "interface lan",
            " description client LAN kattegatskolen",
            "router rip",
            " no network 10.99.0.0/16",
            " network 10.70.102.0/24",
        }
        assert running(lab, KATTEGAT) == before
        assert device.after_sha256 == device.backup_sha256 == sha(before)

        backup = Path(backups[KATTEGAT].file)
        backup.write_text(backup.read_text().replace("client LAN", "client lan"))
        with pytest.raises(RollbackFailed) as failed:
            restore_site(step_ctx(plan, PLAN_PATH, 2, run, creds(ctx)), "kattegatskolen", backups, dry_run=False)
        assert f"{KATTEGAT}: Refuse a missing or altered backup" in str(failed.value)
        assert running(lab, KATTEGAT) == before  # nothing pushed
    finally:
        vtysh(lab, KATTEGAT, "configure terminal", "no router rip", "interface lan",
              "description client LAN kattegatskolen")  # fmt: skip
    assert running(lab, KATTEGAT) == initial


def test_postcheck_of_a_site_without_probe_is_skipped(ctx: dict[str, Any]) -> None:
    plan: Plan = ctx["plan"]
    sites = [s.model_copy(update={"probe": None}) if s.id == "kattegatskolen" else s for s in plan.sites]
    unprobed = plan.model_copy(update={"sites": sites})
    result = postcheck_site(
        step_ctx(unprobed, PLAN_PATH, 2, new_run(plan, 2, "kattegatskolen"), creds(ctx)), "kattegatskolen"
    )
    assert (result.skipped, result.reason, result.probes) == (True, "the site has no probe (plan site.probe)", {})
