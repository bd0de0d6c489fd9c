"""Measure what a reference table of N users costs: load time and resident memory.

    python -m reference_data.bench_memory --users 10000000

Generates a CSV of N users (in ascending user_id order, as a database export would be, and/or
shuffled random 40-bit ids, as a hash-partitioned export would be), then loads each file in a fresh
child process so the RSS baseline is clean, and prints one JSON line. RSS comes from
/proc/self/status: ``rss_increase_mb`` is what holding the table costs, ``peak_increase_mb`` the
high-water mark during the load.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

_GENDERS = (b"female", b"male", b"", b"other", b"female", b"male")
_MASK40 = (1 << 40) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # odd, so i -> i * _GOLDEN mod 2^40 is a permutation: unique ids


def generate(path: str, users: int, order: str) -> int:
    """Write ``users`` rows; 1% have a null segment, 1 in 6 a null gender. Returns the file size."""
    with open(path, "wb") as f:
        batch: list[bytes] = []
        for i in range(users):
            uid = 1000 + i if order == "sorted" else ((i * _GOLDEN + 12345) & _MASK40)
            seg = b"" if i % 100 == 7 else b"%d" % (i * 7919 % 2000)
            batch.append(b"%d,%s,%s\n" % (uid, _GENDERS[i % 6], seg))
            if len(batch) >= 100_000:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))
    return os.path.getsize(path)


def _status_mb() -> dict[str, float]:
    values: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb = line.split()[:2]
                values[key.rstrip(":")] = int(kb) / 1024
    return values


def measure(path: str) -> dict[str, object]:
    """Load ``path`` in this process and report time and memory; run it in a fresh process."""
    from clickagg.reference_data.sources import LocalFileSource
    from clickagg.reference_data.store import ReferenceStore

    gc.collect()
    before = _status_mb()
    store = ReferenceStore(LocalFileSource(path))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    table = store.load_initial()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    gc.collect()
    after = _status_mb()

    rng = random.Random(42)
    step = max(1, len(table) // 100_000)
    present = list(islice(table, 0, None, step))
    probes = [rng.choice(present) for _ in range(200_000)]
    lookup = table.lookup
    t0 = time.process_time()
    for uid in probes:
        lookup(uid)
    lookup_ns = (time.process_time() - t0) / len(probes) * 1e9
    return {
        "users": len(table),
        "rows": store.last_total_rows,
        "load_seconds": round(wall, 2),
        "load_cpu_seconds": round(cpu, 2),
        "rss_before_mb": round(before["VmRSS"], 1),
        "rss_after_mb": round(after["VmRSS"], 1),
        "rss_increase_mb": round(after["VmRSS"] - before["VmRSS"], 1),
        "peak_increase_mb": round(after["VmHWM"] - before["VmRSS"], 1),
        "table_mb": round(table.nbytes / 2**20, 1),
        "lookup_ns": round(lookup_ns),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--order", choices=("sorted", "shuffled", "both"), default="both")
    parser.add_argument("--dir", default=None, help="where to write the CSV (default: system temp dir)")
    parser.add_argument("--measure", metavar="CSV", help=argparse.SUPPRESS)  # child-process mode
    args = parser.parse_args(argv)

    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    orders = ("sorted", "shuffled") if args.order == "both" else (args.order,)
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    )
    results = []
    for order in orders:
        fd, path = tempfile.mkstemp(prefix=f"refdata-{order}-", suffix=".csv", dir=args.dir)
        os.close(fd)
        try:
            t0 = time.perf_counter()
            size = generate(path, args.users, order)
            gen_s = time.perf_counter() - t0
            out = subprocess.run(
                [sys.executable, "-m", "clickagg.reference_data.bench_memory", "--measure", path],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            result.update(order=order, file_mb=round(size / 2**20, 1), generate_seconds=round(gen_s, 1))
            results.append(result)
        finally:
            os.unlink(path)
    print(
        json.dumps(
            {
                "bench": "clickagg.reference_data.bench_memory",
                "users": args.users,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
