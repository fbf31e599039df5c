#!/usr/bin/python3
"""Write the scenario key reference (`ablasim keys --markdown`, read from stdin) into README.md
between the markers <!-- keys:begin ... --> and <!-- keys:end -->. Used by `make readme-keys`;
the README text outside the markers is left as it is. The config test suite fails when the
section differs from the declarations in the code."""
import os
import sys

BEGIN = "<!-- keys:begin"
END = "<!-- keys:end -->"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ablasim keys --markdown | readme_keys.py README.md")
    path = sys.argv[1]
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
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print(f"{path}: scenario key reference rewritten")
    else:
        print(f"{path}: scenario key reference up to date")


if __name__ == "__main__":
    main()
