"""bench/run.py: runs each pN_*.py in order, repeats their verdicts and exits 1 when one missed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_runner():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script(path: Path, verdict: str, code: int) -> None:
    path.write_text(f"import sys\nprint('table')\nprint({verdict!r})\nsys.exit({code})\n")


def summary_line(out: str, name: str) -> str:
    """The summary's line of one benchmark, without the column padding."""
    line = next(x for x in out.split("== summary", 1)[1].splitlines() if x.split()[:1] == [name])
    return " ".join(line.split())


def test_summary_repeats_verdicts_and_exit_status_follows_them(tmp_path, capsys):
    runner = load_runner()
    script(tmp_path / "p2_second.py", "target b: **MISSED** (2x)", 1)
    script(tmp_path / "p1_first.py", "target a: met", 0)
    (tmp_path / "helper.py").write_text("raise SystemExit('not a benchmark')\n")

    assert runner.main([], directory=tmp_path) == 1
    out = capsys.readouterr().out
    assert out.index("== p1_first.py") < out.index("== p2_second.py")
    assert "helper.py" not in out
    first, second = out.split("== summary", 1)[1].strip().splitlines()
    assert first.split()[:3] == ["p1_first.py", "target", "met"]
    assert first.endswith("target a: met")
    assert second.split()[:3] == ["p2_second.py", "target", "missed"]
    assert second.endswith("target b: MISSED (2x)")


def test_all_met_exits_zero_and_a_crash_is_an_error(tmp_path, capsys):
    runner = load_runner()
    script(tmp_path / "p1_ok.py", "target ok: met", 0)
    assert runner.main([], directory=tmp_path) == 0
    script(tmp_path / "p2_error.py", "target never", 2)
    assert runner.main([], directory=tmp_path) == 1
    assert summary_line(capsys.readouterr().out, "p2_error.py").startswith("p2_error.py error (exit 2) (")


def test_a_traceback_is_an_error_not_a_missed_target(tmp_path, capsys):
    runner = load_runner()
    (tmp_path / "p1_crash.py").write_text("raise RuntimeError('lab gone')\n")
    assert runner.main([], directory=tmp_path) == 1
    out = capsys.readouterr().out
    assert summary_line(out, "p1_crash.py").startswith("p1_crash.py error (exit 1, no verdict line) (")
    assert "target missed" not in out
