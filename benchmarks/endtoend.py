"""Benchmark: whole diagnoses, LLM off, one per scenario, split by stage.

For each scenario folder (``tests/scenarios/*``, else the shared Sock Shop recordings), stands
the scenario up in the lab, wires an agent to it and runs the diagnosis to the approval step.
Prints, per scenario, the lab's start-up, wiring, the graph's own stage timings, the graph's
overhead (the agent's wall time less its stages) and teardown, the end-to-end time (start-up
to report) against the issue's target, and peak RSS of this process and of the lab's
servers::

    python -m benchmarks.endtoend [FOLDER ...]

Exits 1 only when a scenario could not be run: times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diagnose import wiring
from diagnose.domain import errors
from diagnose.lab import lab
from diagnose.settings import Settings
from graphs import reporting

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "scenarios"
SHARED = ROOT.parent / "shared" / "datasets" / "sockshop"
TARGET_S = 10.0
STAGES = ("intake", "scope", "gather", "check_stops", "correlate", "reason", "propose")


@dataclass
class Timing:
    """Seconds per stage of one scenario, and what it concluded."""

    name: str
    stages: dict[str, float] = field(default_factory=dict)
    top: str = "-"
    truth: str = "-"
    rss_mib: float = 0.0  # this process's peak RSS growth during the scenario
    peak_mib: float = 0.0  # …and its peak RSS
    servers_mib: float = 0.0
    error: str = ""

    @property
    def end_to_end(self) -> float:
        """From the lab's start-up to the report: what ``diagnose run --scenario`` waits for."""
        return sum(v for k, v in self.stages.items() if k != "teardown")


def find_scenarios(paths: Sequence[Path] = ()) -> list[Path]:
    """The folders given, else every scenario under tests/scenarios, else the shared ones."""
    roots = list(paths) or [SCENARIOS]
    found = sorted({p.parent for root in roots for p in root.rglob("scenario.yaml")})
    if found or paths:
        return found
    return sorted(p.parent for p in SHARED.glob("*/scenario.yaml"))


def run_scenario(folder: Path, *, progress: Callable[[str], None]) -> Timing:
    """Stand ``folder`` up, diagnose it, time each stage."""
    timing = Timing(folder.name)
    start_kib = _reset_peak_rss()
    try:
        with tempfile.TemporaryDirectory(prefix="diagnose-bench-") as state_dir:
            _diagnose(folder, timing=timing, state_dir=Path(state_dir), progress=progress)
    except errors.DiagnoseError as exc:
        timing.error = str(exc)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timing.rss_mib, timing.peak_mib = (peak_kib - start_kib) / 1024, peak_kib / 1024
    return timing


def _diagnose(
    folder: Path, *, timing: Timing, state_dir: Path, progress: Callable[[str], None]
) -> None:
    began = time.perf_counter()
    with lab.running(folder, now=datetime.now(UTC), progress=progress) as run:
        up = time.perf_counter()
        timing.stages["lab start-up"] = up - began
        settings = Settings.from_env(state_dir=state_dir).model_copy(
            update={"llm_base_url": None}  # LLM off, whatever the environment says
        )
        with wiring.open_agent(
            wiring.with_endpoints(settings, run.endpoints), progress=progress
        ) as agent:
            wired = time.perf_counter()
            timing.stages["wiring"] = wired - up
            paused = agent.start(run.trigger)
            _record(timing, result=reporting.result(paused.state), wall=time.perf_counter() - wired)
        timing.servers_mib = sum(_peak_rss_mib(pid) for pid in run.pids)
        truth = run.scenario.truth
        timing.truth = truth.root_cause.component if truth and truth.root_cause else "-"
        stopping = time.perf_counter()
    timing.stages["teardown"] = time.perf_counter() - stopping


def _record(timing: Timing, *, result: dict[str, Any], wall: float) -> None:
    """The graph's stages (the three gathers run at once: their longest), and what is left
    of the agent's wall time: compiling the graph, checkpoints, the bundle."""
    reported = result["timings_s"]["stages"]
    gather = max(v for k, v in reported.items() if k.startswith("gather_"))
    graph = {k: float(reported.get(k, 0.0)) for k in STAGES if k != "gather"} | {"gather": gather}
    timing.stages.update((k, graph[k]) for k in STAGES)
    timing.stages["graph overhead"] = max(0.0, wall - sum(graph.values()))
    hypotheses = result.get("hypotheses") or []
    top = str(hypotheses[0].get("component", "-")) if hypotheses else "none"
    timing.top = f"abstained, best {top}" if result.get("abstained") else top


def _peak_rss_mib(pid: int) -> float:
    """A lab server's RSS high-water mark (VmHWM), 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def _reset_peak_rss() -> int:
    """Reset this process's RSS high-water mark to its current RSS (Linux) and return it in
    KiB; elsewhere the high-water mark as it stands."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() // 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.endtoend", description=__doc__.split("\n")[0]
    )
    parser.add_argument("folders", nargs="*", type=Path, help="scenario folders (default: all)")
    parser.add_argument("--verbose", action="store_true", help="print the lab's progress")
    args = parser.parse_args(argv)
    folders = find_scenarios(args.folders)
    if not folders:
        print("end to end: no scenario found")
        return 1
    progress: Callable[[str], None] = print if args.verbose else (lambda _: None)
    timings = [run_scenario(folder, progress=progress) for folder in folders]
    _report(timings, where=_where(folders))
    return 1 if any(t.error for t in timings) else 0


def _where(folders: Sequence[Path]) -> str:
    parents = {f.parent for f in folders}
    if len(parents) != 1:
        return f"{len(parents)} folders"
    return os.path.relpath(parents.pop(), ROOT)


def _report(timings: Sequence[Timing], *, where: str) -> None:
    columns = ("lab start-up", "wiring", *STAGES, "graph overhead", "teardown")
    short = (
        "lab",
        "wire",
        "intake",
        "scope",
        "gather",
        "stops",
        "correl",
        "reason",
        "propose",
        "graph+",
        "down",
    )
    print(f"end to end, LLM off: {len(timings)} scenario(s) from {where}, seconds per stage")
    print(f"  {'scenario':<22}" + "".join(f"{c:>8}" for c in short) + f"{'total':>8}  top (truth)")
    for t in timings:
        if t.error:
            print(f"  {t.name:<22} FAILED: {t.error}")
            continue
        cells = "".join(f"{t.stages.get(c, 0.0):8.2f}" for c in columns)
        print(f"  {t.name:<22}{cells}{t.end_to_end:8.2f}  {t.top} ({t.truth})")
    done = [t for t in timings if not t.error]
    if not done:
        return
    worst = max(t.end_to_end for t in done)
    met = worst < TARGET_S
    print(
        f"  target {'met' if met else 'missed'}: slowest end to end {worst:.2f} s "
        f"(< {TARGET_S:g} s, lab start-up included, teardown not)"
    )
    print(
        f"  peak RSS: this process {max(t.peak_mib for t in done):.0f} MiB "
        f"(+{max(t.rss_mib for t in done):.0f} MiB at most in one scenario), "
        f"lab servers {max(t.servers_mib for t in done):.0f} MiB together at most"
    )


if __name__ == "__main__":
    raise SystemExit(main())
