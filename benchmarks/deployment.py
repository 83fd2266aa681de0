"""Where a workload runs: a fresh database, workers in this process or in ``tasker worker``
processes, and the counters read around a measurement (SQL statements, commits, peak RSS).

Every workload gets its own database (a new SQLite file, or a new PostgreSQL database on the
server) and its own workers, so one workload's rows, caches and memory never bend the next
one's figures.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from tasker.config import Settings
from tasker.domain.model import TaskRequest
from tasker.domain.states import TaskState
from tasker.domain.template import TaskTemplate
from tasker.runtime import Tasker, TaskView
from tasker.store import open_store

__all__ = [
    "SETTINGS",
    "BenchmarkError",
    "Counters",
    "Environment",
    "PostgresServer",
    "Server",
    "Session",
    "SqliteServer",
    "cpu_s",
    "proc_stat",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
HANDLERS_MODULE = "benchmarks.handlers"
NAMESPACE = "bench"

SETTINGS: Mapping[str, Any] = {
    "jitter_enabled": False,  # no random delay before retries or polls: repeatable figures
    "poll_interval_s": 0.5,  # the default: work is announced by wake-ups, polling is a fallback
}
"""Settings every tasker process of a benchmark runs with (besides ``concurrency``)."""

LATENCY_POLL_S = 0.001
"""How often the caller re-reads one task's row while it waits for a latency run to finish."""

STATS_SETTLE_S = 2.0
"""With worker processes: pause before the baseline and after the workers stopped, so that
PostgreSQL's per-backend statistics (reported at most once a second, and at exit) are in."""

BULK_POLL_S = 0.01
"""How often the caller re-reads the task state totals while it waits for many tasks."""

SETTLED = frozenset(
    {
        TaskState.COMPLETE,
        TaskState.ERROR,
        TaskState.CANCELLED,
        TaskState.RESOLVED_MANUALLY,
        TaskState.BLOCKED_BY_FAILURES,
    }
)
_SETTLED_VALUES = frozenset(state.value for state in SETTLED)


class BenchmarkError(Exception):
    """A workload could not run or wait to the end (timeout, a worker process died)."""


@dataclass(frozen=True, slots=True)
class Counters:
    """SQL statements and commits issued so far; ``None`` where they cannot be counted."""

    statements: int | None
    commits: int | None
    source: str

    def minus(self, earlier: Counters) -> Counters:
        return Counters(
            _difference(self.statements, earlier.statements),
            _difference(self.commits, earlier.commits),
            self.source,
        )


def _difference(later: int | None, earlier: int | None) -> int | None:
    return None if later is None or earlier is None else later - earlier


# -- servers ------------------------------------------------------------------------------


class Server(Protocol):
    """Hands out fresh databases of one backend."""

    backend: str
    description: str

    def new_database(self) -> str:
        """Create an empty database; returns its tasker URL."""
        ...

    def drop_database(self, url: str) -> None: ...

    def counters(self, url: str) -> Counters | None:
        """Statements and commits every client of ``url`` issued, if the server counts them."""
        ...

    def close(self) -> None: ...


