"""A training script written in MLflow's idiom, for the parity test (tests/test_mlflow_parity.py).

Run as ``python mlflow_style_training.py mlflow|cairn OUT.json``: the first argument picks
the import (the only line that differs), the rest is what an MLflow user writes. It prints
nothing; it writes the ids and results the test checks to OUT.json.
"""

import json
import os
import sys

if sys.argv[1] == "mlflow":
    import mlflow
else:
    import cairn as mlflow

import pandas as pd
from matplotlib.figure import Figure
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)

mlflow.set_experiment("parity")
with mlflow.start_run(run_name="train", tags={"team": "ml"}) as run:
    mlflow.log_params({"C": 0.5, "max_iter": 300})
    mlflow.log_param("solver", "lbfgs")
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.set_tags({"stage": "dev", "scratch": "yes"})
    mlflow.set_tag("owner", "me")
    mlflow.delete_tag("scratch")

    mlflow.log_dict({"C": 0.5, "features": list(X.columns)}, "config.json")
    mlflow.log_text("trained on iris", "notes/readme.txt")
    with open("local.txt", "w") as f:
        f.write("a local file")
    mlflow.log_artifact("local.txt", artifact_path="files")
    os.remove("local.txt")  # the run keeps its copy
    figure = Figure()
    figure.subplots().plot([3, 2, 1])
    mlflow.log_figure(figure, "plots/loss.png")
    mlflow.log_table(pd.DataFrame({"k": [1, 2], "v": ["a", "b"]}), "table.json")

    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("inner", 1.0)

    model = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
    mlflow.log_metrics({"accuracy": model.score(X, y), "f1": 0.9})
    mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))

with mlflow.start_run(run_name="other"):
    mlflow.log_params({"C": 1.0})
    mlflow.log_metric("accuracy", 0.5)

found = mlflow.search_runs(filter_string="params.C = '0.5'", order_by=["metrics.accuracy DESC"])
ranked = mlflow.search_runs(order_by=["metrics.accuracy DESC"])
version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "parity-iris")
loaded = mlflow.pyfunc.load_model(f"models:/parity-iris/{version.version}")

with open(sys.argv[2], "w") as f:
    json.dump(
        {
            "run_id": run.info.run_id,
            "child_id": child.info.run_id,
            "last": mlflow.last_active_run().info.run_id,
            "found": list(found["run_id"]),
            "ranked": list(ranked["tags.mlflow.runName"]),
            "found_params": sorted(c for c in found.columns if c.startswith("params.")),
            "version": int(version.version),
            "predictions": [int(p) for p in loaded.predict(X.head(5))],
        },
        f,
    )
