"""python-gssapi initiator for the GSS_Pseudo_random known-answer test (Tests/GSSTests/PseudoRandomTests).

Usage: prf_initiator.py PORT SERVICE@HOST ENCTYPE   (KRB5_CONFIG and KRB5CCNAME from the environment)
Frames on the socket: 4-byte big-endian length, payload. Establishes a Kerberos context with the
Swift acceptor, reads one frame (the PRF input), answers with one frame per (key, length) in
REQUESTS: its own RFC 4402 PRF+ over the context's keys (krb5_prf.py), then exits.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gssapi  # noqa: E402
from gssapi.raw import ext_krb5  # noqa: E402

import krb5_prf  # noqa: E402

REQUESTS = [(krb5_prf.PRF_KEY_FULL, n) for n in (1, 16, 33, 64)] + [(krb5_prf.PRF_KEY_PARTIAL, n) for n in (1, 16, 33, 64)]


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("peer closed")
        data += chunk
    return data


def receive(sock):
    (n,) = struct.unpack(">I", read_exact(sock, 4))
    return read_exact(sock, n)


def send(sock, payload):
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def main():
    port, target, enctype = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    name = gssapi.Name(target, gssapi.NameType.hostbased_service)
    flags = gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.confidentiality | gssapi.RequirementFlag.integrity
    cred = gssapi.Credentials(usage="initiate", mechs=[gssapi.MechType.kerberos])
    ext_krb5.krb5_set_allowable_enctypes(cred, [enctype])  # the session key's enctype, as the Swift side asks
    ctx = gssapi.SecurityContext(name=name, creds=cred, mech=gssapi.MechType.kerberos, usage="initiate", flags=flags)
    token = ctx.step()
    while True:
        if token:
            send(sock, token)
        if ctx.complete:
            break
        token = ctx.step(receive(sock))
    data = receive(sock)
    lucid = ext_krb5.krb5_export_lucid_sec_context(ctx, 1)  # the context ends here
    for key, length in REQUESTS:
        send(sock, krb5_prf.gss_pseudo_random(lucid, key, data, length))
    sock.close()


if __name__ == "__main__":
    main()
