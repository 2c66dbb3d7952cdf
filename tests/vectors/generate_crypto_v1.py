#!/usr/bin/env python3
"""Write the golden vectors of ciphertext format version 1 (src/crypto).

This is an implementation of the format separate from the Rust one, written
from the format description in the `src/crypto/mod.rs` module header, so the
Rust tests check the code against the description and not only against
itself. It needs the `cryptography` package. The tests read the files that it
wrote; they never run it. Run it again only when adding vectors, and check that
the existing values stay unchanged.

Usage: python3 tests/vectors/generate_crypto_v1.py
"""

import base64
import hashlib
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEGMENT_LEN = 65536
FORMAT_VERSION = 1
# Ciphertexts up to this length are written inline as hex, longer ones to a
# .bin file next to the manifest.
INLINE_MAX = 64

DATA_KEY = bytes(range(0x00, 0x20))
KEK = bytes(range(0x40, 0x60))
KEK_NAME = "vector-kek"
KEK_VERSION = 3
BUCKET = "vector-bucket"
OBJECT_KEY = "dir/object name.bin"
WRAP_NONCE = bytes(range(0xA0, 0xAC))

# (name, part number, plaintext length)
VECTORS = [
    ("empty", 0, 0),
    ("one-byte", 0, 1),
    ("one-segment", 0, SEGMENT_LEN),
    ("two-segments", 0, SEGMENT_LEN + 1 + 100),
    ("part-2", 2, 17),
]


def hkdf(info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(DATA_KEY)


def plaintext(length: int) -> bytes:
    return bytes(i % 251 for i in range(length))


def encrypt(part: int, data: bytes) -> bytes:
    cipher = AESGCM(hkdf(b"s3seal/v1/segment-key"))
    segments = [data[i : i + SEGMENT_LEN] for i in range(0, len(data), SEGMENT_LEN)] or [b""]
    sealed = []
    for index, segment in enumerate(segments):
        is_final = index == len(segments) - 1
        nonce = struct.pack(">II", part, index) + b"\x00\x00\x00" + bytes([int(is_final)])
        sealed.append(cipher.encrypt(nonce, segment, None))
    return b"".join(sealed)


def length_prefixed(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def wrap_aad() -> bytes:
    fields = [
        struct.pack(">I", FORMAT_VERSION),
        KEK_NAME.encode(),
        struct.pack(">I", KEK_VERSION),
        BUCKET.encode(),
        OBJECT_KEY.encode(),
    ]
    return b"s3seal/v1/wrap" + b"".join(length_prefixed(field) for field in fields)


def main() -> None:
    directory = Path(__file__).parent
    aad = wrap_aad()
    wrapped_key = WRAP_NONCE + AESGCM(KEK).encrypt(WRAP_NONCE, DATA_KEY, aad)
    commitment = hkdf(b"s3seal/v1/commitment")

    lines = [
        "# Golden vectors of s3seal ciphertext format version 1, written by",
        "# generate_crypto_v1.py. Plaintext byte i is i % 251.",
        "",
        f"data-key = {DATA_KEY.hex()}",
        f"segment-key = {hkdf(b's3seal/v1/segment-key').hex()}",
        f"kek = {KEK.hex()}",
        f"kek-name = {KEK_NAME}",
        f"kek-version = {KEK_VERSION}",
        f"bucket = {BUCKET}",
        f"object-key = {OBJECT_KEY}",
        f"wrap-nonce = {WRAP_NONCE.hex()}",
        f"wrap-aad = {aad.hex()}",
        f"envelope.format = {FORMAT_VERSION}",
        f"envelope.kek = {KEK_NAME}",
        f"envelope.kek-version = {KEK_VERSION}",
        f"envelope.wrapped-key = {base64.b64encode(wrapped_key).decode()}",
        f"envelope.commitment = {base64.b64encode(commitment).decode()}",
    ]

    for name, part, length in VECTORS:
        ciphertext = encrypt(part, plaintext(length))
        lines += [
            "",
            f"[{name}]",
            f"part = {part}",
            f"plaintext-len = {length}",
            f"ciphertext-len = {len(ciphertext)}",
            f"ciphertext-sha256 = {hashlib.sha256(ciphertext).hexdigest()}",
        ]
        if len(ciphertext) <= INLINE_MAX:
            lines.append(f"ciphertext-hex = {ciphertext.hex()}")
        else:
            file_name = f"crypto-v1-{name}.bin"
            (directory / file_name).write_bytes(ciphertext)
            lines.append(f"ciphertext-file = {file_name}")

    (directory / "crypto-v1.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
