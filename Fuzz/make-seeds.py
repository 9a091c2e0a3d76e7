#!/usr/bin/env python3
# Writes the hand-made seeds of Fuzz/corpus (docs/fuzzing.md): well-formed wire messages and frames
# (docs/wire-protocol.md), CredSSP DER (MS-CSSP 2.2.1) and X.224 PDUs, and RFC 4121 control bytes. The
# fuzzer's own finds are merged in with `-merge=1`; the text formats' seeds are copies of fixtures.
import os, struct, zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)

def s16(text):
    b = text.encode()
    return struct.pack(">H", len(b)) + b

MAGIC = b"MIGA"
mid = bytes(range(16))
sha = bytes(range(32, 64))
messages = {
    "hello": b"\x01" + MAGIC + struct.pack(">HHBB", 1, 2, 1, 1),
    "hello-credssp": b"\x01" + MAGIC + struct.pack(">HHBB", 1, 2, 2, 2),
    "hello-ack": b"\x02" + MAGIC + struct.pack(">HB", 1, 1),
    "hello-ack-v2": b"\x02" + MAGIC + struct.pack(">HBB", 2, 1, 2) + b"\x02\x01" + bytes(16),
    "suites": b"\x07" + bytes([2, 2, 2, 1]) + bytes(16) + mid + b"\x00",
    "token": b"\x03" + b"\x60\x82\x01\x00" + bytes(12),
    "credssp": b"\x06" + b"\x30\x03\x02\x01\x06",
    "auth-result": b"\x04" + s16("alice@CONTOSO.COM") + s16("Microsoft Virtual System Migration Service/hv02"),
    "sealed": b"\x05" + b"\x05\x04\x06\xff" + bytes(12) + bytes(28),
    "error": b"\x0f" + struct.pack(">IBB", 0x8009030E, 2, 1) + s16("No credentials are available") + s16("m") + s16("d"),
    "offer-v1": b"\x10" + mid + s16("vm1") + struct.pack(">Q", 4096) + sha + bytes([0, 1]) + struct.pack(">I", 1 << 20),
    "offer-v2": b"\x10" + mid + s16("vm1") + struct.pack(">Q", 4096) + sha + bytes([1, 2]) + struct.pack(">I", 1 << 20)
                + b"\x00" + s16("2019"),
    "join": b"\x11" + mid + b"\x01",
    "queued": b"\x12" + struct.pack(">I", 1),
    "ready": b"\x13", "commit": b"\x16", "committed": b"\x17", "sign-off": b"\x23",
    "chunk-raw": b"\x14" + struct.pack(">IQIB", 0, 0, 8, 0) + b"ABCDEFGH",
    "chunk-zlib": b"\x14" + struct.pack(">IQIB", 0, 0, 64, 1) + zlib.compress(b"A" * 64, 1),
    # zstd frame of 64 x "A" (single segment, content size 64): magic, FHD, size, an RLE block.
    "chunk-zstd": b"\x14" + struct.pack(">IQIB", 1, 64, 64, 2) + bytes.fromhex("28b52ffd2040") + bytes([0x03, 0x02, 0x00]) + b"A",
    "channel-done": b"\x15" + struct.pack(">IQ", 1, 8),
    "move-request": b"\x20" + s16("vm1") + s16("hv02") + s16("127.0.0.1") + struct.pack(">HBB", 6600, 1, 2),
    "progress": b"\x21" + struct.pack(">QQ", 1, 2),
    "move-result": b"\x22" + s16("vm1") + struct.pack(">Q", 4096) + s16(sha.hex()) + s16("hv02$@CONTOSO.COM")
                   + struct.pack(">BBI", 0, 1, 0),
}
for name, body in messages.items():
    put("FuzzWireMessage", name, body)
# Frames: the first byte is the fuzzer's read size, then length-prefixed frames as on the wire.
def frames(*bodies):
    return b"".join(struct.pack(">I", len(b)) + b for b in bodies)
put("FuzzFrames", "handshake", b"\x07" + frames(messages["hello"], messages["token"], messages["auth-result"]))
put("FuzzFrames", "move", b"\x00" + frames(messages["offer-v2"], messages["chunk-raw"], messages["channel-done"],
                                            messages["commit"]))
put("FuzzFrames", "limit", b"\xff\x01" + frames(messages["error"]) + struct.pack(">I", 70000) + b"x" * 16)
put("FuzzFrames", "truncated", b"\x03" + frames(messages["hello"]) + struct.pack(">I", 100) + b"partial")

# DER (MS-CSSP): TSRequest, NegoData, TSCredentials, TSPasswordCreds.
def der(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82, n >> 8, n & 0xFF])
    return bytes([tag]) + length + content

def integer(v):
    return der(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))

def ctx(n, content):
    return der(0xA0 + n, content)

def octets(b):
    return der(0x04, b)

def seq(*parts):
    return der(0x30, b"".join(parts))

nego = seq(seq(ctx(0, octets(b"\x60\x82" + bytes(30)))))
put("FuzzTSRequest", "tsrequest-nego", seq(ctx(0, integer(6)), ctx(1, nego), ctx(5, octets(bytes(32)))))
put("FuzzTSRequest", "tsrequest-pubkey", seq(ctx(0, integer(6)), ctx(3, octets(bytes(48)))))
put("FuzzTSRequest", "tsrequest-error", seq(ctx(0, integer(3)), ctx(4, integer(-2146893044))))
put("FuzzTSRequest", "tsrequest-authinfo", seq(ctx(0, integer(2)), ctx(2, octets(bytes(64)))))
utf16 = lambda s: s.encode("utf-16-le")
password = seq(ctx(0, octets(utf16("CONTOSO"))), ctx(1, octets(utf16("alice"))), ctx(2, octets(utf16("x"))))
put("FuzzTSRequest", "tspasswordcreds", password)
put("FuzzTSRequest", "tscredentials", seq(ctx(0, integer(1)), ctx(1, octets(password))))
put("FuzzTSRequest", "negodata", nego)
# X.224 Connection Request (cookie + RDP_NEG_REQ) and Confirm (RDP_NEG_RSP).
def tpdu(code, variable):
    x224 = bytes([6 + len(variable), code, 0, 0, 0, 0, 0]) + variable
    return bytes([3, 0]) + struct.pack(">H", 4 + len(x224)) + x224
put("FuzzTSRequest", "x224-request", tpdu(0xE0, b"Cookie: mstshash=alice\r\n" + bytes([1, 0, 8, 0, 3, 0, 0, 0])))
put("FuzzTSRequest", "x224-confirm", tpdu(0xD0, bytes([2, 0, 8, 0, 2, 0, 0, 0])))

# RFC 4121: the control byte (enctype, subkey, mode, confidentiality) and a message or token.
for control in range(0, 64, 3):
    put("FuzzRFC4121", f"control-{control:02x}", bytes([control]) + b"migration stream chunk"[: control % 23])
# A Wrap token header (TOK_ID 05 04, flags, filler, EC, RRC, SND_SEQ) and a MIC header (04 04).
put("FuzzRFC4121", "wrap-header", b"\x00" + bytes.fromhex("0504 02 ff 0000 001c 0000000000000007") + bytes(44))
put("FuzzRFC4121", "mic-header", b"\x10" + bytes.fromhex("0404 02 ffffffffff 0000000000000007") + bytes(12))
