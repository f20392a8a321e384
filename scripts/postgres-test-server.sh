#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `start` installs PostgreSQL from Debian's
# packages if it is missing, runs initdb into a temporary folder as an unprivileged user,
# starts the server on 127.0.0.1 on a free port (fsync off: nothing in it must survive) and
# creates the database `sluice_test`; `env` prints `export SLUICE_TEST_POSTGRES_URL=…` for
# it; `stop` stops it and removes the folder; `pause` stops it keeping its data and `resume`
# starts it again on its port (tests of a server that goes away and comes back). The server's
# folder and URL are kept in a state file (SLUICE_TEST_POSTGRES_STATE, by default under the
# system's temp folder), so the other commands find what `start` made.
#
# The superuser `postgres` has no password: only connections to 127.0.0.1 are accepted, with
# trust, except for roles the tests give a password (scram, for the wrong-password test). With
# openssl at hand the server also offers TLS, with a self-signed certificate.
set -euo pipefail

state_file="${SLUICE_TEST_POSTGRES_STATE:-${TMPDIR:-/tmp}/sluice-postgres-test-server.state}"
database="sluice_test"

usage() {
    echo "usage: $0 start|stop|env|pause|resume" >&2
    exit 2
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The newest server binaries Debian installed (/usr/lib/postgresql/VERSION/bin).
server_bin() {
    local newest=""
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] || continue
        if [ -z "$newest" ] || [ "$(basename "$(dirname "$dir")")" -gt "$(basename "$(dirname "$newest")")" ]; then
            newest="$dir"
        fi
    done
    echo "$newest"
}

install_postgres() {
    [ -n "$(server_bin)" ] && return 0
    echo "installing PostgreSQL from Debian's packages" >&2
    as_root apt-get update -qq
    if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql-15 >&2; then
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql >&2
    fi
    [ -n "$(server_bin)" ] || { echo "PostgreSQL was installed but no /usr/lib/postgresql/*/bin/initdb was found" >&2; exit 1; }
}

# Runs a server binary as the unprivileged user that owns the cluster: as root the `postgres`
# user (the server refuses to run as root), otherwise the current user.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A port the system just handed out as free (a random one without python3: a port taken by
# then makes the start fail, and the next attempt picks another).
free_port() {
    command -v python3 >/dev/null 2>&1 || { echo $((20000 + RANDOM % 40000)); return; }
    python3 - <<'EOF'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

start() {
    if [ -f "$state_file" ]; then
        echo "a test server is already recorded in $state_file; run '$0 stop' first" >&2
        exit 1
    fi
    install_postgres
    local bin
    bin="$(server_bin)"
    local folder
    folder="$(mktemp -d "${TMPDIR:-/tmp}/sluice-postgres.XXXXXX")"
    chmod 700 "$folder"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        chown postgres: "$folder"
        # The folder is under /tmp (world-traversable); the socket folder lies inside it.
    fi
    as_owner "$bin/initdb" -D "$folder/data" -U postgres --auth-local=trust --auth-host=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$folder/initdb.log" 2>&1 \
        || { cat "$folder/initdb.log" >&2; rm -rf "$folder"; exit 1; }
    # Roles made with a password (the wrong-password test) are checked; the rest is trusted.
    {
        echo "host all postgres 127.0.0.1/32 trust"
        echo "host all all 127.0.0.1/32 scram-sha-256"
        echo "local all all trust"
    } >"$folder/data/pg_hba.conf"

    # TLS with a self-signed certificate, so the tests can check sslmode: `require` encrypts,
    # `verify-full` refuses a certificate no root vouches for.
    local tls_options=""
    if command -v openssl >/dev/null 2>&1 \
        && openssl req -new -x509 -days 7 -nodes -subj "/CN=127.0.0.1" -keyout "$folder/server.key" \
            -out "$folder/server.crt" >/dev/null 2>&1; then
        chmod 600 "$folder/server.key"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$folder/server.key" "$folder/server.crt"
        tls_options=on
    fi

    # The settings go into postgresql.conf (the port once it is known), so `resume` starts the
    # server again as it was.
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$folder'"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "max_connections = 300"
        if [ -n "$tls_options" ]; then
            echo "ssl = on"
            echo "ssl_cert_file = '$folder/server.crt'"
            echo "ssl_key_file = '$folder/server.key'"
        fi
    } >>"$folder/data/postgresql.conf"

    local port="" attempt
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        if as_owner "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 30 start -o "-p $port" >/dev/null 2>&1; then
            echo "port = $port" >>"$folder/data/postgresql.conf"
            break
        fi
        # Another process took the port between the check and the start: try another.
        echo "the server did not start on port $port (attempt $attempt); trying another" >&2
        port=""
    done
    if [ -z "$port" ]; then
        tail -20 "$folder/server.log" >&2 || true
        rm -rf "$folder"
        exit 1
    fi
    as_owner "$bin/createdb" -h "$folder" -p "$port" -U postgres "$database"
    local url="postgres://postgres@127.0.0.1:$port/$database"
    printf 'folder=%s\nport=%s\nurl=%s\nbin=%s\n' "$folder" "$port" "$url" "$bin" >"$state_file"
    echo "$url"
}

read_state() {
    [ -f "$state_file" ] || { echo "no test server is recorded in $state_file; run '$0 start'" >&2; exit 1; }
    # shellcheck disable=SC1090
    folder="$(sed -n 's/^folder=//p' "$state_file")"
    url="$(sed -n 's/^url=//p' "$state_file")"
    bin="$(sed -n 's/^bin=//p' "$state_file")"
}

stop() {
    local folder url bin
    read_state
    if [ -d "$folder/data" ]; then
        as_owner "$bin/pg_ctl" -D "$folder/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$folder"
    rm -f "$state_file"
}

# Stops the server and keeps its data: a test's server going away under a running store.
pause() {
    local folder url bin
    read_state
    as_owner "$bin/pg_ctl" -D "$folder/data" -m fast -w stop >/dev/null
}

# Starts a paused server again, on its port.
resume() {
    local folder url bin
    read_state
    as_owner "$bin/pg_ctl" -D "$folder/data" -l "$folder/server.log" -w -t 30 start >/dev/null
}

env_command() {
    local folder url bin
    read_state
    echo "export SLUICE_TEST_POSTGRES_URL=$url"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    pause) pause ;;
    resume) resume ;;
    env) env_command ;;
    *) usage ;;
esac
