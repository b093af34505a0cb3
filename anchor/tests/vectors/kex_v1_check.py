#!/usr/bin/env python3
"""Independent check of kex_v1.txt (ECDH and YAK over Bitcoin, version 1).

Recomputes every value of the vector file from its inputs alone (secret keys, sighashes,
txids, input indices, context, handshake nonces, w and v scalars), without the Rust code:
RFC 6979 nonces and ECDSA signatures, the even-y nonce convention, point arithmetic and the
Schnorr proofs in plain Python integers; every ECDH x coordinate (for ECDH and YAK, from
both sides) also through the `cryptography` package (OpenSSL), and HKDF-SHA256 from it too;
HMAC and SHA-256 from the standard library. Run: python3 anchor/tests/vectors/kex_v1_check.py
"""

import hashlib
import hmac
import pathlib
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


def add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return (x, (lam * (a[0] - x) - a[1]) % P)


def mul(k, point):
    result = None
    while k:
        if k & 1:
            result = add(result, point)
        point = add(point, point)
        k >>= 1
    return result


def enc(point):
    return bytes([2 + (point[1] & 1)]) + point[0].to_bytes(32, "big")


def b32(i):
    return i.to_bytes(32, "big")


def item(data):
    return len(data).to_bytes(4, "big") + data


def items(*parts):
    return b"".join(item(p) for p in parts)


def rfc6979_k(d, z):
    """RFC 6979 section 3.2 with HMAC-SHA256, for a 256-bit order (no extra data)."""
    x, h = b32(d), b32(int.from_bytes(z, "big") % N)
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        candidate = int.from_bytes(v, "big")
        if 1 <= candidate < N:
            return candidate
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def openssl_ecdh_x(secret, point):
    """x(secret·point) computed by OpenSSL through `cryptography`."""
    private = ec.derive_private_key(secret, ec.SECP256K1())
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), enc(point))
    return private.exchange(ec.ECDH(), public)


