#!/usr/bin/python3
"""Prints the side-by-side table from the raw results compare.sh left in OUT_DIR.

Usage: report.py OUT_DIR [FAILED_STEP ...]

Reads the JSON files of each step (fio, iperf3, tcp_echo, redis, nats, sluice, and
sluice-bench where present), writes OUT_DIR/summary.json (the rows, machine-readable) and
prints the table. A figure whose file is missing shows as '-' and its step is listed as
failed or skipped. Each Sluice figure is set beside the reference the same run measured:

  produce MB/s                  / fio sequential buffered write MB/s
  acks=all p99, paced           / fio fdatasync p99 (an fdatasync every 64 KiB)
  consume MB/s                  / iperf3 loopback MB/s
  one-at-a-time produce p50     / TCP echo round-trip p50 (1 KiB)
  produce records/s (and NATS)  / Redis XADD records/s

The unpaced produce runs' latency is mostly time in the client's queue (bounded at
16 MiB), so it gets no latency ratio; the paced run (half the acks=all rate) does.

MB means 10^6 bytes; server CPU is the server process's user + system seconds during the
load, per GB (10^9 bytes) of record values moved.
"""
import json
import os
import sys


def load(directory, name):
    path = os.path.join(directory, name)
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    # The load clients print one JSON line; fio and iperf3 one document. Take the last
    # line that parses, falling back to the whole text.
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def fio_row(data, label):
    if not data:
        return None
    job = data["jobs"][0]
    row = {"workload": label, "mb_per_second": job["write"]["bw_bytes"] / 1e6}
    sync = job.get("sync", {}).get("lat_ns", {})
    percentiles = sync.get("percentile", {})
    if percentiles:
        row["latency_us"] = {
            "p50": percentiles.get("50.000000", 0) / 1e3,
            "p99": percentiles.get("99.000000", 0) / 1e3,
            "p99.9": percentiles.get("99.900000", 0) / 1e3,
        }
        row["note"] = f"latency: fdatasync ({sync.get('N', 0)} syncs)"
    return row


