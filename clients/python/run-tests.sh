#!/usr/bin/env bash
# The Python package's tests: a fresh venv in .build-python/, mypy --strict, then pytest against a
# throwaway PostgreSQL started by the built `orcastra dev-db` (unless DATABASE_URL is set), with the
# Swift binaries from .build/debug (build them first: `swift build`).
# Usage: bash clients/python/run-tests.sh [pytest arguments]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${ORCASTRA_BIN:-$repo/.build/debug}
venv=${ORCASTRA_PYTHON_VENV:-$repo/.build-python/venv}
started=$(date +%s)

for tool in orcastra orcastra-worker orcastra-orchestrator; do
    [ -x "$bin/$tool" ] || { echo "$bin/$tool is missing: run \`swift build\` first"; exit 1; }
done

# A venv of our own; on a Debian without python3-venv (ensurepip missing), install it.
if [ ! -x "$venv/bin/python" ]; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            echo "python3 -m venv failed; installing python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "python$pyver-venv" \
                || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
            python3 -m venv "$venv"
        else
            echo "python3 -m venv failed and python3-venv cannot be installed here"; exit 1
        fi
    fi
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$here[test]"
echo "venv ready in $(( $(date +%s) - started ))s ($("$venv/bin/python" --version))"

# Type-check the package as installed users get it.
(cd "$here" && "$venv/bin/mypy" --strict src/orcastra)

# A throwaway database unless one is given; destroyed at the end.
if [ -z "${DATABASE_URL:-}" ]; then
    export ORCASTRA_DEV_DB_DIR
    ORCASTRA_DEV_DB_DIR=$(mktemp -d /tmp/orcastra-python-db.XXXXXX)
    cleanup() { "$bin/orcastra" dev-db destroy --yes >/dev/null 2>&1 || true; rm -rf "$ORCASTRA_DEV_DB_DIR"; }
    trap cleanup EXIT
    DATABASE_URL=$("$bin/orcastra" dev-db url)
    export DATABASE_URL
fi
"$bin/orcastra" migrate --database-url "$DATABASE_URL" | tail -n 1

export ORCASTRA_BIN=$bin
cd "$here"
status=0
timeout --kill-after=20s "${PYTHON_TESTS_TIMEOUT:-6m}" "$venv/bin/python" -m pytest -p no:cacheprovider \
    --timeout="${PYTHON_TEST_TIMEOUT:-60}" -q -rA "$@" tests || status=$?
echo "python tests took $(( $(date +%s) - started ))s in all (exit $status)"
exit "$status"
