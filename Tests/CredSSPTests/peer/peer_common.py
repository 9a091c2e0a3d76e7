"""Shared helpers for the pyspnego CredSSP peers: framing, options that emulate old or hostile peers, errors."""
import argparse
import struct

import spnego
from spnego import _credssp


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("peer closed")
        data += chunk
    return data


def send_frame(conn, data):
    conn.sendall(struct.pack(">I", len(data)) + data)


def recv_frame(conn):
    (length,) = struct.unpack(">I", recv_exact(conn, 4))
    return recv_exact(conn, length)


def run_client(conn, ctx):
    """Drives a CredSSP client context over framed `conn` until it has sent its last token."""
    out = ctx.step()
    while True:
        send_frame(conn, out)
        if ctx.complete:
            return
        out = ctx.step(recv_frame(conn)) or b""


def run_server(conn, ctx):
    """Drives a CredSSP server context over framed `conn`; returns the delegated TSPasswordCreds."""
    while not ctx.complete:
        out = ctx.step(recv_frame(conn))
        if ctx.complete and not out:
            break
        send_frame(conn, out or b"")
    if ctx._ts_credential is None:
        # pyspnego's acceptor returns (complete) after sending errorCode for an inner failure.
        raise RuntimeError("authentication failed; errorCode sent to the client")
    return ctx._ts_credential.credentials


def add_options(parser: argparse.ArgumentParser):
    parser.add_argument("--announce", type=int, help="announce this CredSSP version (an older peer)")
    parser.add_argument("--tamper", action="store_true", help="corrupt the pubKeyAuth this side sends")


def apply_options(args, usage):
    """Patches pyspnego's CredSSP module: the announced version and, with --tamper, the binding this side
    (usage 'initiate' for a client, 'accept' for a server) sends."""
    if args.announce:
        _credssp._CREDSSP_VERSION = args.announce
    if args.tamper:
        original = _credssp._get_pub_key_auth

        def tampered(pub_key, direction, nonce=None):
            value = original(pub_key, direction, nonce=nonce)
            return bytes([value[0] ^ 0xFF]) + value[1:] if direction == usage else value

        _credssp._get_pub_key_auth = tampered


def describe(e):
    """'ERROR <type> <status>: message', status the SSPI code in hex: the errorCode a peer sent (winerror of the
    base error), else the code pyspnego maps its error to."""
    status = getattr(getattr(e, "base_error", None), "winerror", None)
    if not isinstance(status, int):
        status = getattr(e, "nt_status", None)
    code = "0x%08X" % (status & 0xFFFFFFFF) if isinstance(status, int) else "-"
    return "ERROR %s %s: %s" % (type(e).__name__, code, e)