class SqliteServer:
    """SQLite files in a scratch directory that is deleted at the end."""

    backend = "sqlite"

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="tasker-bench-"))
        self._serial = 0
        self.description = f"SQLite files in {self._dir}"

    def new_database(self) -> str:
        self._serial += 1
        return f"sqlite:///{self._dir / f'bench-{self._serial}.db'}"

    def drop_database(self, url: str) -> None:
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    def counters(self, url: str) -> Counters | None:  # noqa: ARG002 - one file, no server
        return None

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class PostgresServer:
    """A PostgreSQL server: ``TASKER_BENCH_DATABASE_URL``, else a throwaway cluster.

    The throwaway cluster comes from ``scripts/pg-cluster.sh start`` and is restarted once
    with ``pg_stat_statements`` preloaded, so statements and commits of worker processes can
    be counted exactly; ``close`` stops and deletes it. Each workload gets a new database
    (``CREATE DATABASE``, so the URL's role needs CREATEDB), dropped after the workload.
    """

    backend = "postgres"

    def __init__(self, url: str | None) -> None:
        import psycopg

        self._cluster_dir: str | None = None
        if url is None:
            url = self._start_cluster()
            self.description = f"throwaway cluster in {self._cluster_dir} ({_redact(url)})"
        else:
            self.description = f"TASKER_BENCH_DATABASE_URL ({_redact(url)})"
        self.admin_url = url
        self._admin = psycopg.connect(url, autocommit=True)
        self._serial = 0
        self.has_statement_stats = self._enable_statement_stats()

    # -- cluster --------------------------------------------------------------------------

    def _start_cluster(self) -> str:
        script = REPO_ROOT / "scripts" / "pg-cluster.sh"
        done = subprocess.run(
            ["bash", str(script), "start"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BenchmarkError(f"{script} start failed:\n{done.stderr.strip()}")
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in done.stdout.splitlines()
            if line.startswith("export ")
        )
        self._cluster_dir = shlex.split(exports["TASKER_TEST_PG_DIR"])[0]
        url = shlex.split(exports["TASKER_TEST_PG_DSN"])[0]
        self._preload_statement_stats(url)
        return url

    def _preload_statement_stats(self, url: str) -> None:
        """Restart the throwaway cluster with pg_stat_statements loaded (best effort)."""
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bindirs or self._cluster_dir is None:
            _note("no pg_ctl found; worker processes' statements will not be counted")
            return
        command = [str(bindirs[-1]), "-D", f"{self._cluster_dir}/data", "-w", "-t", "60"]
        command += ["-l", f"{self._cluster_dir}/postgres.log", "restart", "-m", "fast"]
        if os.geteuid() == 0:  # the cluster belongs to the postgres OS user (pg-cluster.sh)
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, cwd=self._cluster_dir, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            _note(f"restart with pg_stat_statements failed: {done.stderr.strip()}")

    def _enable_statement_stats(self) -> bool:
        import psycopg

        try:
            self._admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            self._admin.execute("SELECT count(*) FROM pg_stat_statements")
        except psycopg.Error as exc:
            _note(
                "pg_stat_statements is not available "
                f"({str(exc).strip()}); worker processes' commits are counted from "
                "pg_stat_database, their statements are not counted"
            )
            return False
        return True

    # -- databases ------------------------------------------------------------------------

    def new_database(self) -> str:
        self._serial += 1
        name = f"tasker_bench_{os.getpid()}_{self._serial}"
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}"')  # names are ours, not input
        self._admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def drop_database(self, url: str) -> None:
        name = _database_name(url)
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def counters(self, url: str) -> Counters | None:
        """Statements from pg_stat_statements (if loaded), commits from pg_stat_database.

        Commits cannot come from pg_stat_statements: psycopg prepares ``BEGIN``/``COMMIT``
        after a few uses and the extension does not count prepared utility statements. A
        backend reports its commits to pg_stat_database at most once a second and when it
        exits, so ``Session.measure`` lets the counts settle before it reads them.
        """
        name = _database_name(url)
        statements: int | None = None
        if self.has_statement_stats:
            rows = self._admin.execute(
                "SELECT query, calls FROM pg_stat_statements s JOIN pg_database d"
                " ON d.oid = s.dbid WHERE d.datname = %s",
                [name],
            ).fetchall()
            statements = sum(int(calls) for query, calls in rows if _is_data_statement(query))
        self._admin.execute("SELECT pg_stat_clear_snapshot()")
        row = self._admin.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()
        source = (
            "pg_stat_statements + pg_stat_database"
            if self.has_statement_stats
            else ("pg_stat_database (commits only)")
        )
        return Counters(statements, int(row[0]) if row else None, source)

    def close(self) -> None:
        self._admin.close()
        if self._cluster_dir is not None:
            script = REPO_ROOT / "scripts" / "pg-cluster.sh"
            subprocess.run(["bash", str(script), "stop", self._cluster_dir], check=False)


