#!/usr/bin/env bash
# Typeset two derivations of output/derivations.tex as they stand in the compiled document, each
# cropped to itself with a margin round it, as docs/logsumexp.png and docs/chain.png (for the
# README).  Usage: docs/make_png.sh [DERIVATIONS.TEX [NAME...]]; the default is
# output/derivations.tex and the names logsumexp and chain.  Each NAME is a derivation whose
# block in the file starts with the line "% NAME"; its picture is docs/NAME.png.
# Needs pdflatex (texlive-latex-base) and pdftoppm (poppler-utils).
set -euo pipefail
cd "$(dirname "$0")/.."
source=${1:-output/derivations.tex}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(logsumexp chain)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in "${names[@]}"; do
    # the preamble and this derivation's block, the block set in a box of the text width on a
    # page cut to the box's size, with a margin of 30pt (the heading brings 15pt more above it)
    awk -v name="$name" '
        /^\\begin\{document\}/ { body = 1; next }
        !body { print; next }
        $0 == "% " name { inside = 1; print "\\pagestyle{empty}\\begin{document}"
                          print "\\setbox0=\\vbox{\\hsize=\\textwidth \\linewidth=\\textwidth"; next }
        inside && (/^% [a-z0-9-]+$/ || /^\\end\{document\}/) { inside = 0; found = 1 }
        inside { print }
        END {
            if (!inside && !found) {
                print "make_png.sh: no line \"% " name "\" in " FILENAME \
                      " (is it older than the renderer? run derive build)" > "/dev/stderr"
                exit 1
            }
            print "}"
            print "\\pdfpagewidth=\\dimexpr\\wd0+60pt\\relax"
            print "\\pdfpageheight=\\dimexpr\\ht0+\\dp0+45pt\\relax"
            print "\\pdfhorigin=30pt \\pdfvorigin=15pt"
            print "\\shipout\\box0"
            print "\\end{document}"
        }' "$source" > "$work/$name.tex"
    (cd "$work" && pdflatex -interaction=nonstopmode -halt-on-error "$name.tex" >/dev/null) ||
        { tail -20 "$work/$name.log" >&2; exit 1; }
    pdftoppm -png -r 150 -singlefile "$work/$name.pdf" "docs/$name"
    echo "wrote docs/$name.png"
done
