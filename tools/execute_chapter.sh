#!/usr/bin/env bash
# Execute one MyST chapter with papermill and write the executed notebook atomically.
#   tools/execute_chapter.sh SOURCE.md OUTPUT.ipynb [PARAMS.yml]
# Exits non-zero (and leaves no OUTPUT) if any cell fails.
set -euo pipefail
src=$1 out=$2 params=${3:-}
bin=$(dirname "$0")/../.venv/bin
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/jupytext" --quiet --to ipynb --set-kernel python3 "$src" -o "$tmp/in.ipynb"
args=()
[ -n "$params" ] && args+=(-f "$params")
# run from the chapter's folder so relative paths behave as in the book; files a chapter
# publishes (downloads) go to CHAPTER_BUILD_DIR, the folder the book is built from
export CHAPTER_BUILD_DIR
CHAPTER_BUILD_DIR=$(cd "$(dirname "$out")" && pwd)
"$bin/papermill" --log-level WARNING -k python3 --cwd "$(dirname "$src")" "${args[@]}" \
  "$tmp/in.ipynb" "$tmp/out.ipynb"
mv "$tmp/out.ipynb" "$out"
