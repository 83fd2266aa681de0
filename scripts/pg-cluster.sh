#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite.
#
#   eval "$(bash scripts/pg-cluster.sh start)"      # sets TASKER_TEST_PG_DSN and TASKER_TEST_PG_DIR
#   bash scripts/pg-cluster.sh stop "$TASKER_TEST_PG_DIR"
#
# `start` installs Debian's postgresql package if no server binaries are found (root only) and
# creates a cluster in a new temp dir (see cluster_base), owned by the `postgres` OS user when run
# as root since initdb refuses root. The server listens on 127.0.0.1 on a free port, keeps its unix
# socket in that dir, trusts every local user and skips durability (fsync, synchronous_commit and
# full_page_writes off). stdout carries only the `export` lines; progress and errors go to stderr.
# `stop` shuts the server down and deletes the dir; stopping a dir that is gone is not an error.
set -euo pipefail

readonly DIR_PREFIX="tasker-pg."
readonly MARKER=".tasker-pg-cluster"

log() { printf 'pg-cluster: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

find_bindir() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null |
        sort -V | tail -n 1)
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
        printf '%s\n' "$dir"
    fi
}

install_postgres() {
    [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed and only root can install it" \
        "(apt-get install postgresql), or set TASKER_TEST_PG_DSN to a server you have"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available"
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Where the cluster dir goes: TASKER_TEST_PG_TMPDIR if set; else /dev/shm when it has room (a tmpfs
# makes CREATE DATABASE about 10x faster than this machine's disk); else TMPDIR or /tmp.
cluster_base() {
    if [[ -n "${TASKER_TEST_PG_TMPDIR:-}" ]]; then
        printf '%s\n' "$TASKER_TEST_PG_TMPDIR"
        return
    fi
    local base="${TMPDIR:-/tmp}" free_kb
    if [[ -d /dev/shm && -w /dev/shm ]]; then
        free_kb=$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')
        if [[ "${free_kb:-0}" -ge $((1024 * 1024)) ]]; then
            base=/dev/shm
        fi
    fi
    if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$base"; then
        base=/tmp # the server runs as postgres and must reach its own dir
    fi
    printf '%s\n' "$base"
}

# Runs a server binary as the cluster's owner, from inside the cluster dir (the caller's cwd may not
# be readable by that user).
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd "$CLUSTER_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$CLUSTER_DIR" && "$@")
    fi
}

cmd_start() {
    local bindir
    bindir=$(find_bindir)
    if [[ -z "$bindir" ]]; then
        install_postgres
        bindir=$(find_bindir)
        [[ -n "$bindir" ]] || die "installed postgresql but found no initdb under /usr/lib/postgresql/*/bin"
    fi
    if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        die "running as root but there is no 'postgres' OS user to own the cluster (initdb refuses root)"
    fi

    local base
    base=$(cluster_base)
    CLUSTER_DIR=$(mktemp -d "$base/${DIR_PREFIX}XXXXXX")
    touch "$CLUSTER_DIR/$MARKER"
    if [[ $EUID -eq 0 ]]; then
        chown -R postgres: "$CLUSTER_DIR"
    fi
    # From here on a failure must not leave the dir (or a half-started server) behind.
    START_OK=""
    trap 'if [[ -z "$START_OK" ]]; then cmd_stop "$CLUSTER_DIR" || true; fi' EXIT

    log "initdb ($bindir) in $CLUSTER_DIR"
    as_owner "$bindir/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust -E UTF8 --no-locale \
        --no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 || {
        cat "$CLUSTER_DIR/initdb.log" >&2
        die "initdb failed"
    }

    local port attempt started=""
    for attempt in 1 2 3; do
        port=$(free_port)
        as_owner tee "$CLUSTER_DIR/data/tasker.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CLUSTER_DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
        # `include` rather than editing postgresql.conf in place, so a retry only rewrites this file.
        if ! grep -q "^include = 'tasker.conf'" "$CLUSTER_DIR/data/postgresql.conf"; then
            echo "include = 'tasker.conf'" | as_owner tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
        fi
        log "starting on 127.0.0.1:$port (attempt $attempt)"
        if as_owner "$bindir/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/postgres.log" -w -t 60 \
            start >&2; then
            started=1
            break
        fi
        log "server did not start; log follows"
        tail -n 20 "$CLUSTER_DIR/postgres.log" >&2 || true
    done
    [[ -n "$started" ]] || die "PostgreSQL did not start; see the log above"
    START_OK=1

    printf 'export TASKER_TEST_PG_DSN=%q\n' "postgresql://postgres@127.0.0.1:$port/postgres"
    printf 'export TASKER_TEST_PG_DIR=%q\n' "$CLUSTER_DIR"
}

cmd_stop() {
    local dir="${1:-}"
    [[ -n "$dir" ]] || die "usage: $0 stop <dir printed by start>"
    if [[ ! -e "$dir" ]]; then
        return 0
    fi
    # Refuse to delete anything that `start` did not create.
    [[ -f "$dir/$MARKER" && "$(basename "$dir")" == "$DIR_PREFIX"* ]] ||
        die "$dir is not a cluster dir made by '$0 start'; not deleting it"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        local bindir
        bindir=$(find_bindir)
        CLUSTER_DIR="$dir"
        if [[ -n "$bindir" ]]; then
            as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >&2 ||
                log "pg_ctl stop failed; deleting $dir anyway"
        fi
    fi
    rm -rf -- "$dir"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    *)
        echo "usage: $0 start | stop <dir>" >&2
        exit 2
        ;;
esac
