"""Writes a cargo-mutants configuration that tests exactly the mutants
listed on standard input (names as `cargo mutants --list` prints them),
with the rest of .cargo/mutants.toml: one run of cargo-mutants can then
test the union of several selections (.ci/run: the changed files and a
shard)."""
import json
import re
import sys
import tomllib

with open(".cargo/mutants.toml", "rb") as f:
    config = tomllib.load(f)
names = sorted({line.strip() for line in sys.stdin if line.strip()})
if not names:
    sys.exit("mutants-config: no mutant selected")
# A name matched exactly: every regex metacharacter escaped, spaces kept.
config["examine_re"] = ["^" + re.sub(r"([\\.+*?()|\[\]{}^$#&\-~])", r"\\\1", n) + "$" for n in names]
for key, value in config.items():
    if isinstance(value, list):
        print(f"{key} = [")
        for item in value:
            print(f"    {json.dumps(item)},")
        print("]")
    else:
        print(f"{key} = {json.dumps(value)}")
