"""pyspnego CredSSP server for the Swift interop tests.

Listens on 127.0.0.1 (ephemeral port, printed as "PORT <n>"), takes one connection whose tokens are framed
with a 4-byte big-endian length, runs spnego.server(protocol='credssp') and prints the delegated
credentials as one JSON line ("RESULT {...}") or the failure ("ERROR ...").
Environment: KRB5_CONFIG, KRB5_KTNAME (the service keytab); argv: hostname service.
"""
import json
import socket
import struct
import sys

try:
    import spnego
except ImportError:
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
    hostname, service = sys.argv[1], sys.argv[2]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(60)
    print("PORT %d" % listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.settimeout(60)
    ctx = spnego.server(hostname=hostname, service=service, protocol="credssp")
    try:
        while not ctx.complete:
            (length,) = struct.unpack(">I", recv_exact(conn, 4))
            token = recv_exact(conn, length)
            out = ctx.step(token)
            if ctx.complete and not out:
                break
            out = out or b""
            conn.sendall(struct.pack(">I", len(out)) + out)
        creds = ctx._ts_credential.credentials
        print("RESULT " + json.dumps({"domain": creds.domain_name, "user": creds.username,
                                      "password": creds.password,
                                      "version": ctx.get_extra_info("protocol_version")}), flush=True)
    except Exception as e:  # report, the Swift test asserts on it
        print("ERROR %s: %s" % (type(e).__name__, e), flush=True)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
