"""pyspnego CredSSP client for the Swift interop tests.

Connects to 127.0.0.1:<port>, tokens framed with a 4-byte big-endian length, runs
spnego.client(user, password, hostname, service, protocol='credssp') and prints "DONE <version>" or "ERROR ...".
Environment: KRB5_CONFIG (the test realm); argv: port user password hostname service [minimum version].
"""
import socket
import struct
import sys

try:
    import spnego
except ImportError:
    # Connect and close so the Swift test's listener does not wait forever, then say why.
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10).close()
    print("MISSING pyspnego: pip install 'pyspnego[kerberos]'", flush=True)
    sys.exit(3)


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("peer closed")
        data += chunk
    return data


def main():
    port, user, password, hostname, service = sys.argv[1:6]
    options = {"credssp_min_protocol": int(sys.argv[6])} if len(sys.argv) > 6 else {}
    conn = socket.create_connection(("127.0.0.1", int(port)), timeout=60)
    ctx = spnego.client(user, password, hostname=hostname, service=service, protocol="credssp", **options)
    try:
        out = ctx.step()
        while True:
            conn.sendall(struct.pack(">I", len(out)) + out)
            if ctx.complete:
                break
            (length,) = struct.unpack(">I", recv_exact(conn, 4))
            out = ctx.step(recv_exact(conn, length)) or b""
        print("DONE %s" % ctx.get_extra_info("protocol_version"), flush=True)
    except Exception as e:
        print("ERROR %s: %s" % (type(e).__name__, e), flush=True)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
