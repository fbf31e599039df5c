#!/usr/bin/python3
"""Write a key reference read from stdin into a Markdown file between the markers
<!-- NAME:begin ... --> and <!-- NAME:end -->: the scenario keys (`ablasim keys --markdown`,
README.md, NAME keys), the plan file keys (`ablasim keys --plan`, docs/PLANNING.md, NAME
plan-keys), the sweep file keys (`ablasim keys --sweep`, docs/SWEEPS.md, NAME sweep-keys) or a
source type's keys (`ablasim keys --source rfa`, docs/RFA.md, NAME rfa-keys; likewise mwa,
cryo). Used by `make readme-keys`; the text outside the markers is left as it is. The config and
plan test suites fail when a section differs from the declarations in the code.

usage: ablasim keys --markdown | readme_keys.py README.md [NAME]"""
import os
import sys
import ablasim_io  # atomic, symlink-safe writes (beside this script)

def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: ablasim keys --markdown | readme_keys.py README.md [NAME]")
    path = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) == 3 else "keys"
    BEGIN = f"<!-- {name}:begin"
    END = f"<!-- {name}:end -->"
    table = sys.stdin.read()
    if not table.startswith("| key |"):
        sys.exit("readme_keys.py: stdin is not the key reference (ablasim keys --markdown)")
    lines = open(path, encoding="utf-8").read().split("\n")
    begin = [i for i, l in enumerate(lines) if l.startswith(BEGIN)]
    end = [i for i, l in enumerate(lines) if l.strip() == END]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        sys.exit(f"readme_keys.py: {path} needs one '{BEGIN} ...' line, then one '{END}' line")
    new = lines[: begin[0] + 1] + [""] + table.rstrip("\n").split("\n") + [""] + lines[end[0] :]
    text = "\n".join(new)
    if text != "\n".join(lines):
        ablasim_io.write_text(path, text)
        print(f"{path}: {name} reference rewritten")
    else:
        print(f"{path}: {name} reference up to date")


if __name__ == "__main__":
    main()
