"""pyspnego CredSSP server for the Swift interop tests.

Listens on 127.0.0.1 (ephemeral port, printed as "PORT <n>"), takes one connection whose tokens are framed
with a 4-byte big-endian length, runs spnego.server(protocol='credssp') and prints the delegated
credentials as one JSON line ("RESULT {...}") or the failure ("ERROR <type> <status>: ...").
Environment: KRB5_CONFIG, KRB5_KTNAME (the service keytab), NTLM_USER_FILE (NTLM users).
argv: hostname service [--announce N] [--tamper]
"""
import argparse
import json
import socket

try:
    import peer_common
    import spnego
except ImportError:
    print("MISSING pyspnego: pip install 'pyspnego[kerberos]'", flush=True)
    raise SystemExit(3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("hostname")
    parser.add_argument("service")
    peer_common.add_options(parser)
    args = parser.parse_args()
    peer_common.apply_options(args, "accept")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(60)
    print("PORT %d" % listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.settimeout(60)
    ctx = spnego.server(hostname=args.hostname, service=args.service, protocol="credssp")
    try:
        creds = peer_common.run_server(conn, ctx)
        print("RESULT " + json.dumps({"domain": creds.domain_name, "user": creds.username,
                                      "password": creds.password,
                                      "version": ctx.get_extra_info("protocol_version")}), flush=True)
    except Exception as e:  # report, the Swift test asserts on it
        print(peer_common.describe(e), flush=True)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
