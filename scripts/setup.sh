#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment in .venv and installs the
# package with its test extras. Safe to run repeatedly: a stamp holding the hash of
# pyproject.toml and this script skips the install when nothing changed. With --test-tools
# (bash scripts/spf test) it also installs the system programs some tests drive.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SPF_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

# System tools some tests drive, installed with apt-get when missing and this runs as root
# (elsewhere those tests skip with a message saying so). Only with --test-tools (the test
# command's setup; the main job needs none of them), checked on every such run, before the
# install stamp.
#   chromium, chromium-driver: the browser tests (report pages, the web app);
#   pdflatex (texlive-latex-base, with booktabs from texlive-latex-recommended): the test that
#   compiles the report's LaTeX tables (about 15 MB, half a minute).
apt_updated=no
install_missing() {  # install_missing "what it is for" "commands" "packages" [apt-get option ...]
  local purpose="$1" commands="$2" packages="$3"; shift 3
  local missing=no cmd
  for cmd in $commands; do command -v "$cmd" >/dev/null 2>&1 || missing=yes; done
  [ "$missing" = no ] && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing $packages with apt-get ($purpose)" >&2
    if [ "$apt_updated" = no ]; then apt-get update -qq >&2 && apt_updated=yes; fi
    # shellcheck disable=SC2086  # the package list is meant to split into words
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" $packages >&2 \
      || echo "setup: could not install $packages; $purpose will be skipped" >&2
  else
    echo "setup: $commands missing and this is not root; $purpose will be skipped" >&2
  fi
}
if [ "${1:-}" = "--test-tools" ]; then
  install_missing "the browser tests" "chromium chromedriver" "chromium chromium-driver"
  # TeX Live's recommends are its documentation and fonts: hundreds of MB the test does not need.
  install_missing "the LaTeX compile test" "pdflatex" "texlive-latex-base texlive-latex-recommended" --no-install-recommends
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating virtual environment in $venv" >&2
  "$python" -m venv "$venv"
fi

stamp="$venv/.spf-install-stamp"
want="$(cat "$root/pyproject.toml" "$root/scripts/setup.sh" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip wheel setuptools
# torch first and pinned: this pair is the one that imports together on these machines.
"${pip[@]}" torch==2.14.1 torchvision==0.29.1
"${pip[@]}" -e "$root[test]"
# hpsv2 without its declared dependencies (they pin pytest==7.2.0 and protobuf<4).
"${pip[@]}" --no-deps hpsv2==1.2.0
# hpsv2 1.2.0's wheel lacks the CLIP BPE vocabulary its tokenizer opens at import time;
# open_clip ships the identical file, so put a copy where hpsv2 looks for it.
"$venv/bin/python" - <<'PY'
import importlib.util, pathlib, shutil
oc = pathlib.Path(importlib.util.find_spec("open_clip").origin).parent / "bpe_simple_vocab_16e6.txt.gz"
hp = pathlib.Path(importlib.util.find_spec("hpsv2").origin).parent / "src" / "open_clip" / oc.name
if not hp.exists():
    shutil.copyfile(oc, hp)
PY
echo "$want" > "$stamp"
