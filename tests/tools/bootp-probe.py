#!/usr/bin/python3
"""bootp-probe.py IFACE [--mac M] [--no-vend] [--broadcast] [--dport N]

Send one BOOTREQUEST (no option 53) as a link-layer broadcast from IFACE and
print the first BOOTREPLY with our xid as one JSON line, or TIMEOUT (exit 1).
The reply is captured at the link layer (scapy), so a unicast to an address
the interface does not have yet is seen, and so is its source port: a reply
relayed by in.dhcpd comes from 67, one sent by bootpd itself from its port.
"""
import argparse, json, logging, random, sys, time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import (BOOTP, IP, UDP, AsyncSniffer, Ether, Raw, conf,  # noqa: E402
                       get_if_hwaddr, sendp)

conf.verb = 0
COOKIE = b"\x63\x82\x53\x63"


def vendor_options(vend):
    if not vend.startswith(COOKIE):
        return None
    out, i = {}, 4
    while i < len(vend) and vend[i] != 255:
        if vend[i] == 0:
            i += 1
            continue
        out[str(vend[i])] = vend[i + 2:i + 2 + vend[i + 1]].hex()
        i += 2 + vend[i + 1]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("iface")
    p.add_argument("--mac")
    p.add_argument("--no-vend", action="store_true", help="RFC 951: no cookie")
    p.add_argument("--broadcast", action="store_true")
    p.add_argument("--dport", type=int, default=67)
    p.add_argument("--timeout", type=float, default=4)
    a = p.parse_args()
    mac = a.mac or get_if_hwaddr(a.iface)
    xid = random.getrandbits(32)
    vend = bytes(64) if a.no_vend else (COOKIE + b"\xff").ljust(64, b"\0")
    # The whole 300-byte frame as bytes: scapy's BOOTP layer would add its own.
    bootp = bytes(BOOTP(op=1, htype=1, hlen=6, xid=xid,
                        flags=0x8000 if a.broadcast else 0,
                        chaddr=bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")))[:236]
    frame = (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
             / UDP(sport=68, dport=a.dport) / Raw(bootp + vend))

    def ours(pkt):
        if UDP not in pkt or pkt[UDP].dport != 68:
            return False
        b = bytes(pkt[UDP].payload)
        return len(b) >= 240 and b[0] == 2 and int.from_bytes(b[4:8], "big") == xid

    sniffer = AsyncSniffer(iface=a.iface, filter="udp and dst port 68", lfilter=ours,
                           count=1, timeout=a.timeout)
    sniffer.start()
    time.sleep(0.3)
    sendp(frame, iface=a.iface)
    sniffer.join()
    if not sniffer.results:
        print("TIMEOUT")
        return 1
    r = sniffer.results[0]
    b = bytes(r[UDP].payload)
    ip = lambda at: ".".join(str(x) for x in b[at:at + 4])  # noqa: E731
    print(json.dumps({
        "from": "%s:%d" % (r[IP].src, r[UDP].sport), "to": "%s:%d" % (r[IP].dst, r[UDP].dport),
        "yiaddr": ip(16), "siaddr": ip(20), "giaddr": ip(24), "len": len(b),
        "file": b[108:236].split(b"\0")[0].decode("ascii", "replace"),
        "options": vendor_options(b[236:]), "vend_zero": not any(b[236:]),
    }))
    return 0


sys.exit(main())
