"""What a failed change left on each device, from what was re-read (netops.classify)."""

from __future__ import annotations

from overflyt.steps.network import DeviceRestored, DeviceVerified, RestoreResult, VerifyResult, classify


def _restored(host: str, before: str, backup: str) -> DeviceRestored:
    return DeviceRestored(
        hostname=host,
        backup_file=f"/backups/{host}.cfg",
        backup_sha256=backup,
        before_sha256=before,
        after_sha256=backup,
        pending_lines=[],
        pushed_lines=[],
        changed=before != backup,
        unrestorable=[],
        restored=True,
    )


def _verified(host: str, ok: bool) -> DeviceVerified:
    return DeviceVerified(hostname=host, verified=ok, missing=[] if ok else ["ip route x"], extra=[], config_sha256="x")


def test_applied_partly_and_not_applied() -> None:
    restored = RestoreResult(
        site="s",
        dry_run=False,
        duration_s=1.0,
        devices={
            "core": _restored("core", before="b", backup="a"),  # changed, holds the desired state
            "fw": _restored("fw", before="c", backup="a"),  # changed, does not hold it
            "sw": _restored("sw", before="a", backup="a"),  # still its backup
        },
    )
    verified = VerifyResult(
        site="s",
        wave=1,
        duration_s=1.0,
        devices={"core": _verified("core", True), "fw": _verified("fw", False), "sw": _verified("sw", False)},
    )
    assert classify(verified, restored) == {"core": "applied", "fw": "partly applied", "sw": "not applied"}


def test_unread_devices_are_never_called_applied() -> None:
    restored = RestoreResult(
        site="s", dry_run=False, duration_s=1.0, devices={"core": _restored("core", before="b", backup="a")}
    )
    assert classify(None, restored) == {"core": "partly applied"}
