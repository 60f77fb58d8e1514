#!/usr/bin/python3
"""scapy-dhcp.py IFACE TYPE [options]: one DHCP message built with scapy,
sent as a client or as a relay agent, and the server's answer as one JSON
line (or TIMEOUT, exit 1), for the conformance tests.

As a client (the default): an Ethernet frame from --mac (also chaddr) and
IP --src (0.0.0.0 unless given) to 255.255.255.255:67 out of IFACE (to
Ethernet broadcast, or to --ether-dst: one server of several); the
answer is sniffed on IFACE whatever its Ethernet and IP destination, so
"to" says where the server sent it.
As a relay (--relay GIADDR --to SERVER): UDP from GIADDR:67 to SERVER:67
with giaddr set and hops 1, the answer read on that socket.
"""
import argparse, json, random, socket, struct, sys, threading

from scapy.all import AsyncSniffer, BOOTP, DHCP, Ether, IP, UDP, Raw, sendp, conf

TYPES = {"discover": 1, "request": 3, "decline": 4, "release": 7, "inform": 8}
NAMES = {2: "offer", 5: "ack", 6: "nak"}


def build(a, xid):
    mac = bytes.fromhex(a.mac.replace(":", ""))
    opts = [("message-type", TYPES[a.type])]
    if a.requested:
        opts.append(("requested_addr", a.requested))
    if a.server_id:
        opts.append(("server_id", a.server_id))
    for o in a.opt:
        code, val = o.split(":", 1)
        v = bytes.fromhex(val)
        opts.append(bytes([int(code), len(v)]) + v)
    opts.append("end")
    bootp = BOOTP(op=1, htype=1, hlen=6, hops=1 if a.relay else 0, xid=xid,
                  flags=0x8000 if a.broadcast else 0, ciaddr=a.ciaddr,
                  giaddr=a.relay or "0.0.0.0", chaddr=mac.ljust(16, b"\0"))
    return bytes(bootp / DHCP(options=opts)).ljust(300, b"\0")


def decode(b):
    """Header fields and options (hex). As RFC 3396 says, the instances of
    one code are joined: options field first, then file and sname when
    option 52 says so; "parts" counts the instances of each code."""
    out = {"xid": struct.unpack("!I", b[4:8])[0],
           "flags": struct.unpack("!H", b[10:12])[0],
           "ciaddr": socket.inet_ntoa(b[12:16]), "yiaddr": socket.inet_ntoa(b[16:20]),
           "siaddr": socket.inet_ntoa(b[20:24]), "giaddr": socket.inet_ntoa(b[24:28]),
           "options": {}, "parts": {}}

    def walk(i, end):
        while i < end and b[i] != 255:
            if b[i] == 0:
                i += 1
                continue
            code, ln = b[i], b[i + 1]
            key = str(code)
            out["options"][key] = out["options"].get(key, "") + b[i + 2:i + 2 + ln].hex()
            out["parts"][key] = out["parts"].get(key, 0) + 1
            i += 2 + ln

    walk(240, len(b))
    overload = int(out["options"].get("52", "00")[:2], 16)
    if overload & 1:
        walk(108, 236)
    if overload & 2:
        walk(44, 108)
    t = out["options"].get("53")
    out["type"] = NAMES.get(int(t, 16), t) if t else None
    return out


def as_client(a, xid, pkt):
    got = []
    done = threading.Event()

    def keep(p):
        if UDP in p and p[UDP].dport == 68:
            b = bytes(p[UDP].payload)
            if len(b) >= 240 and b[0] == 2 and struct.unpack("!I", b[4:8])[0] == xid:
                r = decode(b)
                r["to"] = "%s:%d" % (p[IP].dst, p[UDP].dport)
                r["ether_dst"] = p[Ether].dst
                got.append(r)
                done.set()

    started = threading.Event()
    sniffer = AsyncSniffer(iface=a.iface, filter="udp and dst port 68", prn=keep,
                           store=False, started_callback=started.set)
    sniffer.start()
    if not started.wait(5):
        print("SNIFFER DID NOT START")
        return 2
    frame = (Ether(src=a.mac, dst=a.ether_dst) /
             IP(src=a.src, dst="255.255.255.255") / UDP(sport=68, dport=67) / Raw(pkt))
    sendp(frame, iface=a.iface, verbose=False)
    done.wait(a.timeout)
    sniffer.stop()
    if not got:
        print("TIMEOUT")
        return 1
    print(json.dumps(got[0]))
    return 0


def as_relay(a, xid, pkt):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.relay, 67))
    s.settimeout(a.timeout)
    s.sendto(pkt, (a.to, 67))
    try:
        while True:
            data, src = s.recvfrom(65535)
            if len(data) >= 240 and struct.unpack("!I", data[4:8])[0] == xid:
                break
    except socket.timeout:
        print("TIMEOUT")
        return 1
    r = decode(data)
    r["from"] = "%s:%d" % src
    print(json.dumps(r))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("iface")
    p.add_argument("type", choices=TYPES)
    p.add_argument("--mac", default="02:77:00:00:00:10")
    p.add_argument("--src", default="0.0.0.0")
    p.add_argument("--ciaddr", default="0.0.0.0")
    p.add_argument("--requested")
    p.add_argument("--server-id")
    p.add_argument("--broadcast", action="store_true")
    p.add_argument("--opt", action="append", default=[], help="CODE:HEX, added as is")
    p.add_argument("--relay", help="act as a relay agent with this giaddr")
    p.add_argument("--to", help="the server a relay sends to")
    p.add_argument("--timeout", type=float, default=2)
    p.add_argument("--ether-dst", default="ff:ff:ff:ff:ff:ff",
                   help="one server's MAC: the broadcast reaches that server alone")
    a = p.parse_args()
    conf.verb = 0
    xid = random.getrandbits(32)
    pkt = build(a, xid)
    return as_relay(a, xid, pkt) if a.relay else as_client(a, xid, pkt)


sys.exit(main())
