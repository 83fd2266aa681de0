#!/usr/bin/env bash
# One command installs what the tests need and runs them:
#
#   bash scripts/test.sh [pytest args...]
#
# Creates .venv (if missing), installs tasker with its `dev` extra, runs ruff, ruff format, mypy and
# import-linter (stopping at the first that fails), starts a throwaway PostgreSQL server unless
# TASKER_TEST_PG_DSN is already set (scripts/pg-cluster.sh; stopped and deleted on exit), then runs
# pytest and exits with pytest's exit code.
#
# TASKER_SKIP_LINT=1 skips the lint stages for a quick local run; it is ignored when CI is set.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly ROOT="$PWD"

stage() { printf '\n==> %s\n' "$*"; }

elapsed() { printf '%ss' "$((SECONDS - STAGE_START))"; }

PG_DIR=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [[ -n "$PG_DIR" ]]; then
        bash "$ROOT/scripts/pg-cluster.sh" stop "$PG_DIR" || true
    fi
}
trap cleanup EXIT
# Make INT/TERM go through the EXIT trap so the server is stopped on Ctrl-C too.
trap 'exit 130' INT
trap 'exit 143' TERM

export PIP_DISABLE_PIP_VERSION_CHECK=1

STAGE_START=$SECONDS
if ! .venv/bin/python -c '' 2>/dev/null; then
    stage "create .venv"
    rm -rf .venv
    python3 -m venv .venv
fi
export VIRTUAL_ENV="$ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"

stage "install tasker[dev] into .venv"
python -m pip install -qq -e '.[dev]'
echo "done in $(elapsed)"

if [[ -n "${TASKER_SKIP_LINT:-}" && -n "${CI:-}" ]]; then
    echo "warning: TASKER_SKIP_LINT is ignored on CI" >&2
fi
if [[ -z "${TASKER_SKIP_LINT:-}" || -n "${CI:-}" ]]; then
    existing() {
        local d
        for d in "$@"; do
            if [[ -d "$d" ]]; then printf '%s\n' "$d"; fi
        done
    }
    mapfile -t check_dirs < <(existing src tests benchmarks)
    mapfile -t format_dirs < <(existing src tests)

    stage "ruff check ${check_dirs[*]}"
    ruff check "${check_dirs[@]}"

    stage "ruff format --check ${format_dirs[*]}"
    ruff format --check "${format_dirs[@]}"

    stage "mypy"
    mypy

    stage "lint-imports"
    lint-imports --no-cache
else
    stage "lint skipped (TASKER_SKIP_LINT is set)"
fi

if [[ -z "${TASKER_TEST_PG_DSN:-}" ]]; then
    stage "start PostgreSQL"
    STAGE_START=$SECONDS
    pg_env=$(bash scripts/pg-cluster.sh start)
    eval "$pg_env" # sets TASKER_TEST_PG_DSN and TASKER_TEST_PG_DIR
    # shellcheck disable=SC2153  # set by the eval above
    PG_DIR="$TASKER_TEST_PG_DIR"
    echo "TASKER_TEST_PG_DSN=$TASKER_TEST_PG_DSN (started in $(elapsed))"
else
    stage "PostgreSQL: using TASKER_TEST_PG_DSN from the environment"
fi

stage "pytest"
rc=0
python -m pytest -q -p no:cacheprovider "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    echo "error: pytest collected no tests (exit 5); that counts as a failure" >&2
fi
exit "$rc"
