#!/bin/sh
# Parse speed of JSONValue(parsing:) in release mode: a 1 MiB array of objects and a 10 KB context.
# Compiles Sources/OrcastraTemplates/JSON*.swift (they need only Foundation) with a small main, so
# no package build is needed. Give a git revision to measure that revision's JSONValue instead,
# e.g. `scripts/json-parse-speed.sh 741847c` for the Foundation-based parser before issue 11.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ $# -gt 0 ]; then
    for file in $(git -C "$root" ls-tree --name-only "$1" Sources/OrcastraTemplates/ | grep '/JSON[A-Z][A-Za-z]*\.swift$' | grep -v JSONSchema); do
        git -C "$root" show "$1:$file" > "$work/$(basename "$file")"
    done
else
    for file in "$root"/Sources/OrcastraTemplates/JSON*.swift; do
        case "$file" in *JSONSchema.swift) ;; *) cp "$file" "$work/" ;; esac
    done
fi
cp "$root/scripts/json-parse-speed/main.swift" "$work/main.swift"
swiftc -O -module-name JSONParseSpeed "$work"/*.swift -o "$work/json-parse-speed"
"$work/json-parse-speed"
