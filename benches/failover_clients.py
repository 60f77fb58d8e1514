#!/usr/bin/python3
"""Many DHCP clients on one link at a steady rate, for benches/failover.sh.

Each client takes its turn at --rate turns per second, round robin: without
a lease (or after --renewals renewals) a DORA, broadcast with the broadcast
flag; else a renewal, a REQUEST with ciaddr unicast to the server that
acknowledged it (the namespace answers for the whole pool by a local
route, so the ACK to ciaddr arrives). A message left unanswered is
retransmitted after the client's retry interval, RFC 2131's 4 s at first,
doubled each time up to 64 s, without jitter; the retransmission is what a
client does when its server is gone: an unanswered REQUEST of a DORA
starts again with a DISCOVER, an unanswered renewal becomes a rebinding
(the same REQUEST broadcast). `secs` counts from the client's first send of
the exchange, so a server watching it (Kea's HA) sees clients waiting.

At --kill-after seconds SIGKILL goes to each PID of --kill. At the end one
JSON line: per client, the time from a send that got no answer to the next
answer it got (a gap), the longest one and how many retransmissions it
took; and the longest time in which no client got any answer.
"""
import argparse, heapq, json, os, select, signal, socket, struct, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
from relay_wire import message, reply  # noqa: E402

DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
FIRST_RETRY, MAX_RETRY = 4.0, 64.0


