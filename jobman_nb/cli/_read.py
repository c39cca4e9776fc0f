"""Read-only commands: ``info``, ``query``, ``events``, ``lineage``, ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..vocabulary import status_order
from ._app import (
    TABLE_HELP,
    WHERE_HELP,
    UsageProblem,
    build_query,
    field_kinds,
    main,
    open_database,
    resolve,
    split_fields,
    time_fields,
)
from ._ops import history_lines
from ._output import SCREEN_LIMIT, Output, Source, emit, emit_frame, fit_table, output_options, terminal_width

if TYPE_CHECKING:
    import pandas as pd

    from ..dao.sqlite_dao import SqliteDAO

_LIMIT_HELP = "At most this many records (default: 20 on the screen, all for --csv/--tsv/--json/--nl)."
_FIELDS_HELP = ("Only these fields, comma-separated (JSON paths allowed: job_spec.resources.cpus). Default on "
                "the screen: key, status, created, modified, worker_key and the fields of -w and -o.")


def query_options(fn: Any) -> Any:
    """--where, --order, --limit, --offset, --fields, --all: the query dict of a command."""
    for option in reversed([
        click.option("--where", "-w", multiple=True, metavar="EXPR", help=WHERE_HELP),
        click.option("--order", "-o", multiple=True, metavar="[-]FIELD",
                     help="Sort by FIELD, descending with a leading '-'. Repeatable."),
        click.option("--limit", "-n", type=click.IntRange(min=0), help=_LIMIT_HELP),
        click.option("--offset", type=click.IntRange(min=0), help="Skip this many records first."),
        click.option("--fields", "-f", metavar="A,B,...", help=_FIELDS_HELP),
        click.option("--all", "-a", "everything", is_flag=True, help="Every matching record, also on the screen."),
    ]):
        fn = option(fn)
    return fn


# -- info -----------------------------------------------------------------------------------
@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
def info(path: str) -> None:
    """List the tables in PATH, count job statuses per table, and say whether history is on.

    \b
    Tables: role (jobman, worker, engine), rows, columns, first created and
    last modified. Warns when an events table exists but its triggers are gone.
    """
    from ..dao.query import quote_identifier

    width = min(terminal_width(), 100)
    with open_database(path) as db:
        listing = db.listing()
        click.echo(f"{db.path}  ({db.path.stat().st_size / 1e6:,.1f} MB, {len(listing)} tables)")
        click.echo("")
        records = [{"table": r["table"], "role": r["role"], "rows": f"{r['rows']:,}", "cols": r["columns"],
                    "first created": r["first"], "last modified": r["last"]} for r in _rows(listing)]
        for line in fit_table(list(records[0]) if records else ["table"], records, width,
                              time_fields={"first created", "last modified"}, keep_whole=("table",),
                              right=("rows",)):
            click.echo(line)
        extras = [(r["table"], r["extra_columns"]) for r in _rows(listing) if r["extra_columns"]]
        for table, cols in extras:
            click.echo(f"extra columns of {table}: {cols}")
        counts: dict[str, dict[str, int]] = {}
        for ts in db.table_sets:
            job = db.daos[ts.prefix].orms.get("job")
            if ts.job_table is None or job is None or "status" not in job.columns:
                continue
            rows = db.connection.execute(f"SELECT status, count(*) FROM {quote_identifier(ts.job_table)} "
                                         f"GROUP BY status").fetchall()
            counts[ts.job_table] = {("NULL" if s is None else str(s)): n for s, n in rows}
        if counts:
            seen = {s for c in counts.values() for s in c}
            order = status_order(seen, every=False)
            status_rows = [{"job table": t, **{s: f"{c.get(s, 0):,}" for s in order},
                            "total": f"{sum(c.values()):,}"} for t, c in counts.items()]
            click.echo("")
            for line in fit_table(["job table", *order, "total"], status_rows, width, right=[*order, "total"]):
                click.echo(line)
        lines, warnings = history_lines(db)
        if lines:
            click.echo("")
        for line in lines:
            click.echo(line)
        for warning in warnings:
            click.echo(warning, err=True)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    from ..encode import frame_records

    return list(frame_records(frame))


# -- query ----------------------------------------------------------------------------------
def table_source(dao: SqliteDAO, ent_type: str) -> Source:
    """The records of one DAO table, for :func:`emit`."""
    columns = list(dao.orms[ent_type].columns)
    return Source(
        columns=columns, time_fields=time_fields(dao.orms[ent_type].columns),
        run=lambda q: dao.query_ents(ent_type, q),
        iterate=lambda q, n: dao.iter_ents(ent_type, q, chunksize=n),
        count=lambda q: dao.count_ents(ent_type, q),
        frame=lambda q: dao.query_ents_df(ent_type, q),
        defaults=("key", "status", "created", "modified", "worker_key") if "status" in columns else ())


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("table", default="job", required=False)
@query_options
@output_options
def query(path: str, table: str, where: tuple[str, ...], order: tuple[str, ...], limit: int | None,
          offset: int | None, fields: str | None, everything: bool, output: Output) -> None:
    """Print the records of TABLE in PATH that match --where filters.

    TABLE is 'job' (the default) or 'kvp', jobman's own tables, or any table
    name that 'jobman-nb info' lists (e.g. _worker_cpu_w_job).

    On the screen: key, status, created, modified, worker_key and the fields
    of -w/-o, at most 20 records, fitted to the terminal's width. With --csv,
    --tsv, --json or --nl: every field and every record (times as ISO-8601).

    \b
    Examples:
      jobman-nb query demo.sqlite -w status=FAILED -w 'job_spec.resources.mem_gb<=4' -o -created
      jobman-nb query demo.sqlite -w 'created>=2026-01-10' -f key,status,job_spec.cfg.code --csv
      jobman-nb query demo.sqlite kvp --json
    """
    with open_database(path) as db:
        dao, ent_type = resolve(db, table)
        q = build_query(where, order, None, offset, kind_of=field_kinds(dao, ent_type))
        selected = split_fields(fields)
        dao.validate_query(ent_type, {**q, **({"fields": selected} if selected else {})})
        emit(output, table_source(dao, ent_type), q, fields=selected, limit=limit, everything=everything)


# -- events ---------------------------------------------------------------------------------
@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@query_options
@output_options
def events(path: str, where: tuple[str, ...], order: tuple[str, ...], limit: int | None, offset: int | None,
           fields: str | None, everything: bool, output: Output) -> None:
    """Print the recorded status changes of jobman's jobs (history must have been on).

    Fields: key (increasing in write order), job_key, old_status (empty: the
    job was new), new_status (empty: deleted) and time. A snapshot event,
    written when history was turned on, has old_status = new_status.

    \b
    Examples:
      jobman-nb events demo.sqlite -w job_key=KEY
      jobman-nb events demo.sqlite -w new_status=FAILED -w 'time>=2026-01-10' -o -time
    """
    from ..dao import history

    with open_database(path) as db:
        dao = db.jobman
        job = dao.orms["job"]
        if not history.has_event_table(db.connection, job.table):
            raise click.ClickException(f"{job.table} has no history (no table {history.event_table(job.table)}); "
                                       f"turn it on with: jobman-nb history {path} on")
        orm = history.event_orm(job)
        q = build_query(where, order, None, offset,
                        kind_of=field_kinds(dao, "job", columns=orm.columns, timestamps=("time",)))
        selected = split_fields(fields)
        orm.compile_query({**q, **({"fields": selected} if selected else {})})
        conn = db.connection
        source = Source(
            columns=list(orm.columns), time_fields=("time",),
            run=lambda q: orm.query_objects(q, connection=conn),
            iterate=lambda q, n: orm.iter_objects(q, connection=conn, chunksize=n),
            count=lambda q: orm.count_objects(q, connection=conn))
        emit(output, source, q, fields=selected, limit=limit, everything=everything)


# -- lineage --------------------------------------------------------------------------------
_LINEAGE_COLUMNS = ("key", "status", "worker_key", "worker", "engine", "modified")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@query_options
@output_options
def lineage(path: str, where: tuple[str, ...], order: tuple[str, ...], limit: int | None, offset: int | None,
            fields: str | None, everything: bool, output: Output) -> None:
    """Print each jobman job with its worker job and engine job side by side.

    --where and --order apply to the jobman jobs. A link is 'ok', 'missing'
    (a key is recorded but no such row exists) or 'none' (nothing recorded
    yet). On the screen: key, status, worker_key, then each side's status
    (or its link when that is not ok) and modified; -f chooses from key,
    status, created, modified, worker_key, worker.key, worker.link, worker.status, worker.created, worker.modified,
    worker.batch_key, engine_key, engine.key, engine.link, engine.status,
    engine.created, engine.modified and engine.<column>.

    \b
    Examples:
      jobman-nb lineage demo.sqlite -w status=RUNNING
      jobman-nb lineage demo.sqlite -w 'worker_key=gpu_w' -f key,worker.batch_key,engine.key --csv
    """
    with open_database(path) as db:
        q = build_query(where, order, None, offset, kind_of=field_kinds(db.jobman, "job"))
        db.jobman.validate_query("job", q)
        cap = None if everything or not output.for_person else SCREEN_LIMIT
        cap = limit if limit is not None else cap
        frame = db.lineage({**q, **({"limit": cap} if cap is not None else {})})
        more = db.jobman.count_ents("job", q) - len(frame) if cap is not None and len(frame) == cap else 0
        if output.for_person:
            for side in ("worker", "engine"):  # one column a side: its status, or why there is none
                link = frame[f"{side}.link"].astype(object)
                frame[side] = frame[f"{side}.status"].astype(object).where(link == "ok", "(" + link + ")")
        emit_frame(output, frame, defaults=_LINEAGE_COLUMNS, fields=split_fields(fields), more=more)


# -- export ---------------------------------------------------------------------------------
@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="PATH...")
@click.argument("out", type=click.Path())
@click.option("--from", "table", default="job", show_default=True, metavar="TABLE", help=TABLE_HELP)
@click.option("--where", "-w", multiple=True, metavar="EXPR", help=WHERE_HELP)
@click.option("--chunksize", default=50_000, show_default=True, type=click.IntRange(min=1),
              help="Records read per chunk (bounds memory).")
@click.option("--partition-by", default="db,month", show_default=True, metavar="A,B",
              help="Dataset only: Hive partition columns (db, year, month, day, or a text column); '' for none.")
@click.option("--lineage", is_flag=True, help="Dataset only: add each job's worker.* and engine.* columns.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def export(paths: tuple[str, ...], out: str, table: str, where: tuple[str, ...], chunksize: int,
           partition_by: str, lineage: bool, force: bool) -> None:
    """Export job tables to OUT: one .parquet or .csv file, or a partitioned Parquet dataset.

    JSON is expanded to dotted columns. Records are streamed in chunks with a
    progress bar on stderr, so memory stays bounded for any size of database.

    \b
    OUT ending in .parquet or .csv: one file from one PATH (any --from TABLE).
    OUT without a suffix: a directory holding a Hive-partitioned Parquet
    dataset of the jobman jobs of every PATH (db=<file stem>/month=YYYY-MM/),
    one schema across all files, for Dask, DuckDB or pandas:
      jobman-nb export cluster_a.sqlite cluster_b.sqlite jobs/
    """
    target = Path(out)
    suffix = target.suffix.lower()
    q = build_query(where)
    if suffix == "" or out.endswith(("/", "\\")):
        if table != "job":
            raise UsageProblem("a partitioned dataset holds jobman jobs; --from works with a .parquet or .csv OUT")
        from ..export import export_parquet

        columns = [c.strip() for c in partition_by.split(",") if c.strip()]
        summary = export_parquet(list(paths), target, query=q, chunksize=chunksize, partition_by=columns,
                                 lineage=lineage, overwrite=force, progress=None)
        click.echo(f"wrote {summary['jobs']:,} jobs from {len(paths)} database(s) to {out} "
                   f"({summary['files']} files{', by ' + ', '.join(columns) if columns else ''})", err=True)
        return
    kind = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}.get(suffix)
    if kind is None:
        raise UsageProblem(f"OUT must end in .parquet or .csv, or have no suffix (a dataset directory), got {out!r}")
    if len(paths) > 1:
        raise UsageProblem(f"{len(paths)} databases go to a dataset directory (OUT without a suffix), "
                            f"not to one {suffix} file")
    if lineage:
        raise UsageProblem("--lineage needs a dataset directory OUT (no suffix)")
    if target.exists() and not force:
        raise click.ClickException(f"{out} exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise click.ClickException(f"no directory {target.parent} to write {target.name} into")
    with open_database(paths[0]) as db:
        dao, ent_type = resolve(db, table)
        q = build_query(where, kind_of=field_kinds(dao, ent_type))
        dao.validate_query(ent_type, q)
        from ..export import export_file

        n = export_file(dao, ent_type, target, query=q, kind=kind, chunksize=chunksize)
    click.echo(f"wrote {n:,} records to {out}", err=True)