def _is_data_statement(query: str) -> bool:
    """What tasker's store counts as a statement: not BEGIN/COMMIT/ROLLBACK/LISTEN/SET."""
    words = query.lstrip().split(None, 1)
    return bool(words) and words[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***")))


def _note(message: str) -> None:
    print(f"benchmarks: {message}", file=sys.stderr)


# -- /proc --------------------------------------------------------------------------------


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (so ``[0]`` is the state,
    ``[1]`` the parent pid, ``[11:15]`` utime, stime, cutime, cstime), or None (Linux only,
    or the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_s(pid: int | str, *, children: bool = False) -> float | None:
    """CPU seconds (user + system) a process has used, with its waited-for children's if
    ``children``; None if it cannot be read."""
    fields = proc_stat(pid)
    if fields is None:
        return None
    ticks = sum(int(value) for value in fields[11 : 15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


# -- memory -------------------------------------------------------------------------------


def _peak_rss_kb(pid: int | str = "self") -> int | None:
    """A process's peak resident set (VmHWM) since start or the last reset, in KiB (Linux)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux ``clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _self_peak_rss_kb() -> int:
    peak = _peak_rss_kb()
    if peak is not None:
        return peak
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


# -- worker processes ---------------------------------------------------------------------


class WorkerProcesses:
    """``tasker worker`` subprocesses serving one database; their output goes to log files."""

    def __init__(
        self, url: str, count: int, concurrency: int, log_dir: Path, code: Path | None = None
    ) -> None:
        self.url = url
        self.count = count
        self.concurrency = concurrency
        self.log_dir = log_dir
        self.code = code  # a checkout whose src/ the workers import tasker from (benchmarks.ab)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the processes and wait until each says it is serving."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
        code = [str(self.code.resolve() / "src")] if self.code is not None else []
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *code, *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        for key, value in SETTINGS.items():
            env[f"TASKER_{key.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        for index in range(self.count):
            log_path = self.log_dir / f"worker-{index}.log"
            command = [
                *_tasker_command(),
                "worker",
                "--database-url",
                self.url,
                "--handlers",
                HANDLERS_MODULE,
                "--concurrency",
                str(self.concurrency),
                "--worker-id",
                f"bench-{os.getpid()}-{index}",
            ]
            with log_path.open("wb") as log:
                self._procs.append(
                    subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
                )
            self._logs.append(log_path)
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = list(zip(self._procs, self._logs, strict=True))
        while waiting:
            self.check_alive()
            waiting = [(p, log) for p, log in waiting if b"serving" not in log.read_bytes()]
            if time.monotonic() > deadline:
                raise BenchmarkError(f"worker processes not ready after {timeout_s:.0f} s")
            time.sleep(0.05)

    def check_alive(self) -> None:
        """Raises BenchmarkError (with the log's tail) if a worker process exited."""
        for proc, log in zip(self._procs, self._logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise BenchmarkError(f"worker process exited with {proc.returncode}:\n{tail}")

    def peak_rss_kb(self) -> int | None:
        peaks = [_peak_rss_kb(proc.pid) for proc in self._procs]
        return None if any(p is None for p in peaks) else sum(p or 0 for p in peaks)

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tasker_command() -> list[str]:
    script = Path(sys.executable).with_name("tasker")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tasker.cli.main import main; main()"]


# -- one workload's session ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measurement:
    """What a measured stretch cost: SQL counts (engine only) and peak RSS of tasker processes."""

    counters: Counters
    peak_rss_kb: int | None


class Session:
    """One fresh database with workers running: create tasks, wait for them, read them back.

    ``app`` creates the tasks (and, with no worker processes, runs the workers); ``observer``
    is a second store on the same database for the caller's reads, so waiting never counts
    as engine work.
    """

    def __init__(
        self,
        server: Server,
        url: str,
        app: Tasker,
        observer: Tasker,
        workers: WorkerProcesses | None,
    ) -> None:
        self.server = server
        self.url = url
        self.app = app
        self.observer = observer
        self.workers = workers

    # -- tasks ----------------------------------------------------------------------------

    def create(self, name: str, context: Mapping[str, Any]) -> str:
        return self.app.create_task(name, namespace=NAMESPACE, context=dict(context))

    def create_many(self, name: str, contexts: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create the tasks with one ``Tasker.submit_many`` call (one transaction)."""
        return self.app.submit_many(
            TaskRequest(name=name, namespace=NAMESPACE, context=dict(context))
            for context in contexts
        )

    def wait_task(self, task_uuid: str, timeout_s: float) -> None:
        """Wait until the task is settled (complete, error, blocked, ...) with ``Tasker.wait``,
        woken by the commit that settles the task (in this process) or by its ``NOTIFY`` (from
        a worker process on PostgreSQL); else (SQLite with worker processes) poll its row.
        ``Tasker.wait``'s own reads, about 3 statements per task, are counted as engine work."""
        deadline = time.monotonic() + timeout_s
        if self.workers is None or self.app.store.backend == "postgres":
            view = self.app.wait(task_uuid, timeout_s)
            if TaskState(view.state) not in SETTLED:
                raise BenchmarkError(f"task {task_uuid} not finished before the timeout")
            return
        while True:
            with self.observer.store.read() as tx:
                task = tx.get_task(task_uuid)
            if task is not None and task.state in SETTLED:
                return
            self._check_time(deadline, f"task {task_uuid}")
            time.sleep(LATENCY_POLL_S)

    def wait_settled(self, count: int, timeout_s: float) -> None:
        """Poll the state totals until ``count`` tasks of this database are settled."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.observer.store.read() as tx:
                totals = tx.task_state_totals()
            if sum(n for state, n in totals.items() if state in _SETTLED_VALUES) >= count:
                return
            self._check_time(deadline, f"{count} tasks")
            time.sleep(BULK_POLL_S)

    def _check_time(self, deadline: float, what: str) -> None:
        if self.workers is not None:
            self.workers.check_alive()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{what} not finished before the timeout")

    def view(self, task_uuid: str) -> TaskView:
        return self.observer.get_task(task_uuid)

    # -- counters -------------------------------------------------------------------------

    def counters(self) -> Counters:
        if self.workers is None:
            stats = self.app.store.stats
            return Counters(stats.statements, stats.commits, "store.stats")
        counted = self.server.counters(self.url)
        if counted is None:
            return Counters(None, None, "not counted")
        # The harness's own polling is not engine work: its statements, and its reads, which
        # end with COMMIT (ADR 0022) and so count as commits on the server.
        own = self.observer.store.stats
        statements = None if counted.statements is None else counted.statements - own.statements
        commits = None if counted.commits is None else counted.commits - own.read_commits
        return Counters(statements, commits, counted.source)

    @contextmanager
    def measure(self) -> Iterator[list[Measurement]]:
        """Count what the body costs; the one-element list is filled when the body ends."""
        box: list[Measurement] = []
        reset = _reset_peak_rss()
        if self.workers is not None:
            time.sleep(STATS_SETTLE_S)  # let the workers' backends report earlier commits
        before = self.counters()
        yield box
        peak = _self_peak_rss_kb() if reset else None
        if self.workers is not None:
            worker_peak = self.workers.peak_rss_kb()
            peak = None if peak is None or worker_peak is None else peak + worker_peak
            # Backends report their last commits when they exit: stop the workers and the
            # creating pool first (the session's teardown finds them stopped).
            self.workers.stop()
            self.app.close()
            time.sleep(STATS_SETTLE_S)
        after = self.counters()
        box.append(Measurement(after.minus(before), peak))


class Environment:
    """Opens sessions: a server, how many worker processes, and how many threads each."""

    def __init__(self, server: Server, workers: int, concurrency: int) -> None:
        self.server = server
        self.workers = workers
        self.concurrency = concurrency
        self.settings = Settings.load({**SETTINGS, "concurrency": concurrency}, environ={})
        self._log_dir = Path(tempfile.mkdtemp(prefix="tasker-bench-logs-"))

    @contextmanager
    def session(
        self, templates: Iterable[TaskTemplate] = (), worker_code: Path | None = None
    ) -> Iterator[Session]:
        """A fresh database with the benchmark templates (and ``templates``) registered; its
        worker processes run the engine of ``worker_code`` (a checkout) if given."""
        url = self.server.new_database()
        app: Tasker | None = None
        observer: Tasker | None = None
        workers: WorkerProcesses | None = None
        try:
            app = Tasker(
                url,
                settings=self.settings,
                templates=[TEMPLATES_DIR],
                handlers=[HANDLERS_MODULE],
            )
            app.register_templates(templates)
            observer = Tasker(settings=self.settings, store=open_store(url, migrate=False))
            if self.workers == 0:
                app.start()
            else:
                workers = WorkerProcesses(
                    url, self.workers, self.concurrency, self._log_dir, worker_code
                )
                workers.start()
            yield Session(self.server, url, app, observer, workers)
        finally:
            if workers is not None:
                workers.stop()
            if app is not None:
                app.close()
            if observer is not None:
                observer.close()
            self.server.drop_database(url)

    def close(self) -> None:
        shutil.rmtree(self._log_dir, ignore_errors=True)
        self.server.close()
