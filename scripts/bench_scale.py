#!/usr/bin/env python3
"""Driver of scripts/bench_scale.sh: ReedBase at several table sizes against
ext4, sqlite3 and (if importable) duckdb. Run it through bench_scale.sh, which
builds rdb, makes the temp dirs, sets REEDBASE_HOME and unmounts on exit.

  bench_scale.py RDB BASE        (env: SIZES, CYCLES, VERSIONS, OUT_DIR)

Prints one markdown table: rows = measurements, columns = sizes, plus target.
A measurement that fails prints `n/a (error: ...)` in its cell.
"""

import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time

RDB, BASE = sys.argv[1], sys.argv[2]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [int(s) for s in os.environ.get("SIZES", "10000 100000").split()]
CYCLES = int(os.environ.get("CYCLES", "30"))
VERSIONS = int(os.environ.get("VERSIONS", "1000"))
OUT_DIR = os.environ.get("OUT_DIR", "")
HOME = os.environ["REEDBASE_HOME"]
# The RSS cycles stop early when the machine runs short of memory.
MIN_AVAIL_MB = int(os.environ.get("MIN_AVAIL_MB", "2048"))

try:
    import duckdb  # noqa: F401
    HAVE_DUCKDB = True
except Exception:  # noqa: BLE001
    HAVE_DUCKDB = False

# rows[key] = (label, target, {size: cell})
ROWS = {}
ORDER = []


def cell(key, label, target, size, fn):
    """Run fn() and put its string in the table; an exception becomes n/a."""
    if key not in ROWS:
        ROWS[key] = (label, target, {})
        ORDER.append(key)
    try:
        val = fn()
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().replace("\n", " ").replace("|", "/")
        val = f"n/a (error: {msg[:160]})"
    ROWS[key][2][size] = val
    return val


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(args, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))[:80]}: exit {r.returncode}: "
                           f"{r.stderr.decode(errors='replace').strip()[:200]}")
    return r.stdout


def timed(args):
    a = time.perf_counter()
    run(args)
    return time.perf_counter() - a


