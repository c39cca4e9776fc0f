"""``jobman-nb demo``: write a realistic, reproducible demo history."""

from __future__ import annotations

import click

from ._app import UsageProblem, main


@main.command()
@click.argument("path", default="demo.sqlite", type=click.Path(dir_okay=False))
@click.option("--jobs", "n_jobs", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Number of jobman jobs.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Random seed.")
@click.option("--days", default=7.0, show_default=True, type=click.FloatRange(min=0, min_open=True, max=3650),
              help="Length of the history in days.")
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.option("--events", is_flag=True, help="Turn history on and write every status change as events "
                                             "(read them with 'jobman-nb events PATH').")
@click.option("--job-dirs", "job_dirs_root", type=click.Path(file_okay=False), default=None,
              help="Write the job directories under DIR (default: PATH's name with .jobs, beside it).")
@click.option("--no-job-dirs", is_flag=True, help="Write no job directories (for very large demos).")
def demo(path: str, n_jobs: int, seed: int, days: float, force: bool, events: bool, job_dirs_root: str | None,
         no_job_dirs: bool) -> None:
    """Write a realistic, reproducible demo history to PATH (default demo.sqlite).

    The file holds jobman's tables, worker and engine tables linked as jobman
    links them, batches and kvps; beside it, a directory per job as jobman
    leaves them (logs with the failures' causes, checkpoints, outputs). The
    recorded dirs are cluster paths under /scratch: read them with the path
    map the command prints. The same seed gives the same records and dirs.
    """
    from ..demo import make_history

    if no_job_dirs and job_dirs_root:
        raise UsageProblem("--job-dirs and --no-job-dirs exclude each other")
    job_dirs = False if no_job_dirs else (job_dirs_root or True)
    summary = make_history(path, n_jobs=n_jobs, seed=seed, days=days, overwrite=force, progress=None,
                           events=events, job_dirs=job_dirs)
    click.echo(f"wrote {summary['path']}: {summary['jobs']:,} jobman jobs (seed {summary['seed']}) "
               f"in {summary['seconds']:.1f} s")
    click.echo(f"created {summary['first_created']} .. modified {summary['last_modified']}")
    if summary["job_dirs"]:
        click.echo(f"job dirs: {summary['dirs']:,} under {summary['job_dirs']} "
                   f"(path map: --path-map /scratch={summary['job_dirs']})")
    click.echo("statuses: " + ", ".join(f"{s} {n:,}" for s, n in summary["statuses"].items()))
    width = max(map(len, summary["tables"]))
    for table, rows in summary["tables"].items():
        click.echo(f"  {table:<{width}}  {rows:>10,}")


