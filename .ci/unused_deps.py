#!/usr/bin/env python3
"""Fails when a workspace crate declares a dependency its code never names.

For each member's Cargo.toml, every entry of [dependencies], [dev-dependencies] and
[build-dependencies] must be named (as `name::`, `use name`, `extern crate name` or a word in a
path) somewhere in that crate's Rust files. A dependency kept only to switch a feature on in
another crate says so in Cargo.toml with `# needed for:` on its line.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Crates whose library name is not the package name with '-' as '_'.
LIB_NAMES = {"md-5": "md5"}


def members():
    text = open(os.path.join(ROOT, "Cargo.toml")).read()
    block = re.search(r"members\s*=\s*\[(.*?)\]", text, re.S).group(1)
    return re.findall(r'"([^"]+)"', block)


def rust_text(crate_dir):
    out = []
    for root, dirs, files in os.walk(crate_dir):
        dirs[:] = [d for d in dirs if d not in ("target", "fuzz")]
        out += [open(os.path.join(root, f)).read() for f in files if f.endswith(".rs")]
    return "\n".join(out)


def declared(toml):
    section, found = None, []
    for line in toml.split("\n"):
        m = re.match(r"^\[(.*)\]", line)
        if m:
            section = m.group(1)
            continue
        if section in ("dependencies", "dev-dependencies", "build-dependencies"):
            m = re.match(r"^([A-Za-z0-9_-]+)\s*=", line)
            if m and "# needed for:" not in line:
                package = re.search(r'package\s*=\s*"([^"]+)"', line)
                found.append((section, m.group(1), package.group(1) if package else None))
    return found


unused = []
for member in members():
    crate_dir = os.path.join(ROOT, member)
    toml = open(os.path.join(crate_dir, "Cargo.toml")).read()
    own = re.search(r'^name\s*=\s*"([^"]+)"', toml, re.M).group(1)
    code = rust_text(crate_dir)
    for section, name, package in declared(toml):
        if name == own:
            continue
        lib = LIB_NAMES.get(package or name, name).replace("-", "_")
        if not re.search(r"\b" + re.escape(lib) + r"\b", code):
            unused.append(f"{member}/Cargo.toml [{section}] {name}")

if unused:
    print("dependencies declared but never used:\n  " + "\n  ".join(unused))
    sys.exit(1)
print("every declared dependency is used")
