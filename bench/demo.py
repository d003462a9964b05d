"""``madness demo`` end to end, on an idle machine and beside a busy process, in one run.

Issue 21's goal: the demo takes at most 2x its idle time while another process keeps one
core at 100% (a fair share of a 2-core machine), and a command's first line appears
within 1 s. Each repetition runs the demo as a user does (a fresh ``madness demo``
process into an empty store, its report into a temporary folder) twice: alone, then
beside a spinning Python process (``while True: pass``; started 1 s before, killed after).
Idle and busy runs alternate, so that a machine whose speed drifts shows it in both.
Printed per run: the wall time and the seconds until the command's first line of output;
then the medians and the ratio busy / idle.

The first demo of a fresh machine also pays for the page cache (torch's libraries); one
untimed demo runs first (``--no-warmup`` skips it). The numba kernels are not in it: the
demo trains in the batched engine, and install compiles them (``make demo``).

Run: ``python -m bench demo`` (or ``python -m bench.demo --repeats 3 --seeds 1``; a smoke
run: ``python -m bench.demo --no-warmup --seeds 1 --set train.epochs=1 --out /tmp/d.json``).
Figures are printed and written to bench/results/demo.json with the load average
before and after, so a machine busy with other work shows in the file. Benchmarks
measure; they never assert a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "demo.json"
GOAL_RATIO = 2.0
SPIN = "while True:\n    pass\n"
_MAIN = "from lstm_madness.cli import main; main()"


def _first_line_and_wall(args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``args``; seconds to its first non-empty line (stdout or stderr) and in all."""
    lines: queue.SimpleQueue = queue.SimpleQueue()
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )

    def pump(stream) -> None:
        for line in stream:
            if line.strip():
                lines.put((time.perf_counter(), line))

    readers = [threading.Thread(target=pump, args=(s,)) for s in (proc.stdout, proc.stderr)]
    for reader in readers:
        reader.start()
    rc = proc.wait()
    wall = time.perf_counter() - start
    for reader in readers:
        reader.join()
    seen = []
    while not lines.empty():
        seen.append(lines.get())
    if rc != 0:
        text = "".join(line for _, line in sorted(seen))
        raise SystemExit(f"{' '.join(args[3:])} failed ({rc}):\n{text}")
    first = min((t for t, _ in seen), default=start + wall) - start
    return {"wall_s": round(wall, 2), "first_line_s": round(first, 2)}


def _demo(demo_args: list[str], env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        args = [sys.executable, "-c", _MAIN, "demo", "--db", f"{tmp}/demo.db"]
        args += ["--out", f"{tmp}/report", *demo_args]
        return _first_line_and_wall(args, env)


def _beside_a_busy_core(demo_args: list[str], env: dict[str, str]) -> dict[str, float]:
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(1.0)  # spinning at 100% before the demo starts
        return _demo(demo_args, env)
    finally:
        spinner.kill()
        spinner.wait()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.demo", description=__doc__)
    parser.add_argument("--repeats", type=int, default=1, help="idle/busy pairs (default 1)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the demo (default 3)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed demo")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="passed to the demo"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args([] if argv is None else argv)
    demo_args = ["--seeds", str(args.seeds), *(a for s in args.set for a in ("--set", s))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()),
        "what": f"madness demo {' '.join(demo_args)} into an empty store, a fresh process; "
        "busy: beside one Python process spinning a core at 100%",
    }
    if not args.no_warmup:
        print("warm-up demo (untimed) …", flush=True)
        _demo(demo_args, env)
    runs: dict[str, list[dict[str, float]]] = {"idle": [], "busy": []}
    for _ in range(args.repeats):
        for case, measure in (("idle", _demo), ("busy", _beside_a_busy_core)):
            row = measure(demo_args, env)
            runs[case].append(row)
            print(
                f"{case}: {row['wall_s']:.1f} s end to end, first line after "
                f"{row['first_line_s']:.2f} s",
                flush=True,
            )
    idle = statistics.median(r["wall_s"] for r in runs["idle"])
    busy = statistics.median(r["wall_s"] for r in runs["busy"])
    ratio = busy / idle
    first = max(r["first_line_s"] for rows in runs.values() for r in rows)
    print(
        f"demo: idle {idle:.1f} s, beside a busy core {busy:.1f} s: {ratio:.2f}x "
        f"(goal <= {GOAL_RATIO:.0f}x); first line within {first:.2f} s"
    )
    meta["loadavg_end"] = list(os.getloadavg())
    results = {
        "meta": meta,
        "runs": runs,
        "median_idle_s": round(idle, 2),
        "median_busy_s": round(busy, 2),
        "ratio": round(ratio, 2),
        "goal_ratio": GOAL_RATIO,
        "slowest_first_line_s": first,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
