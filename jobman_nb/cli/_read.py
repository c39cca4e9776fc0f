"""Read-only commands: ``info``, ``query``, ``export``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..dao.sqlite_dao import SqliteDAO
from ..vocabulary import status_order
from ._app import TABLE_HELP, WHERE_HELP, UsageProblem, build_query, main, open_database, resolve, split_fields
from ._output import for_display

if TYPE_CHECKING:
    import pandas as pd

# -- info -----------------------------------------------------------------------------------
@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
def info(path: str) -> None:
    """List the tables in PATH (role, key, rows, time span) and count job statuses per table."""
    import pandas as pd

    from ..dao.query import quote_identifier

    with open_database(path) as db:
        listing = db.listing()
        click.echo(f"{db.path}")
        click.echo(for_display(listing).to_string(index=False))
        counts: dict[str, dict[str, int]] = {}
        for ts in db.table_sets:
            dao = db.daos[ts.prefix]
            job = dao.orms.get("job")
            if job is None or "status" not in job.columns:
                continue
            rows = db.connection.execute(f"SELECT status, count(*) FROM {quote_identifier(job.table)} "
                                         f"GROUP BY status").fetchall()
            counts[job.table] = {("NULL" if s is None else str(s)): n for s, n in rows}
        if counts:
            frame = pd.DataFrame(counts).T.fillna(0).astype("int64")
            order = status_order(frame.columns, every=False)
            frame = frame.reindex(columns=order)
            frame["total"] = frame.sum(axis=1)
            frame.index.name = "job table"
            click.echo("")
            click.echo(frame.to_string())


# -- query ----------------------------------------------------------------------------------
@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--where", "-w", multiple=True, metavar="EXPR", help=WHERE_HELP)
@click.option("--order", "-o", multiple=True, metavar="[-]FIELD",
              help="Sort by FIELD, descending with a leading '-'. Repeatable.")
@click.option("--limit", "-n", type=click.IntRange(min=0), help="At most this many records.")
@click.option("--offset", type=click.IntRange(min=0), help="Skip this many records first.")
@click.option("--fields", "-f", metavar="A,B,...", help="Only these fields (JSON paths allowed).")
@click.option("--table", "-t", default="job", show_default=True, help=TABLE_HELP)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="table: aligned text; csv: JSON expanded to dotted columns; json: the records as stored.")
def query(path: str, where: tuple[str, ...], order: tuple[str, ...], limit: int | None, offset: int | None,
          fields: str | None, table: str, fmt: str) -> None:
    """Print the records of PATH that match --where filters.

    \b
    Examples:
      jobman-nb query demo.sqlite -w status=FAILED -w 'job_spec.resources.mem_gb<=4' -o -created -n 10
      jobman-nb query demo.sqlite -w 'worker_key in cpu_w,hpc_w' -f key,status,job_spec.cfg.code --format csv
    """
    q = build_query(where, order, limit, offset, split_fields(fields))
    with open_database(path) as db:
        dao, ent_type = resolve(db, table)
        dao.validate_query(ent_type, q)
        if fmt == "json":
            records = dao.query_ents(ent_type, q)
            click.echo(json.dumps(records, indent=2, ensure_ascii=False))
            return
        df = dao.query_ents_df(ent_type, q)
        if fmt == "csv":
            click.echo(df.to_csv(index=False), nl=False)
        elif df.empty:
            click.echo("no matching records", err=True)
        else:
            click.echo(for_display(df).to_string(index=False, max_colwidth=60))


# -- export ---------------------------------------------------------------------------------
def _jsonify_nested(df: pd.DataFrame) -> pd.DataFrame:
    """CSV cells hold text: lists and dicts become JSON."""
    for name in df.columns:
        col = df[name]
        if col.dtype == object and col.map(lambda v: isinstance(v, (list, dict))).any():
            df[name] = col.map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
    return df


def _export(dao: SqliteDAO, ent_type: str, q: dict[str, Any], out: Path, kind: str, chunksize: int) -> int:
    """Stream the frames to *out* through parquet pieces, so every chunk gets one common schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    total = dao.count_ents(ent_type, q)
    with tempfile.TemporaryDirectory(prefix=".jobman-nb-export-", dir=out.parent) as tmp:
        pieces: list[Path] = []
        schemas: list[pa.Schema] = []
        with tqdm(total=total, unit="rows", desc=f"reading {dao.orms[ent_type].table}", file=sys.stderr,
                  leave=False, disable=None) as bar:
            for df in dao.iter_ents_df(ent_type, q, chunksize=chunksize, progress=False):
                if kind == "csv":
                    df = _jsonify_nested(df)
                piece = Path(tmp) / f"{len(pieces):06d}.parquet"
                table = pa.Table.from_pandas(df, preserve_index=False)
                pq.write_table(table, piece)
                pieces.append(piece)
                schemas.append(table.schema)
                bar.update(len(df))
        if not pieces:  # nothing matched: still write the columns
            empty = pa.Table.from_pandas(dao.query_ents_df(ent_type, {**q, "limit": 0}), preserve_index=False)
            pq.write_table(empty, Path(tmp) / "000000.parquet")
            pieces, schemas = [Path(tmp) / "000000.parquet"], [empty.schema]
        # Later chunks may add JSON keys (columns) or widen types: one schema for all.
        schema = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
        schema = schema.with_metadata(schemas[0].metadata)
        partial = Path(tmp) / ("out." + kind)
        writer: Any = pq.ParquetWriter(partial, schema) if kind == "parquet" else None
        try:
            for i, piece in enumerate(tqdm(pieces, desc=f"writing {out.name}", unit="chunk", file=sys.stderr,
                                           leave=False, disable=None)):
                t = pq.read_table(piece)
                for field in schema:
                    if field.name not in t.column_names:
                        t = t.append_column(field, pa.nulls(len(t), field.type))
                t = t.select(schema.names).cast(schema)
                if writer is not None:
                    writer.write_table(t)
                else:
                    t.to_pandas().to_csv(partial, mode="w" if i == 0 else "a", header=i == 0, index=False)
        finally:
            if writer is not None:
                writer.close()
        partial.replace(out)
    return total


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="PATH...")
@click.argument("out", type=click.Path())
@click.option("--table", "-t", default="job", show_default=True, help=TABLE_HELP)
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
    OUT ending in .parquet or .csv: one file from one PATH (any --table).
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
            raise UsageProblem("a partitioned dataset holds jobman jobs; --table works with a .parquet or .csv OUT")
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
        dao.validate_query(ent_type, q)
        n = _export(dao, ent_type, q, target, kind, chunksize)
    click.echo(f"wrote {n:,} records to {out}", err=True)
