# Sourced by the benchmark scripts that run on a fresh database of a server (latency-under-load.sh,
# mixed-run.sh, prune-latency.sh). `scratch_database SERVER_URL PREFIX` creates a database named
# PREFIX_<pid>_<random> there, migrates it with "$bin/orcastra" and sets `db` and `url`;
# `drop_scratch_database` drops it (with FORCE: a killed bench may leave connections behind).
scratch_database() {
    local server=$1 prefix=$2
    scratch_server=$server
    db="${prefix}_$$_$RANDOM"
    psql -qX "$server" -c "CREATE DATABASE $db" >/dev/null
    url=$(printf '%s' "$server" | sed -E "s#^(postgres(ql)?://[^/?]*)/[^?]*#\1/$db#")
    "$bin/orcastra" migrate --database-url "$url" >/dev/null
}

drop_scratch_database() {
    [ -n "${db:-}" ] && psql -qX "$scratch_server" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
}
