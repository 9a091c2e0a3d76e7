"""pyspnego CredSSP client for the Swift interop tests.

Connects to 127.0.0.1:<port>, tokens framed with a 4-byte big-endian length, runs
spnego.client(user, password, hostname, service, protocol='credssp') and prints "DONE <version>" or
"ERROR <type> <status>: ...". Environment: KRB5_CONFIG (the test realm).
argv: port user password hostname service [--min N] [--announce N] [--tamper]
"""
import argparse
import socket
import sys

try:
    import peer_common
    import spnego
except ImportError:
    # Connect and close so the Swift test's listener does not wait forever, then say why.
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10).close()
    print("MISSING pyspnego: pip install 'pyspnego[kerberos]'", flush=True)
    sys.exit(3)


def main():
    parser = argparse.ArgumentParser()
    for name in ("port", "user", "password", "hostname", "service"):
        parser.add_argument(name)
    parser.add_argument("--min", type=int, help="credssp_min_protocol")
    peer_common.add_options(parser)
    args = parser.parse_args()
    peer_common.apply_options(args, "initiate")
    options = {"credssp_min_protocol": args.min} if args.min else {}
    conn = socket.create_connection(("127.0.0.1", int(args.port)), timeout=60)
    try:
        ctx = spnego.client(args.user, args.password, hostname=args.hostname, service=args.service,
                            protocol="credssp", **options)
        peer_common.run_client(conn, ctx)
        print("DONE %s" % ctx.get_extra_info("protocol_version"), flush=True)
    except Exception as e:
        print(peer_common.describe(e), flush=True)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
