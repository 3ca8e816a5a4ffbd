#!/usr/bin/env python3
"""Concurrent writers through a ReedBase mount: auto-merge rate and save latency.

Workload: N writer processes, each making SAVES saves. A save reads the table,
changes one cell (the `age` of a random row among the first HOT rows, so
writers sometimes collide on the same row), and writes the whole file back in
place (open 'w'): the pattern of editors and scripts. A save either merges
(its change lands) or is refused as a conflict (EBUSY), which we count.
Usage: bench_merge.py <current.csv path> [--hot 1000] [--saves 5]
"""
import argparse
import multiprocessing as mp
import random
import re
import statistics
import time


def writer(args):
    path, seed, saves, hot = args
    rng = random.Random(seed)
    ok = conflicts = 0
    lat = []
    for _ in range(saves):
        row = rng.randint(1, hot)
        age = rng.randint(18, 90)
        start = time.perf_counter()
        try:
            with open(path) as f:
                d = f.read()
            d2 = re.sub(rf"(?m)^({row}\|[^|]*\|[^|]*\|)\d+\|", rf"\g<1>{age}|", d, count=1)
            with open(path, "w") as f:
                f.write(d2)
            ok += 1
        except OSError:
            conflicts += 1
        lat.append(time.perf_counter() - start)
    return ok, conflicts, lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--hot", type=int, default=1000)
    ap.add_argument("--saves", type=int, default=5)
    a = ap.parse_args()
    print("| writers | saves | merged | conflicts | auto-merge rate | save latency p50 / p90 |")
    print("|---|---|---|---|---|---|")
    for n in (1, 5, 10, 50):
        with mp.Pool(n) as pool:
            res = pool.map(writer, [(a.path, 1000 * n + i, a.saves, a.hot) for i in range(n)])
        ok = sum(r[0] for r in res)
        conf = sum(r[1] for r in res)
        lat = sorted(x for r in res for x in r[2])
        p50 = statistics.median(lat) * 1e3
        p90 = lat[int(len(lat) * 0.9) - 1] * 1e3
        print(f"| {n} | {ok + conf} | {ok} | {conf} | {100 * ok / (ok + conf):.1f}% | {p50:.1f} / {p90:.1f} ms |")


if __name__ == "__main__":
    main()
