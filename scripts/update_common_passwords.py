"""Regenerate src/silver_auth/accounts/data/common-passwords.txt (ASVS 5.0 V6.2: refuse common passwords).

Source: the ranked `passwords` frequency list of the `zxcvbn` package on PyPI (MIT licence,
Copyright (c) 2016 Daniel Wolf; the list itself comes from Dropbox's zxcvbn, also MIT). It is only
needed to regenerate the file, never at run time, so it is not a dependency of the service:

    python3 -m venv /tmp/zx && /tmp/zx/bin/pip install zxcvbn==4.5.0
    /tmp/zx/bin/python scripts/update_common_passwords.py
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-not-found]

COUNT = 10_000
TARGET = Path(__file__).resolve().parent.parent / "src/silver_auth/accounts/data/common-passwords.txt"


def main() -> None:
    seen: dict[str, None] = {}
    for word in FREQUENCY_LISTS["passwords"]:  # most common first
        seen.setdefault(word.strip().lower(), None)
        if len(seen) == COUNT:
            break
    header = [
        f"# The {COUNT:,} most common passwords, most common first, lower-cased",
        f"# Source: zxcvbn {version('zxcvbn')} (PyPI), frequency list `passwords`; MIT licence,",
        "# Copyright (c) 2016 Daniel Wolf, list from Dropbox's zxcvbn (MIT).",
        "# Regenerate with scripts/update_common_passwords.py; do not edit by hand.",
    ]
    TARGET.write_text("\n".join([*header, *seen]) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {len(seen)} passwords to {TARGET}\n")


if __name__ == "__main__":
    main()
