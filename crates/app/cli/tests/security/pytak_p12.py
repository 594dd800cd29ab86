"""pytak connects to cot-tls with a PKCS#12 bundle and sends one event.

Usage: pytak_p12.py HOST:PORT BUNDLE.p12 PASSWORD CA.crt UID

pytak's own TLS setup reads the bundle (PYTAK_TLS_CLIENT_CERT + PYTAK_TLS_CLIENT_PASSWORD)
and verifies the server against the CA (PYTAK_TLS_CLIENT_CAFILE, host name checked). Exits
non-zero if the bundle does not open or the server refuses the connection.
"""

import asyncio
import sys
from configparser import ConfigParser

import pytak


async def main():
    addr, p12, password, ca, uid = sys.argv[1:6]
    parser = ConfigParser(interpolation=None)
    parser["client"] = {
        "COT_URL": f"tls://{addr}",
        "PYTAK_TLS_CLIENT_CERT": p12,
        "PYTAK_TLS_CLIENT_PASSWORD": password,
        "PYTAK_TLS_CLIENT_CAFILE": ca,
    }
    reader, writer = await pytak.protocol_factory(parser["client"])
    # The server offers TAK protocol v1 to every client it accepts; a refused client
    # certificate ends the connection instead.
    offer = await asyncio.wait_for(reader.read(4096), 10)
    if not offer:
        raise SystemExit("the server closed the connection")
    writer.write(pytak.gen_cot(lat=51.5, lon=-0.12, uid=uid, cot_type="a-f-G-U-C"))
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()


if __name__ == "__main__":
    asyncio.run(main())
