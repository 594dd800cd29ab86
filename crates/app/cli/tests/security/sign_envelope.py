"""Signs a datagram into a Rampart RSG1 envelope with Python `cryptography`, as a radio
gateway would, and writes the envelope to stdout.

Usage: sign_envelope.py DEVICE.sign.key KEY_ID SEQ PAYLOAD
"""

import struct
import sys
import time

from cryptography.hazmat.primitives.serialization import load_pem_private_key


def main():
    key_file, key_id, seq, payload = sys.argv[1:5]
    with open(key_file, "rb") as f:
        key = load_pem_private_key(f.read(), password=None)
    kid = key_id.encode()
    signed = (
        b"RSG1"
        + bytes([len(kid)])
        + kid
        + struct.pack(">Qq", int(seq), int(time.time() * 1000))
        + payload.encode()
    )
    sys.stdout.buffer.write(signed + key.sign(signed))


if __name__ == "__main__":
    main()
