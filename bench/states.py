#!/usr/bin/env python3
"""Helpers for bench/compare.sh: read each scanner's output into one shape
{(host, port): state}, count states that differ, and print the tables.

Readers:
  nmap      -oX file; folded ports (<extraports>) are expanded from the
            `ports` attribute of <extrareasons> (nmap >= 7.80). A host is
            its IPv4 or IPv6 address (addrtype ipv4 or ipv6; nmap -6).
  flagscan  -oJ file (JSON Lines); FILE:scan picks one technique.
  masscan   -oL file ("open tcp PORT HOST TS"); only open ports are listed.
  zmap      CSV with one responding address per line (-f saddr); the port
            comes from the job (PORT given as zmap:FILE:PORT).

masscan and zmap only report ports that answered SYN-ACK, so against them
the comparison is open / not open; against flagscan it is the full state.
Addresses are compared in one spelling (IPv6 compressed, as Python's
ipaddress writes it), so fd00:213:1:0:0:0:0:2 and fd00:213:1::2 are one host.

Usage (all output on stdout, one line):
  states.py diff REF TOOL          -> "<differing> <compared> <open-in-tool>"
  states.py count TOOL             -> "<open>"
  states.py fsstats FILE           -> "<probes> <elapsed_s> <rate_pps>"
  states.py table RESULTS.tsv      -> the report tables
where REF/TOOL are kind:file[:scan-or-port].
"""
import ipaddress
import json
import re
import sys
import xml.etree.ElementTree as ET


def expand_ports(spec):
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def norm(addr):
    """One spelling per address (IPv6 compressed); anything else as it is."""
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def nmap_addr(host):
    """A <host>'s IP address (ipv4, or ipv6 with nmap -6), not its MAC."""
    return next((norm(a.get("addr")) for a in host.findall("address")
                 if a.get("addrtype") in ("ipv4", "ipv6")), None)


def read_nmap(path):
    states = {}
    for _, elem in ET.iterparse(path, events=("end",)):
        if elem.tag != "host":
            continue
        addr = nmap_addr(elem)
        ports = elem.find("ports")
        if addr is None or ports is None:
            elem.clear()
            continue
        for p in ports.findall("port"):
            if p.get("protocol") not in ("tcp", "udp"):
                continue
            st = p.find("state")
            states[(addr, int(p.get("portid")))] = st.get("state")
        for ex in ports.findall("extraports"):
            state = ex.get("state")
            for r in ex.findall("extrareasons"):
                spec = r.get("ports")
                if spec is None:
                    raise SystemExit(
                        f"{path}: <extrareasons> without a ports attribute "
                        "(nmap older than 7.80?): cannot expand folded ports"
                    )
                for port in expand_ports(spec):
                    states[(addr, port)] = state
        elem.clear()
    return states


def read_flagscan(path, scan=None):
    states = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if "type" in rec or "port" not in rec:
                continue
            if rec.get("proto", "tcp") not in ("tcp", "udp"):
                continue
            if scan and rec.get("scan") != scan:
                continue
            states[(norm(rec["host"]), int(rec["port"]))] = rec["state"]
    return states


def read_reasons(spec):
    """(host, port, scan) -> (state, reason) from nmap XML or flagscan JSON."""
    kind, _, rest = spec.partition(":")
    path, _, scan = rest.partition(":")
    out = {}
    if kind == "nmap":
        for _, elem in ET.iterparse(path, events=("end",)):
            if elem.tag != "host":
                continue
            addr = nmap_addr(elem)
            ports = elem.find("ports")
            if addr and ports is not None:
                for p in ports.findall("port"):
                    st = p.find("state")
                    out[(addr, int(p.get("portid")), scan)] = (st.get("state"), st.get("reason"))
                for ex in ports.findall("extraports"):
                    for r in ex.findall("extrareasons"):
                        for port in expand_ports(r.get("ports")):
                            out[(addr, port, scan)] = (ex.get("state"), r.get("reason"))
            elem.clear()
        return out
    with open(path) as f:
        for line in f:
            rec = json.loads(line) if line.strip() else {}
            if "port" in rec and "type" not in rec and (not scan or rec.get("scan") == scan):
                out[(norm(rec["host"]), int(rec["port"]), rec["scan"])] = (
                    (rec["state"], rec["reason"]), rec.get("rate_limited", False))
    return out


def reasondiff(ref_specs, tool_spec):
    """States and reasons of a flagscan run against several nmap runs (one
    per technique: nmap:FILE:scan): how many differ, of how many."""
    ref = {}
    for spec in ref_specs:
        ref.update(read_reasons(spec))
    tool = {k: v[0] for k, v in read_reasons(tool_spec).items()}
    keys = set(ref) | set(tool)
    return sum(1 for k in keys if ref.get(k) != tool.get(k)), len(keys)


def truth(truth_spec, tool_spec):
    """A run against the ground truth (a flagscan run of the same host with
    its limiter off): right, wrong, wrong and unmarked, marked."""
    want = {k: v[0] for k, v in read_reasons(truth_spec).items()}
    kind = tool_spec.partition(":")[0]
    got = read_reasons(tool_spec)
    if kind == "nmap":
        got = {(h, p, want_scan): (v, False) for (h, p, _), v in got.items()
               for want_scan in {k[2] for k in want}}
    right = sum(1 for k, v in want.items() if k in got and got[k][0][0] == v[0])
    wrong = len(want) - right
    unmarked = sum(1 for k, v in want.items() if not (k in got and got[k][0][0] == v[0])
                   and not (k in got and got[k][1]))
    marked = sum(1 for v in got.values() if v[1])
    return right, wrong, unmarked, marked


