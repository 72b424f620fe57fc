"""Run every benchmark, one after another: each ``bench/pN_*.py``, in the order of N.

Each benchmark is a script that measures one thing, prints its table, says whether it meets its
target, appends its result to bench/RESULTS.md and exits 0 when the target is met (1 when not, 2 on
error). Extra arguments are passed to every benchmark (e.g. ``--no-record``). The summary at the end
repeats each one's verdict line (its target and what it measured). A benchmark that exits without
printing its verdict line (a traceback exits 1 too) is an error in the summary, never "target
missed". Exit status: 0 when every benchmark met its target, else 1. `make bench` runs this.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
NAME = re.compile(r"^p(\d+)_\w+\.py$")


def benchmarks(directory: Path = BENCH) -> list[Path]:
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def main(argv: list[str], directory: Path = BENCH) -> int:
    outcome: list[tuple[str, str, float, str]] = []
    for script in benchmarks(directory):
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        verdict = ""
        with subprocess.Popen([sys.executable, str(script), *argv], stdout=subprocess.PIPE, text=True) as process:
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                if line.startswith("target "):
                    verdict = line.strip().replace("**", "")
        outcome.append((script.name, judged(process.returncode, verdict), time.monotonic() - started, verdict))
    print("\n== summary")
    for name, said, seconds, verdict in outcome:
        print(f"  {name:<20} {said:<14} ({seconds:.0f} s)  {verdict}")
    return 0 if all(said == "target met" for _, said, _, _ in outcome) else 1


def judged(code: int, verdict: str) -> str:
    """What a benchmark's exit code says, trusted only when it printed its verdict line."""
    if not verdict:
        return f"error (exit {code}, no verdict line)"
    return {0: "target met", 1: "target missed"}.get(code, f"error (exit {code})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
