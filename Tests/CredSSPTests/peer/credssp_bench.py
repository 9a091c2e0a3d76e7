"""pyspnego's own CredSSP client and server against each other over loopback TCP, for `migauth-bench credssp`.

Runs N full exchanges one after the other (a new TCP connection, client context and server context each time;
the server in a thread of this process), Kerberos inside SPNEGO with the client's tickets from a ccache, and
prints "EXCHANGES <n> SECONDS <s> TLS <version> CPU <process CPU seconds>". Each side reuses one TLS context (pyspnego's
`credssp_tls_context`), pyspnego's fastest configuration. With a 7th argument "memory", client and server step
each other directly in one thread (no sockets).
Environment: KRB5_CONFIG, KRB5_KTNAME (service keytab).
argv: exchanges hostname service user password ccache [memory]
"""
import socket
import sys
import threading
import time

import spnego
from spnego import _credssp

import peer_common


def serve(listener, count, hostname, service, tls_context, errors):
    for _ in range(count):
        conn, _ = listener.accept()
        try:
            ctx = spnego.server(hostname=hostname, service=service, protocol="credssp",
                                credssp_tls_context=tls_context)
            peer_common.run_server(conn, ctx)
        except Exception as e:
            errors.append(e)
        finally:
            conn.close()


def in_memory(count, hostname, service, credentials):
    server_tls = _credssp._create_tls_context("accept")
    client_tls = _credssp._create_tls_context("initiate")
    version = None
    start = time.perf_counter()
    for _ in range(count):
        client = spnego.client(credentials, hostname=hostname, service=service, protocol="credssp",
                               credssp_tls_context=client_tls)
        server = spnego.server(hostname=hostname, service=service, protocol="credssp", credssp_tls_context=server_tls)
        token = client.step()
        while True:
            answer = server.step(token)
            if client.complete:
                break
            token = client.step(answer or b"")
        if server._ts_credential is None:
            raise RuntimeError("no credentials")
        version = client._tls_object.version()
    return time.perf_counter() - start, version


def main():
    count, hostname, service, user, password, ccache = int(sys.argv[1]), *sys.argv[2:7]
    if len(sys.argv) > 7 and sys.argv[7] == "memory":
        credentials = [spnego.KerberosCCache(ccache=ccache), spnego.Password(user, password)]
        cpu = time.process_time()
        elapsed, version = in_memory(count, hostname, service, credentials)
        print("EXCHANGES %d SECONDS %.6f TLS %s CPU %.6f" % (count, elapsed, version, time.process_time() - cpu), flush=True)
        return
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    errors = []
    server_tls = _credssp._create_tls_context("accept")
    client_tls = _credssp._create_tls_context("initiate")
    thread = threading.Thread(target=serve, args=(listener, count, hostname, service, server_tls, errors))
    thread.start()
    credentials = [spnego.KerberosCCache(ccache=ccache), spnego.Password(user, password)]
    version = None
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port))
        ctx = spnego.client(credentials, hostname=hostname, service=service, protocol="credssp",
                            credssp_tls_context=client_tls)
        peer_common.run_client(conn, ctx)
        version = ctx._tls_object.version()
        conn.close()
    thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        print(peer_common.describe(errors[0]), flush=True)
        sys.exit(1)
    print("EXCHANGES %d SECONDS %.6f TLS %s CPU %.6f" % (count, elapsed, version, time.process_time() - cpu), flush=True)


if __name__ == "__main__":
    main()
