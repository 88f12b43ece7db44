"""ml.item_clusters: interests for a catalogue without labels. The items' vectors in the LM's
item space (ml.item_embeddings) grouped into var interests.clusters clusters by spherical
k-means, seeded by var seed (duckrec.ml.clusters); each cluster is named by its
var interests.typical_items items nearest the centre (their titles). Another (item_id,
embedding) table, such as text embeddings, plugs in by replacing the one ref below.
features.item_interests uses these clusters where items carry too few genres."""
import numpy as np
import polars as pl

from duckrec.ml.clusters import cluster_items, cluster_labels


def model(dbt, session):
    dbt.config(materialized="table")
    options = dbt.var("interests", {}) or {}
    k = int(options.get("clusters", 30))
    embeddings = dbt.ref("item_embeddings").pl().sort("item_id")
    titles = dbt.ref("items").pl().select("item_id", "title")
    if embeddings.height == 0:
        return pl.DataFrame(schema={"item_id": pl.Int64, "cluster": pl.Int32, "similarity": pl.Float64,
                                    "label": pl.Utf8})
    vectors = np.stack(embeddings["embedding"].to_numpy())
    clusters, similarity = cluster_items(vectors, k, int(dbt.var("seed", 42)))
    names = embeddings.select("item_id").join(titles, on="item_id", how="left", maintain_order="left") \
        .select(pl.coalesce("title", pl.format("item {}", "item_id")))[:, 0].to_numpy()
    labels = cluster_labels(clusters, similarity, names, int(options.get("typical_items", 3)))
    dbt.log(f"item_clusters: {embeddings.height} items in {len(labels)} clusters of the LM's item embeddings")
    return pl.DataFrame({
        "item_id": embeddings["item_id"].cast(pl.Int64),
        "cluster": pl.Series(clusters, dtype=pl.Int32),
        "similarity": pl.Series(similarity, dtype=pl.Float64),
        "label": pl.Series([labels[int(c)] for c in clusters], dtype=pl.Utf8),
    })
