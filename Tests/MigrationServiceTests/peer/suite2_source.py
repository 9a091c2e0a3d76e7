"""An independent migration source on protocol version 2, suite 2, written from docs/wire-protocol.md
with python-gssapi and `cryptography` only (no code shared with the Swift implementation).

Usage: suite2_source.py HOST PORT TARGET_PRINCIPAL VM FILE [DIGEST]   (KRB5_CONFIG and KRB5CCNAME from the environment)
Moves FILE as VM over TCP/IP (one channel, 64 KiB chunks) and prints "COMMITTED <bytes>", or exits non-zero.
DIGEST is the offer's sha256 field: "none" (default: 32 zero bytes, as protocol 2 sends), "sha256" (the
file's SHA-256, which the destination then verifies) or "wrong" (a SHA-256 of something else).
"""
import hashlib
import os
import socket
import struct
import sys

import gssapi
from gssapi.raw import ext_krb5
from gssapi.raw.chan_bindings import ChannelBindings
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "GSSTests", "peer"))
import krb5_prf  # noqa: E402  (RFC 4402 PRF+ from the lucid keys: this python-gssapi has no ext_rfc4401)

MAGIC = b"MIGA"
CHUNK = 65536


class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=60)
        self.send_key = self.recv_key = None
        self.send_seq = self.recv_seq = 0
        self.keys = {}

    def read_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the destination closed the connection")
            data += chunk
        return data

    def send_frame(self, payload):
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def receive_frame(self):
        (n,) = struct.unpack(">I", self.read_exact(4))
        return self.read_exact(n)

    # Suite 2 (docs/wire-protocol.md, "Suite 2: AES-256-GCM").
    def key(self, direction, epoch):
        if (direction, epoch) not in self.keys:
            data = (b"MIGA suite 2 key" + struct.pack(">HB", 2, direction) + self.migration_id + bytes([0])
                    + struct.pack(">I", epoch) + self.transcript)
            self.keys[(direction, epoch)] = AESGCM(krb5_prf.gss_pseudo_random(self.lucid, krb5_prf.PRF_KEY_FULL, data, 32))
        return self.keys[(direction, epoch)]

    def send_sealed(self, inner):
        s = self.send_seq
        length = 1 + 8 + len(inner) + 16
        header = struct.pack(">IBQ", length, 0x08, s)
        sealed = self.key(1, s // 65536).encrypt(struct.pack(">IQ", 1, s), inner, header)
        self.sock.sendall(header + sealed)
        self.send_seq += 1

    def receive_sealed(self):
        payload = self.receive_frame()
        if payload[0] == 0x0F:
            raise RuntimeError(f"clear error from the destination: {payload!r}")
        if payload[0] != 0x08:
            raise RuntimeError(f"expected a suite-2 frame, got kind {payload[0]:#x}")
        (s,) = struct.unpack(">Q", payload[1:9])
        if s != self.recv_seq:
            raise RuntimeError(f"out of sequence: {s}, expected {self.recv_seq}")
        aad = struct.pack(">I", len(payload)) + payload[:9]
        inner = self.key(2, s // 65536).decrypt(struct.pack(">IQ", 2, s), payload[9:], aad)
        self.recv_seq += 1
        if inner[0] == 0x0F:
            raise RuntimeError(f"error from the destination: {inner!r}")
        return inner


def string16(data, offset):
    (n,) = struct.unpack(">H", data[offset:offset + 2])
    return data[offset + 2:offset + 2 + n].decode(), offset + 2 + n


def main():
    host, port, target, vm, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    digest_mode = sys.argv[6] if len(sys.argv) > 6 else "none"
    content = open(path, "rb").read()
    conn = Connection(host, port)
    conn.migration_id = os.urandom(16)

    # Opening: hello 1…2, helloAck v2, suites.
    hello = bytes([0x01]) + MAGIC + struct.pack(">HHBB", 1, 2, 1, 1)
    conn.send_frame(hello)
    ack = conn.receive_frame()
    if ack[0] != 0x02 or ack[1:5] != MAGIC:
        raise RuntimeError(f"expected helloAck, got {ack!r}")
    version, auth = struct.unpack(">HB", ack[5:8])
    if version != 2 or auth != 1:
        raise RuntimeError(f"helloAck version {version}, authentication {auth}")
    n = ack[8]
    server_suites = list(ack[9:9 + n])
    if 2 not in server_suites:
        raise RuntimeError(f"the destination does not offer suite 2: {server_suites}")
    suites = bytes([0x07, 2, 1, 2]) + os.urandom(16) + conn.migration_id + bytes([0])
    conn.send_frame(suites)
    transcript = hashlib.sha256()
    for m in (hello, ack, suites):
        transcript.update(struct.pack(">I", len(m)) + m)
    conn.transcript = transcript.digest()

    # Kerberos, mutual, with the transcript as channel bindings.
    bindings = ChannelBindings(application_data=b"MIGA v2 transcript" + conn.transcript)
    flags = (gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.confidentiality
             | gssapi.RequirementFlag.integrity | gssapi.RequirementFlag.replay_detection
             | gssapi.RequirementFlag.out_of_sequence_detection)
    ctx = gssapi.SecurityContext(name=gssapi.Name(target, gssapi.NameType.kerberos_principal),
                                 mech=gssapi.MechType.kerberos, usage="initiate", flags=flags,
                                 channel_bindings=bindings)
    token = ctx.step()
    while True:
        if token:
            conn.send_frame(bytes([0x03]) + token)
        if ctx.complete:
            break
        reply = conn.receive_frame()
        if reply[0] != 0x03:
            raise RuntimeError(f"expected a token, got {reply!r}")
        token = ctx.step(reply[1:])
    conn.lucid = ext_krb5.krb5_export_lucid_sec_context(ctx, 1)  # suite 2 needs only the keys from here on

    result = conn.receive_sealed()
    if result[0] != 0x04:
        raise RuntimeError(f"expected authResult, got kind {result[0]:#x}")
    principal, _ = string16(result, 1)

    # offer (TCP/IP, one channel; version 2: vmKind 0, a state file; no sourceGeneration), ready, chunks,
    # channelDone, commit. Chunk k sits at k * chunkSize with length min(chunkSize, size - offset).
    name = vm.encode()
    digest = {"none": bytes(32), "sha256": hashlib.sha256(content).digest(),
              "wrong": hashlib.sha256(content + b"!").digest()}[digest_mode]
    offer = (bytes([0x10]) + conn.migration_id + struct.pack(">H", len(name)) + name + struct.pack(">Q", len(content))
             + digest + struct.pack(">BBIB", 0, 1, CHUNK, 0))
    conn.send_sealed(offer)
    while True:
        reply = conn.receive_sealed()
        if reply[0] == 0x12:  # queued
            continue
        if reply[0] != 0x13:
            raise RuntimeError(f"expected ready, got kind {reply[0]:#x}")
        break
    sequence = 0
    for offset in range(0, len(content), CHUNK):
        data = content[offset:offset + CHUNK]
        conn.send_sealed(bytes([0x14]) + struct.pack(">IQIB", sequence, offset, len(data), 0) + data)
        sequence += 1
    conn.send_sealed(bytes([0x15]) + struct.pack(">IQ", sequence, len(content)))
    echo = conn.receive_sealed()
    if echo != bytes([0x15]) + struct.pack(">IQ", sequence, len(content)):
        raise RuntimeError(f"channelDone not echoed: {echo!r}")
    conn.send_sealed(bytes([0x16]))
    if conn.receive_sealed() != bytes([0x17]):
        raise RuntimeError("expected committed")
    print(f"COMMITTED {len(content)} as {principal}", flush=True)


if __name__ == "__main__":
    main()
