"""duckrec: dbt-style SQL + Python builds on DuckDB, for recommendation."""
__version__ = "0.1.0"
