#!/usr/bin/env bash
# Compile output/derivations.tex and save its first page as docs/derivations.png.
# Needs pdflatex (texlive-latex-base) and pdftoppm (poppler-utils).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp output/derivations.tex "$work/"
(cd "$work" && pdflatex -interaction=nonstopmode -halt-on-error derivations.tex >/dev/null)
pdftoppm -png -r 110 -f 1 -l 1 -singlefile "$work/derivations.pdf" docs/derivations
echo "wrote docs/derivations.png"
