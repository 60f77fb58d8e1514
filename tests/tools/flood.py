#!/usr/bin/python3
"""DHCP load posing as a relay agent: DISCOVERs from fresh random MACs at
a set rate; with --dora, the REQUEST for each OFFER too (a starvation
flood). Binds giaddr:67 (run it where that address is), so every reply
comes back to it. With --circuit, each request carries option 82 with
that circuit id. Prints one JSON line when done: how many DISCOVERs went
out and how many OFFERs, ACKs and NAKs came back.
"""
import argparse, json, os, select, socket, struct, sys, time

from relay_wire import packet, reply


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("giaddr")
    p.add_argument("--rate", type=float, default=100, help="DISCOVERs a second")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--dora", action="store_true")
    p.add_argument("--circuit", default="", help="option 82 circuit id (text)")
    a = p.parse_args()
    circuit = a.circuit.encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.giaddr, 67))
    s.setblocking(False)
    macs, count = {}, {"sent": 0, "offers": 0, "acks": 0, "naks": 0}
    t0 = time.monotonic()
    end = t0 + a.seconds
    while True:
        now = time.monotonic()
        due = t0 + count["sent"] / a.rate
        if now >= end:
            break
        if now >= due:
            xid = int.from_bytes(os.urandom(4), "big")
            mac = b"\x02" + os.urandom(5)
            macs[xid] = mac
            s.sendto(packet(xid, mac, a.giaddr, 1, circuit=circuit), (a.server, 67))
            count["sent"] += 1
            continue
        if not select.select([s], [], [], min(due, end) - now)[0]:
            continue
        while True:
            try:
                r = reply(s.recv(4096))
            except BlockingIOError:
                break
            if not r or r[0] not in macs:
                continue
            xid, kind, yiaddr, sid = r
            if kind == 2:
                count["offers"] += 1
                if a.dora:
                    s.sendto(packet(xid, macs[xid], a.giaddr, 3, yiaddr, sid, circuit),
                             (a.server, 67))
            elif kind == 5:
                count["acks"] += 1
            elif kind == 6:
                count["naks"] += 1
    print(json.dumps(count), flush=True)
    return 0


sys.exit(main())
