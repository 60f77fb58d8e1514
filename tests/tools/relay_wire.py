"""The DHCP messages of a client, or of one posing as a relay agent (giaddr set, so
every reply comes back to giaddr:67), and the fields the load tools read
from a reply. Shared by dora-load.py, flood.py and
benches/failover_clients.py."""
import socket, struct


def packet(xid, mac, giaddr, kind, requested=None, server=None, circuit=None):
    """A request as the relay agent at giaddr forwards it (hops 1)."""
    return message(kind, xid, mac, hops=1, giaddr=giaddr, requested=requested,
                   server=server, circuit=circuit)


def message(kind, xid, mac, hops=0, secs=0, broadcast=False, ciaddr=None, giaddr=None,
            requested=None, server=None, circuit=None):
    """A BOOTREQUEST of DHCP message type kind, padded to 300 bytes."""
    addr = lambda a: socket.inet_aton(a) if a else bytes(4)
    hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, hops, xid,
                      min(int(secs), 65535), 0x8000 if broadcast else 0,
                      addr(ciaddr), bytes(4), bytes(4), addr(giaddr),
                      mac.ljust(16, b"\0"), b"", b"")
    opts = bytes([53, 1, kind])
    if requested:
        opts += bytes([50, 4]) + socket.inet_aton(requested)
    if server:
        opts += bytes([54, 4]) + socket.inet_aton(server)
    if circuit:
        opts += bytes([82, len(circuit) + 2, 1, len(circuit)]) + circuit
    return (hdr + b"\x63\x82\x53\x63" + opts + b"\xff").ljust(300, b"\0")


def reply(data):
    """(xid, message type, yiaddr, server id) of a BOOTREPLY, else None."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != b"\x63\x82\x53\x63":
        return None
    i, kind, sid = 240, None, None
    while i + 1 < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, ln = data[i], data[i + 1]
        if code == 53 and ln >= 1:
            kind = data[i + 2]
        if code == 54 and ln == 4:
            sid = socket.inet_ntoa(data[i + 2:i + 6])
        i += 2 + ln
    return struct.unpack("!I", data[4:8])[0], kind, socket.inet_ntoa(data[16:20]), sid
