# A throwaway PostgreSQL server for tests and benchmarks: a new cluster in a
# temporary directory, trust authentication on 127.0.0.1 only, a free port,
# stopped and removed when the sourcing shell exits. PostgreSQL comes from
# Debian (apt) when missing. Usage:
#
#     . scripts/lib/postgres.sh
#     start_postgres fast     # tests: no fsync; anything else: durable (bench)
#     psql "$STEPHOST_TEST_DATABASE_URL" -c 'SELECT 1'
#
# A STEPHOST_TEST_DATABASE_URL already set (a server CI provides) is used as
# is and nothing is started.

# Runs a PostgreSQL program as the `postgres` user when this shell is root
# (PostgreSQL refuses to run as root), else as this user.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Stops the server started by start_postgres and removes its directory.
stop_postgres() {
    [ -n "${PG_DIR:-}" ] || return 0
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=""
}

# Starts the server and exports STEPHOST_TEST_DATABASE_URL, the admin URL
# (user postgres, database postgres) tests create their databases through.
# $1 = "fast" turns durability off (fsync, synchronous commit, full pages).
start_postgres() {
    local mode="${1:-durable}"
    if [ -n "${STEPHOST_TEST_DATABASE_URL:-}" ]; then
        echo "PostgreSQL: using the server of STEPHOST_TEST_DATABASE_URL"
        return 0
    fi
    if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
        echo "installing postgresql (for the PostgreSQL backend's tests)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql
    fi
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    PG_DIR=$(mktemp -d /tmp/stephost-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
    # Removed on exit, after whatever EXIT trap the caller already had.
    local previous=""
    eval "set -- $(trap -p EXIT)"
    [ $# -ge 3 ] && previous=$3
    # shellcheck disable=SC2064 # the earlier trap's text is fixed now, on purpose
    trap "stop_postgres${previous:+; $previous}" EXIT
    PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --no-locale -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    local extra=""
    [ "$mode" = fast ] && extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=300 $extra" >/dev/null \
        || { cat "$PG_DIR/log" >&2; return 1; }
    export STEPHOST_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($mode)"
}
