"""The site's post-check on a real estate's terms, against the lab: from a probe host at the site
reached over SSH (the lab's client namespaces, each a real sshd on a management address), and from
the site's gateway device's own ping (`cisco.ios.ios_ping` sourced from its LAN address; the lab's
router CLI runs it as a real ping inside the router's namespace). A wave through either reports a
real post-check, and the traffic failing through either rolls the site back.

The plans are copies of the light sample plan whose town hall (grenaa-raadhus) has no netns probe
but one of the two others."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from overflyt.cutover.outcome import shown_status
from overflyt.cutover.wave import Approval, WaveOutcome, rollback_site, run_wave
from overflyt.errors import PlaybookFailed
from overflyt.plan import Plan, load_plan
from overflyt.plan.credentials import resolve_all
from overflyt.plan.model import ProbeSSH, SiteProbe
from overflyt.record import Run
from overflyt.steps.device_changes import postcheck_targets
from overflyt.steps.network import postcheck_site

from .labtools import LIGHT_VMS, estate, light_plan, step_ctx

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

NETNS_PROBE = "probe: {netns: ofl-cl-grenaa-raadhus, port: 7070}"
APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0017")
DC_CORE = "ofl-dc-core"
LIGHT_ADDRESSES = ["10.70.10.11", "10.70.10.12", "10.70.10.13"]  # ndj-dc01, ndj-dc02, ndj-dhcp01


def probe_host(lab: dict[str, Any], site: str) -> dict[str, Any]:
    ssh: dict[str, Any] = next(c["ssh"] for c in lab["clients"] if c["site"] == site)
    return ssh


def with_probe(lab: dict[str, Any], where: Path, probe: str) -> Path:
    plan = light_plan(lab, where)
    text = plan.read_text()
    assert NETNS_PROBE in text
    plan.write_text(text.replace(NETNS_PROBE, f"probe: {probe}"))
    return plan


def ssh_plan(lab: dict[str, Any], where: Path) -> Path:
    ssh = probe_host(lab, "grenaa-raadhus")
    return with_probe(lab, where, f"{{ssh: {{host: {ssh['address']}, port: {ssh['port']}, credentials: ndj-network}}}}")


def gateway_plan(lab: dict[str, Any], where: Path) -> Path:
    return with_probe(lab, where, "{gateway: {source: 10.70.100.1, count: 2}}")


def wave1(plan: Path, on_step: Callable[[str, str, str], None] | None = None) -> WaveOutcome:
    return run_wave(plan, 1, dry_run=False, approval=APPROVAL, outside_window=True, on_step=on_step)


@pytest.fixture
def blackhole() -> Iterator[Callable[..., None]]:
    """Drops traffic to ``prefix`` in ``namespace`` once called (default: the shared datacentre's
    traffic to ndj-dc01, 10.70.10.11); undone after the test."""
    added: list[tuple[str, str]] = []

    def add(namespace: str = DC_CORE, prefix: str = "10.70.10.11/32") -> None:
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "route", "replace", "blackhole", prefix], check=True)
        added.append((namespace, prefix))

    yield add
    for namespace, prefix in added:
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "route", "del", "blackhole", prefix], check=True)


def at_postcheck(inject: Callable[[], None]) -> Callable[[str, str, str], None]:
    def on_step(site: str, name: str, status: str) -> None:
        if name == "postcheck" and status == "started":
            inject()

    return on_step


def test_the_router_cli_answers_an_ios_ping_sourced_from_its_lan(lab: dict[str, Any], blackhole: Any) -> None:
    """What the lab translates: IOS `ping ... source ...` on the router's CLI is a real ping from
    the router's namespace, answered in IOS's words (the DC core's blackhole makes it fail)."""
    device = next(d for d in lab["devices"] if d["name"] == "ndj-core-01")

    def ping(command: str) -> str:
        client = paramiko.SSHClient()
        client.load_host_keys(lab["known_hosts"])
        client.connect(device["address"], device["port"], device["user"], device["password"],
                       look_for_keys=False, allow_agent=False)  # fmt: skip
        try:
            _, out, _ = client.exec_command(command, timeout=20)
            return str(out.read().decode())
        finally:
            client.close()

    answer = ping("ping 10.70.10.11 repeat 2 timeout 1 source 10.70.100.1")
    assert "Packet sent with a source address of 10.70.100.1\n!!\n" in answer
    assert "Success rate is 100 percent (2/2), round-trip min/avg/max = " in answer
    assert ping("ping 10.70.10.11 repeat 1 source 10.9.9.9").startswith("% Invalid source address")
    blackhole("ofl-src-10.70.10.0", "10.70.100.1/32")  # ndj-dc01 (still at home) drops its replies
    assert "Success rate is 0 percent (0/2)" in ping("ping 10.70.10.11 repeat 2 timeout 1 source 10.70.100.1")


def test_the_probe_host_checks_host_keys_and_probes_from_the_site(lab: dict[str, Any]) -> None:
    """Step level, before any change: from kattegatskolen's probe host over SSH, every server of
    wave 2 answers from the municipality's side; the probe host's key must be known."""
    plan_path = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"
    plan = load_plan(plan_path)
    ssh = probe_host(lab, "kattegatskolen")
    probe = SiteProbe(ssh=ProbeSSH(host=ssh["address"], port=ssh["port"], credentials="ndj-network"))
    sites = [s.model_copy(update={"probe": probe}) if s.id == "kattegatskolen" else s for s in plan.sites]
    probed: Plan = plan.model_copy(update={"sites": sites})
    credentials = resolve_all(plan, plan_path.parent)
    run = Run.create("wave", plan.municipality.code, 2, ["kattegatskolen"], dry_run=False)
    targets: dict[str, Any] = dict.fromkeys(postcheck_targets(probed, 2, "kattegatskolen"), "source")
    assert targets
    result = postcheck_site(step_ctx(probed, plan_path, 2, run, credentials), "kattegatskolen", expect=targets)
    assert (result.skipped, result.via) == (False, "ssh")
    assert all(p.ok and p.side == "source" for p in result.probes.values()), result.probes
    unknown = probed.model_copy(update={"ssh": probed.ssh.model_copy(update={"known_hosts": None})})  # no key known
    with pytest.raises(PlaybookFailed) as refused:
        postcheck_site(step_ctx(unknown, plan_path, 2, run, credentials), "kattegatskolen", expect=targets)
    assert "authenticity of host" in str(refused.value).lower(), str(refused.value)


@pytest.mark.parametrize("path", ["ssh", "gateway"])
def test_a_wave_without_a_netns_probe_proves_its_traffic(lab: dict[str, Any], si: Any, tmp_path: Path,
                                                         path: str) -> None:  # fmt: skip
    plan = ssh_plan(lab, tmp_path) if path == "ssh" else gateway_plan(lab, tmp_path)
    before = estate(si, lab)
    outcome = wave1(plan)
    try:
        [site] = outcome.sites
        assert (site.status, site.error) == ("done", None), site
        assert shown_status(site.status, site.postcheck) == "done"
        check = site.postcheck
        assert (check["skipped"], check["via"]) == (False, path)
        assert sorted(check["probes"]) == LIGHT_ADDRESSES
        assert all(p["ok"] and p["reached"] for p in check["probes"].values()), check
        sides = {p["side"] for p in check["probes"].values()}
        assert sides == ({"target"} if path == "ssh" else {None})  # a ping cannot tell the sides apart
        assert len(LIGHT_VMS) == len(check["probes"])
    finally:
        back = rollback_site(plan, "grenaa-raadhus")
    assert back.exit_code == 0, [(s.site, s.status, s.error) for s in back.sites]
    assert estate(si, lab) == before


@pytest.mark.parametrize("path", ["ssh", "gateway"])
def test_traffic_failing_through_the_path_rolls_the_site_back(lab: dict[str, Any], si: Any, tmp_path: Path,
                                                               blackhole: Any, path: str) -> None:  # fmt: skip
    plan = ssh_plan(lab, tmp_path) if path == "ssh" else gateway_plan(lab, tmp_path)
    before = estate(si, lab)
    outcome = wave1(plan, on_step=at_postcheck(blackhole))
    assert outcome.exit_code == 1
    [site] = outcome.sites
    assert site.status == "rolled_back", site
    assert site.error is not None
    assert site.error.startswith("postcheck: post-check of site grenaa-raadhus failed: 10.70.10.11 answered ")
    answer = "'error: " if path == "ssh" else "'ping 0/2 echo replies'"
    assert f"10.70.10.11 answered {answer}" in site.error, site.error
    assert "(expected target)" in site.error
    assert estate(si, lab) == before
