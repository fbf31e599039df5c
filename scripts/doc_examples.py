#!/usr/bin/python3
"""doc_examples.py - run every shell example in README.md and docs/*.md (make check-docs).

    scripts/doc_examples.py                 run them all (what `make check` does)
    scripts/doc_examples.py docs/SWEEPS.md  only these files
    scripts/doc_examples.py --list          list the examples and skips, run nothing
    scripts/doc_examples.py --keep          keep the scratch copies (path printed)

Which blocks are examples
  - A fenced block (``` or ~~~) whose info string starts with sh, bash, shell or console is
    run. sh/bash/shell: the whole block is a bash script. console: lines starting with "$ " are
    the commands (with their backslash continuation lines); every other line is output and
    ignored.
  - Every other fenced block (yaml, c, text, ...) is not run. An UNLABELLED fenced block, or an
    indented (4-space) code block, whose first line looks like a command (bin/..., build/...,
    scripts/..., ./..., make, ablasim, python3, mpirun, sbatch, h5dump, h5diff, h5ls, cd,
    mkdir, export, NAME=value or "$ ") is an error: label it ```sh to run it, or ```text if it
    is not a command. So no example is silently left out.
  - The last non-blank line before the fence may be <!-- doc-examples: skip (REASON) -->: the
    block is then only syntax-checked (bash -n) and reported as skipped with its reason. Any other
    <!-- doc-examples: ... --> comment, or a skip without a reason or without a block under
    it, is an error.

How they run
  - Each Markdown file gets a fresh scratch copy of the working tree (the files git tracks plus
    untracked, not ignored ones, and the built bin/ and build/rel/ with their time stamps, so
    `make` in the copy is up to date) under $TMPDIR; nothing is written into the tree itself.
    The copy is removed afterwards unless the file failed or --keep is given. (Without git,
    e.g. in an unpacked tarball, every file but .git/, out/, build/ and bin/ is copied.)
  - The blocks of one file run in order in that copy, each as its own `bash` (set -e,
    pipefail) started in the copy's root: a block sees the files earlier blocks of the same
    file wrote, not their shell variables or `cd`.
  - stdin is /dev/null. The environment is the caller's without make's variables (MAKEFLAGS,
    MFLAGS, MAKELEVEL, MAKEOVERRIDES) and without ABLASIM_* (the tests' variables), as in a
    user's shell; OMP_WAIT_POLICY=passive is added unless set (spinning OpenMP threads on a
    shared 2-core machine cost wall time; results never depend on it).
  - A block that fails stops its file: the report names FILE:LINE of the failing command, the
    command, its exit status and the last lines of the block's output. A block that runs
    longer than --timeout seconds (default 120) fails the same way.

Exit status: 0 all examples passed, 1 an example failed, 2 a malformed block or marker.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SHELL_LANGS = ("sh", "bash", "shell", "console")
FENCE_RE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)")
MARKER_RE = re.compile(r"^\s*<!--\s*doc-examples:(.*?)-->\s*$")
SKIP_RE = re.compile(r"^\s*skip\s*\((.+)\)\s*$")
COMMAND_RE = re.compile(
    r"^(\$ |(bin|build|scripts|\.)/|(make|ablasim|python3?|mpirun|sbatch|h5dump|h5diff|h5ls|"
    r"cd|mkdir|export)(\s|$)|[A-Za-z_][A-Za-z0-9_]*=)")
LIST_RE = re.compile(r"^\s*([-*+]|\d+[.)])\s")
DROP_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR")
OUTPUT_TAIL = 60


class Block:
    def __init__(self, path, line, lang, lines, skip):
        self.path = path        # Markdown file, relative to the root
        self.line = line        # line number of the first content line (1-based)
        self.lang = lang
        self.lines = lines      # content lines, without the fences
        self.skip = skip        # reason, or None

    def where(self, i=0):
        return "%s:%d" % (self.path, self.line + i)

    def script(self):
        """bash text with one line per block line, so $LINENO maps back to the document."""
        if self.lang != "console":
            return "\n".join(self.lines) + "\n"
        out, cont = [], False
        for ln in self.lines:
            if ln.startswith("$ ") or (cont and ln.strip()):
                body = ln[2:] if ln.startswith("$ ") and not cont else ln
                out.append(body)
                cont = body.rstrip().endswith("\\")
            else:
                out.append("")
                cont = False
        return "\n".join(out) + "\n"


def looks_like_command(lines):
    for ln in lines:
        s = ln.strip()
        if s:
            return bool(COMMAND_RE.match(s))
    return False


def parse(root, rel):
    """Shell blocks of one Markdown file, and the errors found in it."""
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        text = f.read().split("\n")
    blocks, errors = [], []
    pending = None          # (line, reason) of a skip marker waiting for its block
    i, n = 0, len(text)
    prev_blank, prev_list = True, False
    while i < n:
        ln = text[i]
        m = FENCE_RE.match(ln)
        mk = MARKER_RE.match(ln)
        if mk:
            if pending:
                errors.append("%s:%d: doc-examples marker without a shell block under it"
                              % (rel, pending[0]))
            sk = SKIP_RE.match(mk.group(1))
            if not sk or not sk.group(1).strip():
                errors.append("%s:%d: unknown doc-examples marker %r; allowed: "
                              "<!-- doc-examples: skip (REASON) -->" % (rel, i + 1, ln.strip()))
                pending = None
            else:
                pending = (i + 1, sk.group(1).strip())
            i += 1
            continue
        if m:
            indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
            start = i + 1
            j = start
            close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence))
            while j < n and not close.match(text[j]):
                j += 1
            body = [t[len(indent):] if t.startswith(indent) else t.lstrip()
                    for t in text[start:j]]
            if lang in SHELL_LANGS:
                blocks.append(Block(rel, start + 1, lang, body, pending[1] if pending else None))
            else:
                if pending:
                    errors.append("%s:%d: doc-examples marker above a %s block, not a shell "
                                  "block" % (rel, pending[0], lang or "unlabelled"))
                if not lang and looks_like_command(body):
                    errors.append("%s:%d: unlabelled code block that looks like a command: label "
                                  "it ```sh to run it, or ```text if it is not one" % (rel, i + 1))
            pending = None
            i = j + 1
            prev_blank, prev_list = False, False
            continue
        if pending and ln.strip():
            errors.append("%s:%d: doc-examples marker must be the line right before a shell "
                          "block's fence" % (rel, pending[0]))
            pending = None
        # indented code block: 4+ spaces after a blank line, not the continuation of a list item
        if prev_blank and not prev_list and ln.startswith("    ") and ln.strip():
            j = i
            while j < n and (text[j].startswith("    ") or not text[j].strip()):
                j += 1
            if looks_like_command([text[i]]):
                errors.append("%s:%d: indented code block that looks like a command: fence it as "
                              "```sh (run, or marked skip) or ```text" % (rel, i + 1))
            i = j
            prev_blank = False
            continue
        if ln.strip():
            prev_list = bool(LIST_RE.match(ln)) or (prev_list and ln.startswith(" "))
        prev_blank = not ln.strip()
        i += 1
    if pending:
        errors.append("%s:%d: doc-examples marker without a shell block under it"
                      % (rel, pending[0]))
    return blocks, errors


def tree_files(root):
    """Files of the working tree a fresh clone has (tracked plus untracked, not ignored)."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], check=True, capture_output=True).stdout
        return [p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, dirs, names in os.walk(root):
            rd = os.path.relpath(d, root)
            dirs[:] = [x for x in dirs if not (rd == "." and x in (".git", "out", "build", "bin"))]
            files += [os.path.normpath(os.path.join(rd, x)) for x in names]
        return files


def make_copy(root, files, dest):
    for rel in files:
        src = os.path.join(root, rel)
        if not os.path.isfile(src) or os.path.islink(src):
            continue
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    for built in ("bin", os.path.join("build", "rel")):
        if os.path.isdir(os.path.join(root, built)):
            shutil.copytree(os.path.join(root, built), os.path.join(dest, built), symlinks=True,
                            dirs_exist_ok=True)


def example_env():
    env = {k: v for k, v in os.environ.items()
           if k not in DROP_ENV and not k.startswith("ABLASIM_")}
    env.setdefault("OMP_WAIT_POLICY", "passive")
    return env


def command_at(block, lineno):
    """The logical command (with its continuation lines) around block line lineno (1-based)."""
    k = max(0, min(lineno, len(block.lines)) - 1)
    while k > 0 and block.lines[k - 1].rstrip().endswith("\\"):
        k -= 1
    cmd = [block.lines[k]]
    while cmd[-1].rstrip().endswith("\\") and k + len(cmd) < len(block.lines):
        cmd.append(block.lines[k + len(cmd)])
    return k, "\n".join(cmd)


def run_block(block, cwd, work, timeout):
    """Run one block; returns (ok, message, FILE:LINE of the failing command)."""
    tag = "%s_%d" % (re.sub(r"[^A-Za-z0-9]", "_", block.path), block.line)
    script = os.path.join(work, tag + ".sh")
    status = os.path.join(work, tag + ".status")
    log = os.path.join(work, tag + ".log")
    with open(script, "w") as f:
        f.write(block.script())
    wrapper = ('__de_status=$1; __de_script=$2; set --; set -e -o pipefail; '
               'trap \'echo "$LINENO" > "$__de_status"\' ERR; source "$__de_script"')
    t0 = time.monotonic()
    with open(log, "wb") as out:
        p = subprocess.Popen(["bash", "--noprofile", "--norc", "-c", wrapper, "doc-example",
                              status, script], cwd=cwd, env=example_env(),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            rc, timed_out = None, True
    dt = time.monotonic() - t0
    if rc == 0:
        return True, "%.1f s" % dt, None
    with open(log, "rb") as f:
        tail = f.read().decode(errors="replace").splitlines()[-OUTPUT_TAIL:]
    lineno = 0
    if os.path.exists(status):
        with open(status) as f:
            txt = f.read().split()
            lineno = int(txt[-1]) if txt and txt[-1].isdigit() else 0
    if lineno:
        k, cmd = command_at(block, lineno)
        where = block.where(k)
    else:
        cmd, where = "(block)", block.where()
    why = ("ran longer than %d s (--timeout) and was stopped" % timeout if timed_out
           else "exit status %d" % rc)
    msg = ["%s: doc example failed (%s) after %.1f s:" % (where, why, dt),
           "    " + cmd.replace("\n", "\n    "),
           "  output (last %d lines, working copy %s):" % (OUTPUT_TAIL, cwd)]
    msg += ["  | " + t for t in tail]
    return False, "\n".join(msg), where


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description="run the shell examples of README.md and docs/*.md",
                                 epilog="Rules: see the top of this file (--rules).")
    ap.add_argument("files", nargs="*", help="Markdown files (default README.md docs/*.md)")
    ap.add_argument("--list", action="store_true", help="list the examples, run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per block (default 120)")
    ap.add_argument("--rules", action="store_true", help="print the rules and exit")
    a = ap.parse_args()
    if a.rules:
        print(__doc__)
        return 0
    if a.files:
        missing = [f for f in a.files if not os.path.isfile(f)]
        if missing:
            sys.stderr.write("doc_examples.py: no such file: %s\n" % ", ".join(missing))
            return 2
        rels = [os.path.relpath(os.path.abspath(f), root) for f in a.files]
    else:
        docs = os.path.join(root, "docs")
        rels = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(docs)
                                      if f.endswith(".md"))
    per_file, errors = [], []
    for rel in rels:
        b, e = parse(root, rel)
        per_file.append((rel, b))
        errors += e
    # skipped blocks must at least be valid bash
    for rel, blocks in per_file:
        for b in blocks:
            if b.skip:
                r = subprocess.run(["bash", "-n"], input=b.script(), text=True,
                                   capture_output=True)
                if r.returncode:
                    errors.append("%s: skipped block is not valid bash: %s"
                                  % (b.where(), r.stderr.strip()))
    if errors:
        for e in errors:
            print("doc-examples: " + e, file=sys.stderr)
        return 2
    nrun = sum(1 for _, bl in per_file for b in bl if not b.skip)
    nskip = sum(1 for _, bl in per_file for b in bl if b.skip)
    if a.list:
        for rel, blocks in per_file:
            for b in blocks:
                first = next((t for t in b.lines if t.strip()), "")
                print("%-28s %s  %s" % (b.where(), "SKIP" if b.skip else "run ",
                                        ("(%s)" % b.skip) if b.skip else first))
        print("doc-examples: %d blocks to run, %d skipped" % (nrun, nskip))
        return 0
    scratch = tempfile.mkdtemp(prefix="ablasim-doc-examples.")
    work = os.path.join(scratch, "_scripts")
    os.makedirs(work)
    files = tree_files(root)
    failures, ran, t_all = [], 0, time.monotonic()
    for rel, blocks in per_file:
        for b in blocks:
            if b.skip:
                print("doc-examples: SKIP %s (%s)" % (b.where(), b.skip))
        todo = [b for b in blocks if not b.skip]
        if not todo:
            continue
        copy = os.path.join(scratch, re.sub(r"[^A-Za-z0-9]", "_", rel))
        os.makedirs(copy)
        make_copy(root, files, copy)
        ok_file = True
        for b in todo:
            ok, msg, where = run_block(b, copy, work, a.timeout)
            ran += 1
            if ok:
                print("doc-examples: ok   %s (%s)" % (b.where(), msg), flush=True)
            else:
                print("doc-examples: FAIL " + msg, flush=True)
                failures.append(where)
                ok_file = False
                break
        if ok_file and not a.keep:
            shutil.rmtree(copy, ignore_errors=True)
    total = time.monotonic() - t_all
    print("doc-examples: %d of %d blocks run, %d passed, %d failed, %d skipped, %.0f s"
          % (ran, nrun, ran - len(failures), len(failures), nskip, total))
    if failures or a.keep:
        print("doc-examples: scratch copies kept in %s" % scratch)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        print("doc-examples: failed: " + ", ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
