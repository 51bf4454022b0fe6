"""``python -m bench``: run the benchmarks, print a table, write bench/RESULTS.md.

Each benchmark runs in a child process of its own (``python -m bench --child NAME``), so that one
benchmark's heap, garbage and open sockets do not weigh on the next and a memory reading starts
clean; inside the child, qmux and its baseline alternate round by round.

    python -m bench                   # everything; writes bench/RESULTS.md
    python -m bench --quick           # a fast smoke run of everything; writes nothing
    python -m bench --only route      # one benchmark (repeat --only for more); writes nothing
    python -m bench --only route --profile   # the same under pyinstrument, in process
    python -m bench --only route --profile --profiler cprofile   # under cProfile, by own time
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from ._common import Result
from ._report import environment, render_markdown, render_table

#: each benchmark's name, and the module and function that run it (``run(quick) -> Result``)
ENTRY_POINTS = {
    "route": "route:run",
    "scale": "scale:run",
    "objects": "objects:run",
    "timers": "timers:run",
    "timers100k": "timers:run_100k",
    "virtual": "virtual:run",
    "http": "http:run",
    "http_mp": "http_mp:run",
    "metrics": "metrics:run",
    "primitives": "primitives:run",
    "events": "events:run",
    "cluster": "cluster:run",
}
BENCHMARKS = tuple(ENTRY_POINTS)
RESULTS = Path(__file__).with_name("RESULTS.md")
#: a child that takes longer than this is stopped and reported as failed
CHILD_TIMEOUT = 420.0
#: ... except these, which build 100,000 sessions and backends twice over
CHILD_TIMEOUTS = {"timers100k": 900.0}


def run_in_process(name: str, quick: bool) -> Result:
    """Import the benchmark's module and run it here; any failure becomes the result's error."""
    start = time.perf_counter()
    module_name, function = ENTRY_POINTS[name].split(":")
    try:
        module = importlib.import_module(f"bench.{module_name}")
        result: Result = getattr(module, function)(quick=quick)
    except Exception:
        result = Result(name=name, error=traceback.format_exc(limit=8))
    result.seconds = time.perf_counter() - start
    return result


def run_in_child(name: str, quick: bool) -> Result:
    """Run one benchmark in a fresh interpreter and read its result back."""
    import subprocess

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qmux-bench-") as tmp:
        out = Path(tmp) / f"{name}.json"
        command = [sys.executable, "-m", "bench", "--child", name, "--json", str(out)]
        if quick:
            command.append("--quick")
        timeout = CHILD_TIMEOUTS.get(name, CHILD_TIMEOUT)
        try:
            completed = subprocess.run(command, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return Result(name=name, error=f"timed out after {timeout:.0f} s", seconds=timeout)
        if not out.exists():
            return Result(
                name=name,
                error=f"the child exited with status {completed.returncode} and no result",
                seconds=time.perf_counter() - start,
            )
        result = Result.from_json(json.loads(out.read_text()))
    result.seconds = time.perf_counter() - start
    return result


def _child(name: str, quick: bool, json_path: str) -> int:
    result = run_in_process(name, quick)
    Path(json_path).write_text(json.dumps(result.to_json(), default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip tearing down what the benchmark left (100,000 sessions take seconds to free).
    os._exit(0)


def _profile(names: Sequence[str], quick: bool, tool: str = "pyinstrument") -> list[Result]:
    if tool == "cprofile":
        return _cprofile(names, quick)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("--profile needs pyinstrument: pip install -e '.[bench]'", file=sys.stderr)
        raise SystemExit(2) from None
    results = []
    for name in names:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        results.append(run_in_process(name, quick))
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return results


#: how many functions a cProfile listing shows
CPROFILE_TOP = 40


def _cprofile(names: Sequence[str], quick: bool) -> list[Result]:
    """Each benchmark under cProfile, its functions by own time: deterministic call counts, which
    say what a round trip does (divide by the round trips the benchmark made) better than samples."""
    import cProfile
    import pstats

    results = []
    for name in names:
        profile = cProfile.Profile()
        profile.enable()
        results.append(run_in_process(name, quick))
        profile.disable()
        stats = pstats.Stats(profile, stream=sys.stdout)
        print(f"\n== {name}: {stats.total_calls:,} calls (the benchmark's own included)")  # type: ignore[attr-defined]
        stats.sort_stats(pstats.SortKey.TIME).print_stats(CPROFILE_TOP)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in well under a minute")
    parser.add_argument("--profile", action="store_true", help="run in process under a profiler, print profiles")
    parser.add_argument(
        "--profiler",
        choices=("pyinstrument", "cprofile"),
        default="pyinstrument",
        help="with --profile: pyinstrument (sampled call trees) or cprofile (every call, by own time)",
    )
    parser.add_argument(
        "--output", type=Path, help="write the results here (default: bench/RESULTS.md, full runs only)"
    )
    parser.add_argument("--child", choices=BENCHMARKS, help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return _child(args.child, args.quick, args.json)

    names = list(dict.fromkeys(args.only)) if args.only else list(BENCHMARKS)
    started = time.perf_counter()
    print(f"qmux benchmarks: {', '.join(names)}{' (quick)' if args.quick else ''}", file=sys.stderr)
    if args.profile:
        results = _profile(names, args.quick, args.profiler)
    else:
        results = []
        for name in names:
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            results.append(run_in_child(name, args.quick))
            print(f"-- {name}: {results[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - started

    print()
    print(render_table(results))
    for result in results:
        if result.error:
            print(f"\n{result.name} FAILED:\n{result.error}", file=sys.stderr)
    print(f"\ntotal: {total:.1f} s")

    output = args.output
    if output is None and not args.only and not args.quick and not args.profile:
        output = RESULTS
    if output is not None:
        output.write_text(render_markdown(results, environment(), total, quick=args.quick))
        print(f"wrote {output}")
    return 1 if any(result.error for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
