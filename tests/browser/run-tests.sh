#!/usr/bin/env bash
# The dashboard's browser tests (docs/dashboard.md): Selenium (PyPI) driving Debian's chromium and
# chromium-driver headless — nothing is downloaded at run time — against a real orchestrator and
# worker on a throwaway PostgreSQL. Screenshots of each page land in .build-python/screenshots/,
# or refresh docs/images/ with ORCASTRA_SCREENSHOTS=update.
# Needs the debug binaries (`swift build`) and `apt-get install chromium chromium-driver`.
# Usage: bash tests/browser/run-tests.sh [pytest arguments]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${ORCASTRA_BIN:-$repo/.build/debug}
venv=${ORCASTRA_BROWSER_VENV:-$repo/.build-python/browser-venv}
started=$(date +%s)

for tool in orcastra orcastra-worker orcastra-orchestrator; do
    [ -x "$bin/$tool" ] || { echo "$bin/$tool is missing: run \`swift build\` first"; exit 1; }
done
for tool in chromium chromedriver; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install chromium chromium-driver"; exit 1; }
done

if [ ! -x "$venv/bin/python" ]; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # A Debian without python3-venv (ensurepip missing): install it, as clients/python does.
        rm -rf "$venv"
        [ "$(id -u)" = 0 ] || { echo "python3 -m venv failed and python3-venv cannot be installed here"; exit 1; }
        pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "python$pyver-venv" \
            || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
        python3 -m venv "$venv"
    fi
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "selenium>=4.20" pytest pytest-timeout
echo "venv ready in $(( $(date +%s) - started ))s"

if [ -z "${DATABASE_URL:-}" ]; then
    export ORCASTRA_DEV_DB_DIR
    ORCASTRA_DEV_DB_DIR=$(mktemp -d /tmp/orcastra-browser-db.XXXXXX)
    cleanup() { "$bin/orcastra" dev-db destroy --yes >/dev/null 2>&1 || true; rm -rf "$ORCASTRA_DEV_DB_DIR"; }
    trap cleanup EXIT
    DATABASE_URL=$("$bin/orcastra" dev-db url)
    export DATABASE_URL
fi
"$bin/orcastra" migrate --database-url "$DATABASE_URL" | tail -n 1

export ORCASTRA_BIN=$bin
# Selenium must use the system's chromedriver, never fetch one.
export SE_OFFLINE=true
cd "$here"
status=0
timeout --kill-after=20s "${BROWSER_TESTS_TIMEOUT:-5m}" "$venv/bin/python" -m pytest -p no:cacheprovider \
    --timeout="${BROWSER_TEST_TIMEOUT:-90}" -q -rA "$@" . || status=$?
echo "browser tests took $(( $(date +%s) - started ))s in all (exit $status)"
exit "$status"