def hosts_up(spec):
    """The addresses a run found up (nmap XML status, flagscan host records)."""
    kind, _, path = spec.partition(":")
    up = set()
    if kind == "nmap":
        for _, elem in ET.iterparse(path, events=("end",)):
            if elem.tag == "host":
                st = elem.find("status")
                addr = nmap_addr(elem)
                if st is not None and st.get("state") == "up" and addr:
                    up.add(addr)
                elem.clear()
        return up
    with open(path) as f:
        for line in f:
            rec = json.loads(line) if line.strip() else {}
            if rec.get("type") == "host" and rec.get("status", "up") == "up":
                up.add(norm(rec["host"]))
    return up


def read_masscan(path):
    states = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[0] in ("open", "closed") and parts[1] == "tcp":
                states[(norm(parts[3]), int(parts[2]))] = parts[0]
    return states


def read_zmap(path, port):
    states = {}
    with open(path) as f:
        for line in f:
            line = line.strip().split(",")[0]
            if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", line):
                states[(line, int(port))] = "open"
    return states


def load(spec):
    kind, _, rest = spec.partition(":")
    path, _, extra = rest.partition(":")
    if kind == "nmap":
        return kind, read_nmap(path)
    if kind == "flagscan":
        return kind, read_flagscan(path, extra or None)
    if kind == "masscan":
        return kind, read_masscan(path)
    if kind == "zmap":
        return kind, read_zmap(path, extra)
    raise SystemExit(f"unknown kind {kind}")


def diff(ref_spec, tool_spec):
    rk, ref = load(ref_spec)
    tk, tool = load(tool_spec)
    open_only = rk in ("masscan", "zmap") or tk in ("masscan", "zmap")
    keys = set(ref) | set(tool)
    n = 0
    for k in keys:
        a, b = ref.get(k, "missing"), tool.get(k, "missing")
        if open_only:
            if (a == "open") != (b == "open"):
                n += 1
        elif a != b:
            n += 1
    opened = sum(1 for v in tool.values() if v == "open")
    return n, len(keys), opened


def fsstats(path):
    stats = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{") and '"stats"' in line:
                rec = json.loads(line)
                if rec.get("type") == "stats":
                    stats = rec
    if stats is None:
        return "- - -"
    return f"{stats.get('probes', '-')} {stats.get('elapsed_s', '-')} {stats.get('rate_pps', '-')}"


def fnum(x, fmt):
    if x in ("", "-"):
        return "n/a"
    try:
        return format(float(x), fmt)
    except (TypeError, ValueError):
        return str(x)


def table(path):
    """RESULTS.tsv columns: job, tool, wall, cpu, probes, pps, rss_kb,
    diff, compared, found, note. One block per job, flagscan's row first
    gives the ratio's denominator."""
    jobs = {}
    order = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            cols += [""] * (11 - len(cols))
            job = cols[0]
            if job not in jobs:
                jobs[job] = []
                order.append(job)
            jobs[job].append(cols)
    for job in order:
        rows = jobs[job]
        # Ratios compare like with like: "nmap -T4, no loss" against
        # "flagscan, no loss"; everything else against the row "flagscan".
        bases = {}
        for r in rows:
            if r[1] == "flagscan" or r[1].startswith("flagscan, "):
                bases[r[1].partition(", ")[2]] = r[2]
        print(f"\n== {job}")
        hdr = ("tool", "wall s", "cpu s", "probes", "probes/s", "cpu s/Mprobe",
               "max RSS MB", "open found", "differ from nmap", "wall vs flagscan")
        out = [hdr]
        notes = []
        for r in rows:
            _, tool, wall, cpu, probes, pps, rss, dif, comp, found, note = r[:11]
            base = bases.get(tool.partition(", ")[2]) if ", " in tool else bases.get("")
            try:
                ratio = f"{float(wall) / float(base):.2f}x"
            except (TypeError, ValueError, ZeroDivisionError):
                ratio = "n/a"
            try:
                cpm = f"{float(cpu) / (float(probes) / 1e6):.2f}"
            except (TypeError, ValueError, ZeroDivisionError):
                cpm = "n/a"
            try:
                rss_mb = f"{float(rss) / 1024:.1f}"
            except (TypeError, ValueError):
                rss_mb = "n/a"
            d = "n/a" if dif in ("", "-") else (f"{dif} of {comp}" if comp not in ("", "-") else dif)
            found = found if found not in ("", "-") else "n/a"
            out.append((tool, fnum(wall, ".2f"), fnum(cpu, ".2f"),
                        probes if probes not in ("", "-") else "n/a", fnum(pps, ".0f") if pps not in ("", "-") else "n/a",
                        cpm, rss_mb, found, d, ratio))
            if note:
                notes.append(f"  {tool}: {note}")
        widths = [max(len(str(row[i])) for row in out) for i in range(len(hdr))]
        for i, row in enumerate(out):
            print("| " + " | ".join(str(c).ljust(widths[j]) for j, c in enumerate(row)) + " |")
            if i == 0:
                print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for n in notes:
            print(n)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd = argv[1]
    if cmd == "diff":
        n, keys, opened = diff(argv[2], argv[3])
        print(n, keys, opened)
    elif cmd == "count":
        _, st = load(argv[2])
        print(sum(1 for v in st.values() if v == "open"))
    elif cmd == "fsstats":
        print(fsstats(argv[2]))
    elif cmd == "reasondiff":
        n, keys = reasondiff(argv[2:-1], argv[-1])
        print(n, keys)
    elif cmd == "truth":
        print(*truth(argv[2], argv[3]))
    elif cmd == "hostsdiff":
        a, b = hosts_up(argv[2]), hosts_up(argv[3])
        print(len(a ^ b), len(a), len(b))
    elif cmd == "table":
        table(argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