def hkdf(salt, ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def read_vectors(path):
    values, section = {}, ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line[1:-1]
            continue
        name, value = line.split(" = ", 1)
        values[f"{section}.{name}"] = value
    return values


def main():
    file = read_vectors(pathlib.Path(__file__).with_name("kex_v1.txt"))
    got = {}
    h = lambda name: bytes.fromhex(file[name])
    context = h("parties.context")
    got["parties.context"] = context

    parties = {}
    for role in ("initiator", "responder"):
        d = int(file[f"parties.{role}_secret_key"], 16)
        z = h(f"parties.{role}_sighash")
        k = rfc6979_k(d, z)
        big_r = mul(k, G)
        r = big_r[0] % N
        s = pow(k, -1, N) * (int.from_bytes(z, "big") + r * d) % N
        s = min(s, N - s)  # low-S
        k_even = k if big_r[1] % 2 == 0 else N - k
        nonce_point = mul(k_even, G)
        txid = file[f"parties.{role}_txid"]
        index = int(file[f"parties.{role}_input"])
        anchor = bytes.fromhex(txid)[::-1] + index.to_bytes(4, "little")
        identity = anchor + enc(nonce_point)
        parties[role] = (k_even, nonce_point, identity)
        for name, value in [
            ("secret_key", b32(d)), ("sighash", z), ("signature", b32(r) + b32(s)),
            ("nonce_secret", b32(k_even)), ("nonce_point", enc(nonce_point)),
            ("txid", txid), ("input", str(index)), ("anchor", anchor), ("identity", identity),
        ]:
            got[f"parties.{role}_{name}"] = value
    (k_i, r_i, id_i), (k_r, r_r, id_r) = parties["initiator"], parties["responder"]

    def schedule(section, label, shared_x, hello, reply_without_tag):
        transcript = items(label, context, id_i, id_r, hello, reply_without_tag)
        sid = hashlib.sha256(transcript).digest()
        session_key = hkdf(label, shared_x, items(b"milagro/kex/v1 session key", sid))
        confirm = hkdf(label, shared_x, items(b"milagro/kex/v1 confirmation key", sid))
        tag = lambda who: hmac.new(
            confirm, items(b"milagro/kex/v1 " + who + b" finished", sid), hashlib.sha256
        ).digest()
        tag_r, tag_i = tag(b"responder"), tag(b"initiator")
        for name, value in [
            ("transcript", transcript), ("session_id", sid), ("session_key", session_key),
            ("confirmation_key", confirm), ("responder_tag", tag_r),
            ("reply", reply_without_tag + tag_r), ("initiator_tag", tag_i),
        ]:
            got[f"{section}.{name}"] = value
        return tag_i

    # ECDH: x(k_I·R_Rs) = x(k_Rs·R_I), by OpenSSL and by hand.
    shared_x = openssl_ecdh_x(k_i, r_r)
    assert shared_x == openssl_ecdh_x(k_r, r_i) == b32(mul(k_i, r_r)[0])
    label = b"milagro/kex/ecdh/v1"
    pair_label = b"milagro/kex/ecdh-static/v1"
    low, high = sorted([id_i, id_r])
    pair_id = hashlib.sha256(items(pair_label, context, low, high)).digest()
    pair_key = hkdf(pair_label, shared_x, items(b"milagro/kex/v1 pair key", pair_id))
    nonce_i, nonce_r = h("ecdh.initiator_nonce"), h("ecdh.responder_nonce")
    hello = b"\x11" + nonce_i
    tag_i = schedule("ecdh", label, shared_x, hello, b"\x12" + nonce_r)
    for name, value in [
        ("shared_x", shared_x), ("pair_id", pair_id), ("pair_key", pair_key),
        ("initiator_nonce", nonce_i), ("responder_nonce", nonce_r), ("hello", hello),
        ("finished", b"\x13" + tag_i),
    ]:
        got[f"ecdh.{name}"] = value

    # YAK: RFC 8235 proofs, then x((k_I + w_I)·(R_Rs + W_Rs)).
    label = b"milagro/kex/yak/v1"

    def proof(role, prover_id, other_info):
        w = int(file[f"yak.{role}_w"], 16)
        v = int(file[f"yak.{role}_proof_v"], 16)
        big_w, big_v = mul(w, G), mul(v, G)
        c = int.from_bytes(
            hashlib.sha256(items(enc(G), enc(big_v), enc(big_w), prover_id, other_info)).digest(),
            "big",
        ) % N
        r = (v - c * w) % N
        assert add(mul(r, G), mul(c, big_w)) == big_v  # the verifier's equation
        for name, value in [
            ("w", b32(w)), ("ephemeral", enc(big_w)), ("proof_v", b32(v)),
            ("other_info", other_info), ("challenge", b32(c)), ("proof", enc(big_v) + b32(r)),
        ]:
            got[f"yak.{role}_{name}"] = value
        return w, big_w, enc(big_v) + b32(r)

    w_i, big_w_i, proof_i = proof("initiator", id_i, items(label, context, b"\x01", id_r))
    hello = b"\x21" + enc(big_w_i) + proof_i
    w_r, big_w_r, proof_r = proof("responder", id_r, items(label, context, b"\x02", id_i, hello))
    shared_x = openssl_ecdh_x((k_i + w_i) % N, add(r_r, big_w_r))
    assert shared_x == openssl_ecdh_x((k_r + w_r) % N, add(r_i, big_w_i))
    tag_i = schedule("yak", label, shared_x, hello, b"\x22" + enc(big_w_r) + proof_r)
    got["yak.hello"] = hello
    got["yak.shared_x"] = shared_x
    got["yak.finished"] = b"\x23" + tag_i

    got = {k: v if isinstance(v, str) else v.hex() for k, v in got.items()}
    wrong = [k for k in file if got.get(k) != file[k]] + [k for k in got if k not in file]
    if wrong:
        sys.exit(f"mismatch: {wrong}")
    print(f"all {len(file)} values of kex_v1.txt reproduced independently")


if __name__ == "__main__":
    main()
