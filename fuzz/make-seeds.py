#!/usr/bin/env python3
"""Write the fuzzers' starting inputs under fuzz/seeds/<target>/: requests of
every kind the handler serves, the test suite's configuration files, AAS
protocol sessions and a transaction log. Run by `make fuzz`."""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COOKIE = bytes([99, 130, 83, 99])


def request(mac, options, op=1, giaddr=b"\0\0\0\0", ciaddr=b"\0\0\0\0", flags=0, cookie=True, pad_to=0):
    b = bytearray(236)
    b[0], b[1], b[2] = op, 1, len(mac)
    b[4:8] = b"\x12\x34\x56\x78"
    b[10:12] = struct.pack(">H", flags)
    b[12:16] = ciaddr
    b[24:28] = giaddr
    b[28:28 + len(mac)] = mac
    if cookie:
        b += COOKIE + options + b"\xff"
    b += bytes(max(0, pad_to - len(b)))
    return bytes(b)


def opt(code, value):
    return bytes([code, len(value)]) + value


STATIC = bytes.fromhex("020000000001")
OTHER = bytes.fromhex("02aa00000005")
PRL = opt(55, bytes([1, 3, 6, 12, 15, 28, 42, 43, 66, 67, 119]))
POOL_ADDR = bytes([10, 9, 0, 7])
US = bytes([10, 0, 0, 1])
AGENT = opt(82, opt(1, b"eth1/1") + opt(2, b"\x00\x01") + opt(5, bytes([10, 0, 0, 0])))

packets = {
    "discover-static": request(STATIC, opt(53, b"\x01") + PRL),
    "discover-dynamic": request(OTHER, opt(53, b"\x01") + opt(57, b"\x05\xdc") + opt(61, b"\x01" + OTHER) + PRL),
    "discover-hint": request(OTHER, opt(53, b"\x01") + opt(50, POOL_ADDR) + opt(51, b"\x00\x00\x0e\x10")),
    "discover-pxe": request(OTHER, opt(53, b"\x01") + opt(60, b"PXEClient:Arch:00007") + opt(93, b"\x00\x07") + PRL),
    "discover-relayed": request(OTHER, opt(53, b"\x01") + AGENT, giaddr=bytes([10, 0, 0, 2])),
    "request-selecting": request(OTHER, opt(53, b"\x03") + opt(50, POOL_ADDR) + opt(54, US) + opt(12, b"host") + PRL),
    "request-init-reboot": request(OTHER, opt(53, b"\x03") + opt(50, POOL_ADDR)),
    "request-renewing": request(OTHER, opt(53, b"\x03"), ciaddr=POOL_ADDR),
    "request-held": request(OTHER, opt(53, b"\x03") + opt(50, bytes([10, 9, 0, 1])) + opt(54, US)),
    "inform": request(OTHER, opt(53, b"\x08") + PRL, ciaddr=bytes([10, 0, 3, 3])),
    "release": request(OTHER, opt(53, b"\x07") + opt(54, US), ciaddr=POOL_ADDR),
    "decline": request(OTHER, opt(53, b"\x04") + opt(50, bytes([10, 9, 0, 2])) + opt(54, US)),
    "bootp-cookie": request(STATIC, b"", pad_to=300),
    "bootp-dynamic": request(OTHER, b"", pad_to=300),
    "bootp-rfc951": request(OTHER, b"", cookie=False, pad_to=300),
    "overload": request(OTHER, opt(53, b"\x01") + opt(52, b"\x03") + opt(57, b"\x02\x40")),
    "subnet-selection": request(OTHER, opt(53, b"\x01") + opt(118, bytes([10, 1, 0, 0]))),
    "long-client-id": request(OTHER, opt(53, b"\x01") + opt(61, bytes(range(255))) + opt(61, bytes(45))),
    "fqdn": request(OTHER, opt(53, b"\x03") + opt(81, b"\x01\x00\x00\x04host\x07example\x00") + opt(50, POOL_ADDR)),
}

proto = {
    "alloc-renew-release": b"PING\nALLOC Fuzz dhcp c1 60\nALLOC Fuzz dhcp c1 3600 exact=10.9.0.3 previous\n"
    b"RELEASE 10.9.0.3 dhcp c1\nDECLINE 10.9.0.4 dhcp c1 600\nQUERY pool=Fuzz\nSTATS\n",
    "admin": b"DISABLE 10.9.0.5\nENABLE 10.9.0.5\nRELEASE 10.9.0.1\nALLOC Fuzz dhcp c2 infinite range=10.9.0.8-10.9.0.9\n",
    "unhold": b"ALLOC Fuzz dhcp c3 30 prefer=10.9.0.6\nUNHOLD Fuzz dhcp c3\nQUERY client=c3\nCHECKPOINT\n",
}


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for name, data in packets.items():
    write("dhcp_handle", name, data)
    write("packet_validate", name, data)
for name, data in proto.items():
    write("aas_protocol", name, data)
configs = os.path.join(ROOT, "tests", "configs")
for name in sorted(os.listdir(configs)):
    with open(os.path.join(configs, name), "rb") as f:
        data = f.read()
    write("aasd_conf" if name.startswith("aasd") else "dhcpd_conf", name, data)
write("aasd_conf", "full.conf", b"""database_dir = /var/lib/aasd
max_db_size = 2m
checkpoint_intvl = 60
num_checkpoints = 5
password = secret
socket = /run/aasd/aasd.sock
listen = 127.0.0.1:5310
sync = never

[pool Two]
type = inet
range = 192.168.2.100-192.168.2.200
address = 192.168.2.250
[pool Big]
range = 10.0.0.0-10.255.255.255
""")


def record(seq, addr, state, end, client, disabled=0):
    """One transaction-log record, as src/aas/journal.rs writes it."""
    payload = struct.pack("<QIBBQQQ", seq, addr, state, disabled, end - 30, end, 0)
    payload += bytes([4]) + b"dhcp" + bytes([len(client)]) + client
    return b"\xa5" + struct.pack("<H", len(payload)) + payload + struct.pack("<I", zlib.crc32(payload))


base = (10 << 24) | (9 << 16)
log = b"".join(record(i + 1, base + 1 + i % 5, 1 + i % 3, 1_800_000_000 + i, b"client-%d" % i) for i in range(12))
write("journal_replay", "log", log)
write("journal_replay", "log-torn", log[:-5])
