"""Throwaway copies of the duckrec project pointed at generated seed files.

`make_project(tmp_path, ratings=..., movies=..., tags=..., vars=...)` writes the CSVs,
a project.yml that is the repo's with its seed files pointed at them (the way a user points
the project at their own export), and links the repo's sql/, python_models/, models/ and
tests/data_tests/. The whole project builds, the language model included, with a tiny
network (TINY_LM) so that a build stays fast.
`build(project)` runs `duckrec build` in-process; `connect(project)` opens the warehouse.
"""
from __future__ import annotations

import csv
import io
import math
import os
import random
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import duckdb
import yaml

from duckrec.cli import main

REPO = Path(__file__).resolve().parents[2]
RATINGS_HEADER = ["userId", "movieId", "rating", "timestamp"]
MOVIES_HEADER = ["movieId", "title", "genres "]  # the real file's trailing space
TAGS_HEADER = ["userId", "movieId", "tag", "timestamp"]
DAY = 86_400
T0 = 1_500_000_000  # 2017-07-14, any fixed epoch will do
TINY_LM = {"embedding_dim": 8, "hidden_dim": 8, "epochs": 1, "batch_size": 64, "candidates": 30, "mc_passes": 3}


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    """CRLF, like the MovieLens files."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return path


def make_project(root: Path, ratings: list[tuple] | str, movies: list[tuple], tags: list[tuple] = (),
                 vars: dict | None = None) -> Path:
    """A project in `root` whose seeds are the given rows (or, for ratings, raw file text)."""
    root = Path(root)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    if isinstance(ratings, str):
        (data / "my_ratings.csv").write_text(ratings, encoding="utf-8")
    else:
        write_csv(data / "my_ratings.csv", RATINGS_HEADER, ratings)
    write_csv(data / "my_movies.csv", MOVIES_HEADER, movies)
    write_csv(data / "my_tags.csv", TAGS_HEADER, list(tags))
    write_csv(data / "my_links.csv", ["movieId", "imdbId", "tmdbId"], [(m[0], f"{m[0]:07d}", m[0]) for m in movies])

    config = yaml.safe_load((REPO / "project.yml").read_text(encoding="utf-8"))
    for seed, file in (("ratings", "my_ratings.csv"), ("movies", "my_movies.csv"),
                       ("tags", "my_tags.csv"), ("links", "my_links.csv")):
        config["seeds"][seed]["+file"] = f"data/{file}"
    config["vars"]["lm"] = {**config["vars"].get("lm", {}), **TINY_LM}
    config["vars"].update(vars or {})
    for target in config["targets"].values():
        target["warehouse"] = "warehouse.duckdb"
    (root / "project.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    for rel in ("sql", "python_models", "models", "tests/data_tests", "vars_schema.yml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (root / rel).exists():
            (root / rel).symlink_to(REPO / rel, target_is_directory=True)
    return root


class Build:
    def __init__(self, code: int, out: str):
        self.code, self.out = code, out

    def __repr__(self) -> str:
        return f"Build(code={self.code})\n{self.out}"


def build(project: Path, *args: str) -> Build:
    """`duckrec build --project-dir project [args]`, output captured."""
    buffer = io.StringIO()
    env_warehouse = os.environ.pop("DUCKREC_WAREHOUSE", None)
    try:
        with redirect_stdout(buffer), redirect_stderr(buffer):
            code = main(["build", "--project-dir", str(project), *args])
    finally:
        if env_warehouse is not None:
            os.environ["DUCKREC_WAREHOUSE"] = env_warehouse
    return Build(code, buffer.getvalue())


def connect(project: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(Path(project) / "warehouse.duckdb"), read_only=True)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def generated_dataset(n_users: int = 60, n_items: int = 80, seed: int = 7):
    """Ratings, movies and tags of MovieLens' shape and untidiness: a bracketed year in most
    titles, '(no genres listed)', ratings for an item missing from movies, mixed-case tags,
    equal timestamps inside a user's sequence, and users with fewer than 3 events."""
    rng = random.Random(seed)
    genres = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Children"]
    movies = []
    for item in range(1, n_items + 1):
        picked = rng.sample(genres, rng.randint(1, 3))
        title = f"Movie {item}" + (f" ({1950 + item % 70})" if item % 9 else "")
        movies.append((item * 10, title, "(no genres listed)" if item % 31 == 0 else "|".join(picked)))
    weights = [1 / math.sqrt(i) for i in range(1, n_items + 1)]
    ratings = []
    for user in range(1, n_users + 1):
        n = 2 if user % 17 == 0 else rng.randint(3, 25)
        items = set()
        while len(items) < n:
            items.add(rng.choices(range(1, n_items + 1), weights)[0] * 10)
        t = T0 + rng.randint(0, 400) * DAY
        for item in sorted(items, key=lambda _: rng.random()):
            t += rng.choice([0, 60, 3600, DAY])
            ratings.append((user, item, rng.choice([1, 2, 2.5, 3, 3.5, 4, 4.5, 5]), t))
    ratings.append((1, 99_999, 4.0, T0))  # an item the catalogue does not have
    tags = [(2, 10, "Dark Comedy", T0), (3, 10, "dark comedy ", T0 + 1), (4, 20, "classic", T0)]
    return ratings, movies, tags
