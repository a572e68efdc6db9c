#!/usr/bin/env bash
# Print the path of a Python >= 3.12: first on PATH (python3.13, python3.12, python3), then
# under pyenv's versions. Exit 1 with a message if there is none.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for cand in python3.13 python3.12 python3; do
  if command -v "$cand" >/dev/null 2>&1 && ok "$cand"; then
    "$cand" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
root="${PYENV_ROOT:-$HOME/.pyenv}"
for cand in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
  if ok "$cand"; then echo "$cand"; exit 0; fi
done
echo "no Python >= 3.12 found on PATH or under $root/versions; install one (e.g. pyenv install 3.12)" >&2
exit 1
