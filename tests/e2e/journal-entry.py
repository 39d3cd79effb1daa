#!/usr/bin/python3
"""usage: journal-entry.py UNIT FIELD=VALUE...

Print the newest entry of ``journalctl -u UNIT`` whose fields equal every FIELD=VALUE
(compared as bytes, so a path that is not UTF-8, which ``journalctl -o json`` shows as an
array of byte values, compares exactly); exit 0 if there is one, 1 if not.
Filtering happens here rather than in journalctl so every field, binary ones too, is exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def value(raw: object) -> bytes:
    # journalctl -o json: a string, an array of byte values (binary), or null (too large).
    if isinstance(raw, list):
        return bytes(raw)
    return str(raw).encode()


def main(argv: list[str]) -> int:
    unit, wanted = argv[0], [os.fsencode(a).split(b"=", 1) for a in argv[1:]]
    out = subprocess.run(
        ["journalctl", "--no-pager", "-u", unit, "-o", "json"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    found = None
    for line in out.splitlines():
        entry = json.loads(line)
        fields = {k.encode(): value(v) for k, v in entry.items()}
        if all(fields.get(k) == v for k, v in wanted):
            found = entry
    if found is None:
        return 1
    shown = {k: v for k, v in found.items() if not k.startswith("__") and k != "_CMDLINE"}
    print(json.dumps(shown, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