def cat_time(path):
    """Wall time of `cat path` (process start included), output discarded."""
    a = time.perf_counter()
    r = subprocess.run(["cat", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t = time.perf_counter() - a
    if r.returncode != 0:
        raise RuntimeError(f"cat {os.path.basename(path)[:60]}: {r.stderr.decode(errors='replace').strip()[:200]}")
    return t


def read_time(path):
    """open + read + close from this process (no process start)."""
    a = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    return time.perf_counter() - a


def hyperfine(cmd, runs, warmup=3, shell=True, stat="mean"):
    out = os.path.join(BASE, "hf.json")
    args = ["hyperfine", "--warmup", str(warmup), "--runs", str(runs), "--export-json", out]
    if not shell:
        args += ["-N"]
    args += ["--output=null", cmd]
    run(args)
    with open(out) as f:
        return json.load(f)["results"][0][stat]


def ms(t, nd=1):
    return f"{t * 1e3:.{nd}f} ms"


def med(xs):
    return statistics.median(xs)


def qpath(mnt, q):
    return f"{mnt}/@query/{q.replace('/', '%2F')}"


def toggle_sed(path, key):
    """A sed script that changes row `key` on every run (name E1 <-> E2)."""
    with open(path, "w") as f:
        f.write(f"/^{key}|/{{\ns/^{key}|E1|/{key}|E2|/\nt\n"
                f"s/^{key}|E2|/{key}|E1|/\nt\ns/^{key}|[^|]*|/{key}|E1|/\n}}\n")


def du(path):
    apparent = int(run(["du", "-sb", path]).split()[0])
    allocated = int(run(["du", "-s", "--block-size=1", path]).split()[0])
    return apparent, allocated


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def mem_available_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 1 << 30


def human(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def mount(db, mnt):
    os.makedirs(mnt, exist_ok=True)
    r = subprocess.run([RDB, "mount", db, mnt, "--daemon"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise RuntimeError(f"rdb mount: exit {r.returncode}: {out.strip()[:200]}")
    m = re.search(r"pid (\d+)", out)
    pid = int(m.group(1)) if m else None
    if pid is None:  # fall back to pgrep, restricted to this mountpoint
        for line in run(["pgrep", "-af", "rdb mount"]).decode().splitlines():
            p, cmd = line.split(" ", 1)
            if f" {mnt} " in f" {cmd} ":
                pid = int(p)
    if pid is None:
        raise RuntimeError("daemon pid not found")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        if mnt.encode() not in f.read():
            raise RuntimeError(f"pid {pid} is not the daemon of {mnt}")
    deadline = time.time() + 10
    while not os.path.exists(f"{mnt}/t/current.csv"):
        if time.time() > deadline:
            raise RuntimeError("mount did not come up")
        time.sleep(0.05)
    return pid


def umount(mnt):
    r = subprocess.run([RDB, "umount", mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def edit_row_inplace(path, key, i):
    """A 1-row edit through the mount from this process: read, change the
    name of row `key`, rewrite in place (the close commits a version)."""
    with open(path, "rb") as f:
        data = f.read()
    j = data.index(b"\n%d|" % key) + len(b"\n%d|" % key)
    k = data.index(b"|", j)
    data = data[:j] + b"V%d" % i + data[k:]
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


# --------------------------------------------------------------------------

def bench_size(n, versions_size):
    d = os.path.join(BASE, f"s{n}")
    os.makedirs(d, exist_ok=True)
    db, mnt = f"s{n}", os.path.join(BASE, f"mnt_{n}")
    csv = os.path.join(d, "t.csv")
    ext4 = os.path.join(d, "ext4.csv")
    key = n // 2
    log(f"size {n}: generating")
    run(["python3", os.path.join(REPO, "scripts/gen_table.py"), "users", str(n), "--out", csv])
    size = os.path.getsize(csv)
    run(["cp", csv, ext4])
    run([RDB, "db:init", db])
    tog = os.path.join(d, "toggle.sed")
    toggle_sed(tog, key)

    cell("csv", "table: rows of gen_table.py users / CSV size", "-", n,
         lambda: f"{n} / {human(size)}")

    # 1. table:create and table:import (1 row changed) vs sed -i + sync on ext4.
    log(f"size {n}: table:create / table:import")
    cell("create", "`rdb table:create` of the table (process start included)", "-", n,
         lambda: ms(timed([RDB, "table:create", db, "t", "--from", csv]), 0))
    with open(csv, "rb") as f:
        data = f.read()
    pre = b"\n%d|" % key
    j = data.index(pre) + len(pre)
    k = data.index(b"|", j)
    for tag in (b"ImportA", b"ImportB"):
        with open(os.path.join(d, f"imp_{tag.decode()}.csv"), "wb") as f:
            f.write(data[:j] + tag + data[k:])
    del data

    def imp():
        ts = [timed([RDB, "table:import", db, "t", os.path.join(d, f"imp_Import{'AB'[i % 2]}.csv")])
              for i in range(5)]
        return ms(med(ts), 0)
    cell("import", "`rdb table:import`, 1 row changed, median of 5", "-", n, imp)
    runs = 20 if n <= 100000 else 8
    ext4_box = {}

    def ext4_sed_time():
        ext4_box["t"] = hyperfine(f"sed -i -f {tog} {ext4} && sync {ext4}", runs)
        return ms(ext4_box["t"])
    cell("ext4sed", "ext4: `sed -i` of one row + `sync <file>`, mean", "-", n, ext4_sed_time)
    ext4_sed = ext4_box.get("t")

    log(f"size {n}: mounting")
    pid = mount(db, mnt)
    cur = f"{mnt}/t/current.csv"
    try:
        # 2. sed -i of one row through the mount vs ext4 + sync.
        log(f"size {n}: sed -i through the mount")

        def sed_mnt():
            m = hyperfine(f"sed -i -f {tog} {cur}", runs)
            if ext4_sed is None:
                return f"{ms(m)} (ext4 n/a)"
            return f"{ms(m)} / {ms(ext4_sed)} = {m / ext4_sed:.1f}x"
        cell("sed", "mount: `sed -i` of one row, mean / ext4 (+sync) = ratio", "<= 3x (at 10k)", n, sed_mnt)

        # 3. First query after a 1-row save vs the same query again.
        log(f"size {n}: first query after a save")
        point = f"SELECT * FROM t WHERE id = {key // 2 + 1}"
        group = "SELECT country, COUNT(*) FROM t GROUP BY country"
        cat_time(qpath(mnt, point)); cat_time(qpath(mnt, group))
        for name, q, label in (("point", point, f"`{point}`"), ("group", group, "GROUP BY country, COUNT(*)")):
            def after_save(q=q):
                first, second = [], []
                for _ in range(5):
                    run(["sed", "-i", "-f", tog, cur])
                    first.append(cat_time(qpath(mnt, q)))
                    second.append(cat_time(qpath(mnt, q)))
                return f"{ms(med(first))} / {ms(med(second))}"
            cell(f"q_{name}", f"`cat @query` {label}: first after a 1-row save / second, median of 5",
                 "`cat` point <= 1 ms (warm)" if name == "point" else "-", n, after_save)

        # 4. ORDER BY score LIMIT 10: mount vs sqlite3 and duckdb.
        log(f"size {n}: ORDER BY ... LIMIT 10")
        order = "SELECT * FROM t ORDER BY score DESC LIMIT 10"
        uncached = "SELECT * FROM t WHERE {n} > 0 ORDER BY score DESC LIMIT 10"

        def order_mnt():
            p = qpath(mnt, order)
            cat_time(p)
            cached = med([cat_time(p) for _ in range(9)])
            nc_cat = med([cat_time(qpath(mnt, uncached.replace("{n}", str(i)))) for i in range(1000, 1009)])
            nc_py = med([read_time(qpath(mnt, uncached.replace("{n}", str(i)))) for i in range(2000, 2015)])
            return f"{ms(cached, 2)} / {ms(nc_cat)} / {ms(nc_py)}"
        cell("order_mnt", "mount `ORDER BY score DESC LIMIT 10`: cat cached / cat not cached / Python open+read not cached, medians",
             "-", n, order_mnt)

        sqlite_db = os.path.join(d, "t.sqlite")

        def order_sqlite():
            schema = ("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, email TEXT, age INTEGER, "
                      "country TEXT, city TEXT, created TEXT, score REAL, active TEXT, bio TEXT);")
            script = f"{schema}\n.mode csv\n.separator |\n.import --skip 1 {csv} t\n"
            r = subprocess.run(["sqlite3", sqlite_db], input=script.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if r.returncode != 0 or r.stderr.strip():
                raise RuntimeError(f"sqlite3 .import: {r.stderr.decode(errors='replace')[:200]}")
            con = sqlite3.connect(sqlite_db)
            cnt = con.execute("SELECT COUNT(*) FROM t").fetchone()[0]
            if cnt != n:
                raise RuntimeError(f"sqlite3 imported {cnt} rows, not {n}")
            con.execute(order).fetchall()
            ts = []
            for _ in range(9):
                a = time.perf_counter(); con.execute(order).fetchall(); ts.append(time.perf_counter() - a)
            con.close()
            cli = hyperfine(f"sqlite3 {sqlite_db} '{order}'", 5, warmup=1, stat="median")
            return f"{ms(med(ts), 2)} / {ms(cli)}"
        cell("order_sqlite", "sqlite3 (CSV .import-ed, typed table): in-process warm / CLI on the db file, medians",
             "-", n, order_sqlite)

        def order_duck():
            if not HAVE_DUCKDB:
                return "n/a (duckdb not importable)"
            import duckdb
            con = duckdb.connect()
            con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv}', delim='|', quote='\"', header=true)")
            con.execute(order).fetchall()
            ts = []
            for _ in range(9):
                a = time.perf_counter(); con.execute(order).fetchall(); ts.append(time.perf_counter() - a)
            con.close()
            return ms(med(ts), 2)
        cell("order_duck", "duckdb in-process, table loaded, median of 9", "-", n, order_duck)

        # 6. Daemon RSS over CYCLES save + GROUP BY cycles.
        log(f"size {n}: RSS over {CYCLES} cycles")

        # Every 10th cycle also waits 1 s and reads RSS again: what the
        # daemon holds once the superseded version is dropped and its
        # memory handed back (the drop thread trims after 0.5 s of quiet).
        def rss():
            series, settled, stopped = [], [], ""
            for i in range(CYCLES):
                if mem_available_mb() < MIN_AVAIL_MB:
                    stopped = f" (stopped after {i} cycles: MemAvailable < {MIN_AVAIL_MB} MB)"
                    break
                run(["sed", "-i", "-f", tog, cur])
                cat_time(qpath(mnt, group))
                series.append(rss_kb(pid))
                if (i + 1) % 10 == 0:
                    time.sleep(1.0)
                    settled.append(rss_kb(pid))
            if not series:
                raise RuntimeError(stopped.strip(" ()"))
            if OUT_DIR:
                os.makedirs(OUT_DIR, exist_ok=True)
                with open(os.path.join(OUT_DIR, f"rss_{n}.csv"), "w") as f:
                    f.write("cycle,vmrss_kb,settled_kb\n")
                    for i, v in enumerate(series, 1):
                        s10 = settled[i // 10 - 1] if i % 10 == 0 else ""
                        f.write(f"{i},{v},{s10}\n")
            mb = lambda kb: f"{kb / 1024:.0f}"  # noqa: E731
            peak = max(series)
            quiet = (f"; settled (1 s after every 10th): first / median / last "
                     f"{mb(settled[0])} / {mb(med(settled))} / {mb(settled[-1])} MiB = "
                     f"{med(settled) * 1024 / size:.1f}x CSV") if settled else ""
            return (f"{mb(series[0])} / {mb(med(series))} / {mb(series[-1])} / {mb(peak)} MiB; "
                    f"peak = {peak * 1024 / size:.1f}x CSV{quiet}{stopped}")
        cell("rss", f"daemon VmRSS right after each of {CYCLES} cycles (sed -i + GROUP BY): first / median / last / peak",
             "-", n, rss)

        # 5. History: VERSIONS 1-row versions (at one size only).
        if n == versions_size:
            history(n, d, db, mnt, cur, key, ext4)
    finally:
        log(f"size {n}: unmounting")
        umount(mnt)
        for f in ("imp_ImportA.csv", "imp_ImportB.csv"):
            try:
                os.remove(os.path.join(d, f))
            except OSError:
                pass


def history(n, d, db, mnt, cur, key, ext4):
    store = os.path.join(HOME, "databases", db, "tables", "t")
    log(f"size {n}: making {VERSIONS} versions")
    before = du(store)
    ok = {}

    def make():
        a = time.perf_counter()
        for i in range(VERSIONS):
            edit_row_inplace(cur, key, i)
        t = time.perf_counter() - a
        ok["made"] = True
        return f"{t:.1f} s = {VERSIONS / t:.0f} commits/s"
    cell("h_make", f"make {VERSIONS} versions: Python read + rewrite in place through the mount (1 row each)",
         "-", n, make)
    after = du(store)

    def need():
        if not ok.get("made"):
            raise RuntimeError("versions were not made")

    def bytes_per():
        need()
        return (f"{(after[0] - before[0]) / VERSIONS:.0f} B / {(after[1] - before[1]) / VERSIONS:.0f} B "
                f"(store {human(after[0])})")
    cell("h_bytes", "store bytes per 1-row update: apparent (du -sb) / allocated (du --block-size=1)",
         "delta <= 300 B", n, bytes_per)

    def ls():
        need()
        t = hyperfine(f"ls -l {mnt}/t/@versions/", 10, warmup=2)
        cnt = len(os.listdir(f"{mnt}/t/@versions"))
        return f"{ms(t)} ({cnt} entries)"
    cell("h_ls", "`ls -l @versions/`, mean", "< 100 ms", n, ls)

    def old():
        need()
        with open(f"{mnt}/t/@versions/log.csv") as f:
            names = [line.split("|")[1] for line in f.read().splitlines()[1:] if line]
        total = len(names)
        # Versions not read before, spread over the history made above.
        picks = [names[total - 1 - VERSIONS * k // 6] for k in range(1, 6)]
        first, second = [], []
        for name in picks:
            p = f"{mnt}/t/@versions/{name}.csv"
            first.append(cat_time(p))
            second.append(cat_time(p))
        e = hyperfine(f"cat {ext4}", 10, warmup=2)
        return f"{ms(med(first))} / {ms(med(second))} / {ms(e)}"
    cell("h_old", "`cat` of an old version: first open / second open (median of 5 versions) / ext4 copy",
         "<= 5 ms", n, old)

    def verify():
        need()
        a = time.perf_counter()
        out = run([RDB, "verify", db]).decode().strip()
        t = time.perf_counter() - a
        return f"{t:.2f} s ({out.splitlines()[-1] if out else ''})"
    cell("h_verify", "`rdb verify` wall time (mounted)", "-", n, verify)


def main():
    small = [s for s in SIZES if s <= 100000]
    versions_size = max(small) if small else None
    for n in SIZES:
        bench_size(n, versions_size)
        # The larger tables' files are big: drop the sqlite copy and CSVs.
        for f in ("t.sqlite",):
            try:
                os.remove(os.path.join(BASE, f"s{n}", f))
            except OSError:
                pass

    print(f"duckdb: {'yes' if HAVE_DUCKDB else 'not importable, skipped'}; CYCLES={CYCLES}; "
          f"VERSIONS={VERSIONS} " + (f"(at {versions_size} rows)" if versions_size else "(not run: no size <= 100000)"))
    print()
    print("| measurement | " + " | ".join(f"{s} rows" for s in SIZES) + " | target |")
    print("|---|" + "---|" * len(SIZES) + "---|")
    for k in ORDER:
        label, target, vals = ROWS[k]
        print(f"| {label} | " + " | ".join(vals.get(s, "-") for s in SIZES) + f" | {target} |")
    if OUT_DIR:
        os.makedirs(OUT_DIR, exist_ok=True)
        with open(os.path.join(OUT_DIR, "bench_scale.json"), "w") as f:
            json.dump({k: {"label": ROWS[k][0], "target": ROWS[k][1], "values": ROWS[k][2]} for k in ORDER}, f, indent=1)


if __name__ == "__main__":
    main()
