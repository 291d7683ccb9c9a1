"""Train a classifier on the breast-cancer table in the `training` repo; record a run.

Input: every CSV under $CAIRN_PFS/training (scikit-learn's Wisconsin breast-cancer
table, 30 numeric columns plus `target`). Output: $CAIRN_PFS/out/model.skops, a
scikit-learn pipeline (standard scaling + logistic regression) saved with skops.
The run: params (C, max_iter, rows), a learning curve (`val_accuracy` at steps = the
number of training rows used) and the final held-out `accuracy` and `f1`.
"""

import glob
import os

import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cairn

pfs = os.environ["CAIRN_PFS"]
files = sorted(glob.glob(f"{pfs}/training/**/*.csv", recursive=True))
frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
features, target = frame.drop(columns="target"), frame["target"]
x_train, x_test, y_train, y_test = train_test_split(
    features, target, test_size=0.25, random_state=0, stratify=target
)
c, max_iter = float(os.environ.get("C", "1.0")), int(os.environ.get("MAX_ITER", "500"))
cairn.log_params({"C": c, "max_iter": max_iter, "rows": len(frame), "files": len(files)})


def fit(x, y):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter)).fit(x, y)


for share in (0.25, 0.5, 0.75, 1.0):
    rows = max(20, int(len(x_train) * share))
    partial = fit(x_train.iloc[:rows], y_train.iloc[:rows])
    cairn.log_metric("val_accuracy", accuracy_score(y_test, partial.predict(x_test)), step=rows)

model = fit(x_train, y_train)
predicted = model.predict(x_test)
cairn.log_metrics({"accuracy": accuracy_score(y_test, predicted), "f1": f1_score(y_test, predicted)})
sio.dump(model, f"{pfs}/out/model.skops")
print(f"trained on {len(x_train)} rows from {len(files)} files")
