"""Runner artifacts rotate: old runs lose ansible-runner's job events, never their record or backups."""

from __future__ import annotations

from pathlib import Path

import pytest

from overflyt.record import Run


def _fake_run(kind_dir: Path, run_id: str) -> Path:
    run = kind_dir / run_id
    (run / "ansible" / "01-precheck" / "artifacts" / "abc").mkdir(parents=True)
    (run / "ansible" / "01-precheck" / "artifacts" / "abc" / "stdout").write_text("events")
    (run / "backups").mkdir()
    (run / "backups" / "core.cfg").write_text("hostname core\n")
    (run / "record.json").write_text("{}")
    return run


def test_all_but_the_newest_runs_lose_their_runner_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERFLYT_KEEP_RUNNER_ARTIFACTS", "3")
    kind_dir = tmp_path / "707" / "wave-1" / "wave"
    old = [_fake_run(kind_dir, f"20261123T10{i:02d}00Z-aaaaaa") for i in range(5)]
    new = Run.create("wave", "707", 1, ["s"], dry_run=False, base=tmp_path)
    # 6 runs now, 3 keep their artifacts: the new one and the two newest before it
    assert [(r / "ansible" / "01-precheck" / "artifacts").exists() for r in old] == [False, False, False, True, True]
    assert all((r / "record.json").exists() and (r / "backups" / "core.cfg").exists() for r in old)
    assert new.dir.exists()
