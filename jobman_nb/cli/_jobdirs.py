"""Commands that read the job directories: ``failures`` (why jobs failed) and ``show`` (one job)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ._app import UsageProblem, build_query, main
from ._output import Output, emit_frame, output_options

if TYPE_CHECKING:
    import pandas as pd

    from ..explore import JobDatabase

PATH_MAP_HELP = ("Where recorded job dirs live here: OLD=NEW, e.g. /scratch/alice=/mnt/cluster/alice "
                 "(longest prefix first; repeat for several).")
BATCH_DIRS_HELP = ("A directory holding batch dirs (a batching engine's scratch dir): batched jobs' logs are "
                   "their batch's. Repeatable. Default: look beside the database and above the job dirs.")


def _open(path: str, path_map: tuple[str, ...]) -> JobDatabase:
    from ..explore import open_db
    from ..pathmap import parse_path_map

    return open_db(path, read_only=True, path_map=parse_path_map(path_map))


def _common(fn: Any) -> Any:
    fn = click.option("--batch-dirs", "batch_dirs", multiple=True, type=click.Path(file_okay=False),
                      metavar="DIR", help=BATCH_DIRS_HELP)(fn)
    fn = click.option("--path-map", "path_map", multiple=True, metavar="OLD=NEW", help=PATH_MAP_HELP)(fn)
    return fn


# -- failures ---------------------------------------------------------------------------------------
@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@_common
@click.option("--where", "-w", multiple=True, metavar="EXPR",
              help="Only FAILED jobs matching FIELD OP VALUE too (e.g. 'worker_key=cpu_w'). Repeatable.")
@click.option("--examples", default=3, show_default=True, type=click.IntRange(min=1),
              help="Example job keys per cause.")
@output_options
def failures(path: str, path_map: tuple[str, ...], batch_dirs: tuple[str, ...], where: tuple[str, ...],
             examples: int, output: Output) -> None:
    """The recurring causes of the FAILED jobs in PATH, read from their job dirs.

    jobman records almost nothing about a failure; the cause (an oom-kill, a
    time limit, a traceback's last line, ...) is in each job's stderr/stdout.
    Causes are normalized (numbers, paths, nodes, dates stripped) so one kind
    of failure is one line, with its count and example keys. The job dirs are
    only read.

    \b
    Examples:
      jobman-nb failures jobs.sqlite --path-map /scratch/alice=/mnt/cluster/alice
      jobman-nb failures jobs.sqlite -w worker_key=cpu_w --json
    """
    from ..analytics import recurring_errors
    from ..jobdirs import read_job_dirs

    query = build_query(("status=FAILED", *where))
    with _open(path, path_map) as db:
        jobs = db.jobman.query_jobs_df(query)
        dirs = read_job_dirs(jobs, db=db, batch_dirs=list(batch_dirs) or None)
    table = recurring_errors(dirs, column="cause", examples=examples).rename(columns={"error": "cause"})
    table = table[["count", "share", "cause", "example_keys"]]
    n, explained, missing = len(dirs), int(dirs["cause"].notna().sum()), int((~dirs["exists"]).sum())
    if output.for_person:
        table = table.assign(share=table["share"].map("{:.0%}".format),
                             example_keys=table["example_keys"].map(lambda keys: " ".join(k[:8] for k in keys)))
        parts = [f"{n:,} FAILED job{'s' * (n != 1)}", f"{explained:,} with a cause"]
        if n - explained:
            parts.append(f"{n - explained:,} without (dir missing: {missing:,})")
        click.echo(", ".join(parts) + ("; 'jobman-nb show PATH KEY' prints one job's logs" if n else ""), err=True)
    elif output.kind in ("csv", "tsv"):
        table = table.assign(example_keys=table["example_keys"].map(" ".join))
    emit_frame(output, table, empty="no causes found")


# -- show -------------------------------------------------------------------------------------------
def _find_job(db: JobDatabase, key: str) -> dict[str, Any]:
    jobs = db.jobman.query_jobs({"filters": [{"field": "key", "op": "=", "arg": key}]})
    if not jobs:
        pattern = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        jobs = db.jobman.query_jobs({"filters": [{"field": "key", "op": "LIKE", "arg": pattern}], "limit": 3})
    if not jobs:
        raise UsageProblem(f"no job with key {key!r} (nor one starting with it) in {db.path}")
    if len(jobs) > 1:
        raise UsageProblem(f"{key!r} starts several keys ({', '.join(j['key'] for j in jobs)}, ...); give more of it")
    return jobs[0]


def _section(title: str) -> None:
    click.echo("")
    click.echo(click.style(f"== {title}", bold=True))


def _tail_lines(text: Any, lines: int) -> str:
    import pandas as pd

    if text is None or text is pd.NA:
        return "(none)"
    kept = str(text).splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"


def _lineage_row(db: JobDatabase, key: str) -> pd.Series:
    lin = db.lineage({"filters": [{"field": "key", "op": "=", "arg": key}]})
    return lin.iloc[0]


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("key")
@_common
@click.option("--lines", "-n", default=20, show_default=True, type=click.IntRange(min=1),
              help="Last lines of each log to print.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: record, lineage, job_dir (whole tails).")
def show(path: str, key: str, path_map: tuple[str, ...], batch_dirs: tuple[str, ...], lines: int,
         as_json: bool) -> None:
    """One job of PATH: its record, lineage, job dir (checkpoint, files, cause) and log tails.

    KEY may be the start of a key (the 8 characters 'jobman-nb failures' prints).
    """
    import pandas as pd

    from ..jobdirs import read_job_dirs

    with _open(path, path_map) as db:
        job = _find_job(db, key)
        lin = _lineage_row(db, job["key"])
        d = read_job_dirs([job], db=db, batch_dirs=list(batch_dirs) or None).iloc[0]

    def value(v: Any) -> str:
        return "" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)

    if as_json:
        from ..encode import json_value

        click.echo(json.dumps(json_value({"record": job, "lineage": dict(lin.items()), "job_dir": dict(d.items())}),
                              indent=2, ensure_ascii=False))
        return

    _section("record")
    click.echo(json.dumps(job, indent=2, default=str))
    _section("lineage")
    for name, v in lin.items():
        if name != "key":
            click.echo(f"{name:>16}: {value(v)}")
    _section("job dir")
    for name in ("dir", "exists", "checkpoint", "logs_from", "log_dir", "batch_key", "cause", "note"):
        if value(d[name]) or name in ("dir", "exists", "checkpoint", "cause"):
            click.echo(f"{name:>16}: {value(d[name])}")
    click.echo(f"{'files':>16}: {' '.join(d['files']) if d['files'] is not None else ''}")
    for log in ("stdout", "stderr"):
        size = d[f"{log}_size"]
        _section(f"{log} (last {lines} lines" + (f" of {int(size):,} bytes)" if not pd.isna(size) else ")"))
        click.echo(_tail_lines(d[f"{log}_tail"], lines))
