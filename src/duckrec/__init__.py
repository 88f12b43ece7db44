"""duckrec: dbt-style SQL + Python builds on DuckDB, for recommendation.

The public Python API (the rest is the engine's, laid out in docs/conventions.md):
- duckrec.warehouse.readers.open_reader(path): a read-only connection to the published warehouse
- duckrec.bi.dialect: the duckrec:// SQLAlchemy dialect (an entry point of the package)
- duckrec.ml: the models' library the Python models import
- duckrec.cli.main(argv): the command line (`duckrec`, `python -m duckrec.cli`)
"""
__version__ = "0.1.0"