def client_row(directory, name, label, note=""):
    data = load(directory, f"{name}.json")
    if not data:
        return None
    row = {"workload": label, "source": name}
    for key in ("records", "bytes", "seconds", "records_per_second", "mb_per_second",
                "latency_us"):
        if key in data:
            row[key] = data[key]
    server = load(directory, f"{name}.server.json")
    if server and data.get("bytes"):
        row["server"] = server["server"]
        row["cpu_seconds"] = server["cpu_seconds"]
        row["cpu_seconds_per_gb"] = server["cpu_seconds"] / (data["bytes"] / 1e9)
    elif data.get("tool") == "sluice-bench" and data.get("bytes"):
        # sluice-bench reads the broker's CPU itself (--broker-pid); its bytes are record
        # batch bytes (header and records), a few percent above the values alone.
        broker = (data.get("cpu") or {}).get("broker_seconds")
        if broker is not None:
            row["server"] = "sluice"
            row["cpu_seconds"] = broker
            row["cpu_seconds_per_gb"] = broker / (data["bytes"] / 1e9)
    if note:
        row["note"] = note
    return row


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory = sys.argv[1]
    failed = sys.argv[2:]
    machine = load(directory, "machine.json") or {}

    fio_write = fio_row(load(directory, "fio_buffered_write.json"),
                        "fio: sequential write, bs=16k, page cache")
    fio_sync = fio_row(load(directory, "fio_sync_write.json"),
                       "fio: write bs=16k + fdatasync every 64 KiB")
    iperf = load(directory, "iperf3.json")
    iperf_row = None
    if iperf and "sum_received" in iperf.get("end", {}):
        received = iperf["end"]["sum_received"]
        iperf_row = {"workload": "iperf3: loopback TCP, 1 stream",
                     "mb_per_second": received["bits_per_second"] / 8 / 1e6}
    echo = client_row(directory, "tcp_echo", "TCP echo: 1 KiB ping-pong",
                      "records = round trips")
    redis = client_row(directory, "redis_xadd", "Redis 7.0 XADD, 50 clients, pipeline 16",
                       "AOF fsync every s; no p99.9 from redis-benchmark")
    nats = client_row(directory, "nats_publish", "NATS JetStream async publish, 1024 pending",
                      "file stream")
    s_acks1 = client_row(directory, "sluice_produce_acks1", "Sluice produce acks=1")
    s_acksall = client_row(directory, "sluice_produce_acksall", "Sluice produce acks=all")
    paced = load(directory, "sluice_produce_acksall_paced.json") or {}
    s_paced = client_row(directory, "sluice_produce_acksall_paced",
                         f"Sluice produce acks=all, paced {paced.get('rate', 0):,.0f}/s")
    s_sync = client_row(directory, "sluice_produce_sync",
                        "Sluice produce acks=1, one at a time")
    s_consume = client_row(directory, "sluice_consume", "Sluice consume from the beginning")
    bench_rows = [client_row(directory, f"sluice_bench_{mode}", f"sluice-bench {mode}")
                  for mode in ("produce", "consume", "e2e")]

    def ratio(row, key, sub, reference, ref_key, ref_sub, label):
        if not row or not reference:
            return
        value = row.get(key, {}).get(sub) if sub else row.get(key)
        base = reference.get(ref_key, {}).get(ref_sub) if ref_sub else reference.get(ref_key)
        if value and base:
            row.setdefault("ratios", []).append({"ratio": value / base, "of": label})

    for row in (s_acks1, s_acksall):
        ratio(row, "mb_per_second", None, fio_write, "mb_per_second", None,
              "MB/s / fio buffered write")
    ratio(s_paced, "latency_us", "p99", fio_sync, "latency_us", "p99",
          "p99 / fio fdatasync p99")
    ratio(s_consume, "mb_per_second", None, iperf_row, "mb_per_second", None,
          "MB/s / iperf3")
    ratio(s_sync, "latency_us", "p50", echo, "latency_us", "p50", "p50 / TCP echo p50")
    # sluice-bench rows, when present, against the same references as the librdkafka ones.
    for row in bench_rows:
        if row and row["source"].endswith("produce"):
            ratio(row, "mb_per_second", None, fio_write, "mb_per_second", None,
                  "MB/s / fio buffered write")
            ratio(row, "records_per_second", None, redis, "records_per_second", None,
                  "records/s / Redis XADD")
        elif row and row["source"].endswith("consume"):
            ratio(row, "mb_per_second", None, iperf_row, "mb_per_second", None,
                  "MB/s / iperf3")
    for row in (nats, s_acks1, s_acksall):
        ratio(row, "records_per_second", None, redis, "records_per_second", None,
              "records/s / Redis XADD")

    sections = [
        ("references", [fio_write, fio_sync, iperf_row, echo]),
        ("other brokers", [redis, nats]),
        ("Sluice (librdkafka 2.0.2 client)", [s_acks1, s_acksall, s_paced, s_sync, s_consume]),
        ("Sluice (sluice-bench)", [r for r in bench_rows if r]),
    ]

    def number(value, digits=0):
        if value is None:
            return "-"
        return f"{value:,.{digits}f}"

    header = ["workload", "records/s", "MB/s", "p50 us", "p99 us", "p99.9 us", "CPU s/GB",
              "ratio to same-run reference"]
    lines = []
    for title, rows in sections:
        if not rows:
            continue
        lines.append([f"-- {title}"] + [""] * (len(header) - 1))
        for row in rows:
            if row is None:
                continue
            latency = row.get("latency_us", {})
            ratios = "; ".join(f"{r['ratio']:.2f}x {r['of']}" for r in row.get("ratios", []))
            lines.append([
                row["workload"],
                number(row.get("records_per_second")),
                number(row.get("mb_per_second"), 1),
                number(latency.get("p50")),
                number(latency.get("p99")),
                number(latency.get("p99.9")),
                number(row.get("cpu_seconds_per_gb"), 2),
                ratios,
            ])
    widths = [max(len(line[i]) for line in lines + [header]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5, 6}

    def format_line(cells):
        return "  ".join(c.rjust(w) if i in right and not cells[0].startswith("--") else
                         c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(f"{machine.get('date', '')}: {machine.get('cpus', '?')} x {machine.get('cpu', '?')}, "
          f"kernel {machine.get('kernel', '?')}, {machine.get('file_system', '?')}, "
          f"{machine.get('duration_s', '?')} s per load, load average "
          f"{' '.join(machine.get('load_before', []))} before, "
          f"{' '.join(machine.get('load_after', []))} after")
    print(format_line(header))
    for line in lines:
        print(format_line(line))
    notes = [f"{r['workload']}: {r['note']}" for _, rows in sections for r in rows
             if r and r.get("note")]
    for note in notes:
        print(f"  note: {note}")
    missing = [name for name, row in (
        ("fio buffered write", fio_write), ("fio fdatasync", fio_sync), ("iperf3", iperf_row),
        ("tcp echo", echo), ("redis", redis), ("nats", nats), ("sluice acks=1", s_acks1),
        ("sluice acks=all", s_acksall), ("sluice paced", s_paced), ("sluice one at a time", s_sync),
        ("sluice consume", s_consume)) if row is None]
    if missing:
        print(f"  missing: {', '.join(missing)}")
    if failed:
        print(f"  failed steps: {', '.join(failed)}")

    summary = {"machine": machine, "failed_steps": failed,
               "rows": [r for _, rows in sections for r in rows if r]}
    with open(os.path.join(directory, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
