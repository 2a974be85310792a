#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-xpi.py OUTPUT SOURCE_DIR VERSION FILE...: pack the add-on's FILEs (paths under
SOURCE_DIR) into the .xpi OUTPUT, a zip with manifest.json first and the project VERSION set in
it. The zip is reproducible: fixed dates and order, so a rebuild gives the same bytes."""
import json
import os
import sys
import zipfile

DATE = (2020, 1, 1, 0, 0, 0)


def main():
    out, source, version, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    names = sorted(os.path.relpath(os.path.abspath(f), os.path.abspath(source)) for f in files)
    if "manifest.json" not in names:
        sys.exit("make-xpi.py: manifest.json is not among the files")
    with open(os.path.join(source, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    manifest["version"] = version
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        entries = [("manifest.json", json.dumps(manifest, indent=2).encode() + b"\n")]
        for name in names:
            if name == "manifest.json":
                continue
            if name.startswith(".."):
                sys.exit(f"make-xpi.py: {name} is not under {source}")
            with open(os.path.join(source, name), "rb") as f:
                entries.append((name, f.read()))
        for name, data in entries:
            info = zipfile.ZipInfo(name, DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
