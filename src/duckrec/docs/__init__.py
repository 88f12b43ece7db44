"""The docs site: lineage, a page per node, runs and result pages (site.py); the command that
writes and serves it is duckrec.tasks.docs."""
