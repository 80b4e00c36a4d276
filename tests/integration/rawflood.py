"""A flood of ICMP echo requests as raw Ethernet frames, run inside a VM's namespace.

No ARP and no routing: the frames leave the moment the VM's `eth0` exists again after a plug, so
they probe the very first milliseconds of a port's life. Sends every `interval` seconds, re-opens
the socket when the device goes and comes back, and writes how many frames it sent to `count_file`.

    python -m tests.integration.rawflood DST_MAC DST_IP SRC_IP COUNT_FILE [INTERVAL]
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, seq: int) -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x5DC1, seq & 0xFFFF) + b"sdnctl-flood"
    icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq & 0xFFFF, 0, 64, 1, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return dst_mac + src_mac + b"\x08\x00" + header + icmp


def main(dst_mac: str, dst_ip: str, src_ip: str, count_file: str, interval: str = "0.002") -> None:
    sent, sock, out = 0, None, Path(count_file)
    while True:
        try:
            if sock is None:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                sock.bind(("eth0", 0))
            src_mac = sock.getsockname()[4]
            sock.send(echo_request(src_mac, bytes.fromhex(dst_mac.replace(":", "")), src_ip, dst_ip, sent))
            sent += 1
            if sent % 25 == 0:
                out.write_text(str(sent))
        except OSError:   # eth0 gone (unplugged) or not up yet: open again on the next round
            if sock is not None:
                sock.close()
            sock = None
        time.sleep(float(interval))


if __name__ == "__main__":
    main(*sys.argv[1:])