class Client:
    def __init__(self, n, prefix):
        self.mac = bytes.fromhex(prefix) + n.to_bytes(3, "big")
        self.ip = self.server = None
        self.renewals = 0
        self.pending = None          # discover, request, renew, rebind
        self.xid = 0
        self.began = 0.0             # first send of this exchange (secs)
        self.sent = 0.0              # last send
        self.interval = FIRST_RETRY
        self.deadline = 0.0
        self.unanswered_since = None
        self.retransmissions = 0     # since unanswered_since
        self.offer = None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("iface")
    p.add_argument("--clients", type=int, default=300)
    p.add_argument("--rate", type=float, default=100, help="client turns per second")
    p.add_argument("--renewals", type=int, default=3, help="renewals before a new DORA")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--kill-after", type=float, default=None)
    p.add_argument("--kill", default="", help="comma list of PIDs")
    p.add_argument("--prefix", default="02fa00")
    a = p.parse_args()

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, a.iface.encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(("0.0.0.0", 68))
    s.setblocking(False)

    clients = [Client(n, a.prefix) for n in range(a.clients)]
    by_xid = {}
    timers = []                      # (deadline, id, xid, client)
    gaps = []                        # (gap, began relative to start, retransmissions, mac, open)
    counts = {"turns": 0, "sent": 0, "answers": 0, "acks": 0, "naks": 0}
    naks = {}                        # "kind of request, server, before/after the kill": count
    start = time.monotonic()
    end = start + a.seconds
    kill_at = start + a.kill_after if a.kill_after is not None else None
    killed_at = killed_at_unix = None
    last_answer = start
    longest_silence = (0.0, 0.0)     # (length, began relative to start)
    next_turn = start
    turn = 0

    def send(c, kind, now):
        dest = "255.255.255.255"
        if kind == "discover":
            pkt = message(DISCOVER, c.xid, c.mac, secs=now - c.began, broadcast=True)
        elif kind == "request":
            pkt = message(REQUEST, c.xid, c.mac, secs=now - c.began, broadcast=True,
                          requested=c.offer[0], server=c.offer[1])
        elif kind == "renew":
            dest = c.server or dest
            pkt = message(REQUEST, c.xid, c.mac, secs=now - c.began, ciaddr=c.ip)
        else:   # rebind
            pkt = message(REQUEST, c.xid, c.mac, secs=now - c.began, ciaddr=c.ip)
        try:
            s.sendto(pkt, (dest, 67))
            counts["sent"] += 1
        except OSError:
            pass
        c.pending, c.sent = kind, now
        c.deadline = now + c.interval
        heapq.heappush(timers, (c.deadline, id(c), c.xid, c))

    def new_xid(c):
        by_xid.pop(c.xid, None)
        c.xid = int.from_bytes(os.urandom(4), "big")
        by_xid[c.xid] = c

    def begin(c, now):
        new_xid(c)
        c.began, c.interval = now, FIRST_RETRY
        if c.ip is None or c.renewals >= a.renewals:
            c.renewals = 0
            send(c, "discover", now)
        else:
            send(c, "renew", now)

    while True:
        now = time.monotonic()
        if now >= end:
            break
        if kill_at is not None and killed_at is None and now >= kill_at:
            for pid in filter(None, a.kill.split(",")):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed_at, killed_at_unix = now, time.time()
        while now >= next_turn:
            c = clients[turn % len(clients)]
            turn += 1
            next_turn += 1 / a.rate
            if c.pending is None:
                counts["turns"] += 1
                begin(c, now)
        while timers and timers[0][0] <= now:
            _, _, xid, c = heapq.heappop(timers)
            if c.pending is None or c.xid != xid or c.deadline > now:
                continue
            # No answer within the retry interval: what the client does next.
            if c.unanswered_since is None:
                c.unanswered_since, c.retransmissions = c.sent, 0
            c.retransmissions += 1
            c.interval = min(c.interval * 2, MAX_RETRY)
            if c.pending in ("discover", "request"):
                send(c, "discover", now)
            else:
                send(c, "rebind", now)
        wait = min(next_turn, end, timers[0][0] if timers else end,
                   kill_at if kill_at is not None and killed_at is None else end) - time.monotonic()
        if select.select([s], [], [], max(0.0, wait))[0]:
            while True:
                try:
                    data = s.recv(4096)
                except OSError:   # nothing more to read (or an ICMP error)
                    break
                r = reply(data)
                now = time.monotonic()
                if not r or r[0] not in by_xid:
                    continue
                xid, kind, yiaddr, sid = r
                c = by_xid[xid]
                if c.pending is None:
                    continue
                want = (OFFER,) if c.pending == "discover" else (ACK, NAK)
                if kind not in want:
                    continue
                counts["answers"] += 1
                if now - last_answer > longest_silence[0]:
                    longest_silence = (now - last_answer, last_answer - start)
                last_answer = now
                if c.unanswered_since is not None:
                    gaps.append((now - c.unanswered_since, c.unanswered_since - start,
                                 c.retransmissions, c.mac.hex(":"), False))
                    c.unanswered_since = None
                c.interval = FIRST_RETRY
                if kind == OFFER:
                    c.offer = (yiaddr, sid)
                    send(c, "request", now)
                elif kind == ACK:
                    counts["acks"] += 1
                    if c.pending in ("renew", "rebind"):
                        c.renewals += 1
                    c.ip, c.server, c.pending = yiaddr, sid, None
                else:
                    counts["naks"] += 1
                    key = "%s from %s %s the kill" % (c.pending, sid, "after" if killed_at else "before")
                    naks[key] = naks.get(key, 0) + 1
                    c.ip, c.pending = None, None
    now = time.monotonic()
    for c in clients:
        if c.unanswered_since is not None:
            gaps.append((now - c.unanswered_since, c.unanswered_since - start,
                         c.retransmissions, c.mac.hex(":"), True))
    if now - last_answer > longest_silence[0]:
        longest_silence = (now - last_answer, last_answer - start)
    worst = max(gaps, default=(0.0, 0.0, 0, "-", False))
    kill_rel = killed_at - start if killed_at is not None else None
    print(json.dumps({
        "clients": a.clients, "rate": a.rate, "seconds": a.seconds, "first_retry": FIRST_RETRY,
        "killed_at": kill_rel, "killed_at_unix": killed_at_unix, **counts,
        "clients_with_gaps": len({g[3] for g in gaps}),
        "longest_gap": round(worst[0], 3), "longest_gap_began": round(worst[1], 3),
        "longest_gap_retransmissions": worst[2], "longest_gap_client": worst[3],
        "longest_gap_open": worst[4],
        "gaps_over_first_retry": sum(1 for g in gaps if g[2] > 1),
        "still_unanswered": sum(1 for g in gaps if g[4]),
        "longest_silence": round(longest_silence[0], 3),
        "longest_silence_began": round(longest_silence[1], 3),
        "naks_by": naks,
    }), flush=True)
    return 0


sys.exit(main())
