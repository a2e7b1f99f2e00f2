#!/bin/sh
# Regenerate rules/catalog/generated/ from its two sources (see ../README.md).
#
#   sh rules/catalog/generate/regenerate.sh [SCRATCH_DIR]
#
# 1. @withfig/autocomplete (MIT), installed with npm into SCRATCH_DIR, never into the
#    repository; its version is pinned here so a regeneration is reproducible.
# 2. The --help text of the GNU/Linux tools installed on this machine (run it on
#    Debian 12 with the packages in generate/debian-packages.txt installed).
# Only the programs named in rules/catalog/programs/*.toml are extracted.
set -eu
FIG_VERSION=2.692.3
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../generated"
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch" "$out"
python3 "$here/names.py" > "$scratch/names.txt"
if [ ! -d "$scratch/node_modules/@withfig/autocomplete" ]; then
    (cd "$scratch" && npm init -y >/dev/null && npm install --silent "@withfig/autocomplete@$FIG_VERSION")
fi
node "$here/fig_extract.mjs" "$scratch/node_modules/@withfig/autocomplete" "$scratch/names.txt" "$out/fig.json"
python3 "$here/help_extract.py" "$scratch/names.txt" "$out/help.json"
echo "generated into $out (scratch: $scratch)"
