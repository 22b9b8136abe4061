"""`make bench [BENCH=name]`: run every benchmark module bench/bench_<name>.py, or one.

Benchmarks in OPT_IN run only when named (`make bench BENCH=scale`): they take far longer than
the others (the scale bench loads tens of millions of readings).

Each module exposes `run() -> None` and prints its figures through bench.common.emit. Every
benchmark runs in its own Python process, so one benchmark's Django set-up (its database, its
settings) can never leak into the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPT_IN = {"scale"}


def main(argv: list[str]) -> int:
    names = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))
    wanted = [a for a in argv if a] or [n for n in names if n not in OPT_IN]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}")
        return 2
    env = {**os.environ}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    failed = []
    for name in wanted:
        code = f"import bench.bench_{name} as m; m.run()"
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=False)
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"benchmark(s) that could not finish: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
