"""One combination of the sweep: logistic regression by SGD on the handwritten digits.

Inputs (one datum of a cross):
  $CAIRN_PFS/params/<combination>.json  {"alpha": L2 penalty, "eta0": learning rate,
                                         "epochs": passes over the training rows}
  $CAIRN_PFS/digits/digits.csv          64 pixel columns and `target` (make_data.py)
Output: $CAIRN_PFS/out/<combination>/model.skops (scaler + classifier, skops format).
Run (cairn's SDK): the params; per epoch (step = epoch) `train_loss` (log loss) and
`val_accuracy`; at the end `test_accuracy` on rows no epoch saw.
"""

import glob
import json
import os

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cairn

pfs = os.environ["CAIRN_PFS"]
[params_file] = glob.glob(f"{pfs}/params/*.json")
combination = os.path.splitext(os.path.basename(params_file))[0]
with open(params_file) as f:
    params = json.load(f)

frame = pd.read_csv(f"{pfs}/digits/digits.csv")
x, y = frame.drop(columns="target").to_numpy(float), frame["target"].to_numpy()
# 60% train, 20% validation (the per-epoch curve), 20% test (the final score); fixed
# seeds, so a rerun of a combination gives the same model.
x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
x_train, x_val, y_train, y_val = train_test_split(
    x_rest, y_rest, test_size=0.25, random_state=0, stratify=y_rest
)
scaler = StandardScaler().fit(x_train)
x_train_s, x_val_s = scaler.transform(x_train), scaler.transform(x_val)
classes = np.unique(y)
clf = SGDClassifier(
    loss="log_loss",
    alpha=params["alpha"],
    learning_rate="constant",
    eta0=params["eta0"],
    random_state=0,
)

with cairn.start_run(name=combination):
    cairn.log_params(params)
    cairn.set_tag("estimator", "SGDClassifier(loss=log_loss)")
    for epoch in range(1, params["epochs"] + 1):
        clf.partial_fit(x_train_s, y_train, classes=classes)
        cairn.log_metrics(
            {
                "train_loss": log_loss(y_train, clf.predict_proba(x_train_s), labels=classes),
                "val_accuracy": accuracy_score(y_val, clf.predict(x_val_s)),
            },
            step=epoch,
        )
    model = make_pipeline(scaler, clf)  # both steps are fitted already
    cairn.log_metric("test_accuracy", accuracy_score(y_test, model.predict(x_test)))
    os.makedirs(f"{pfs}/out/{combination}", exist_ok=True)
    sio.dump(model, f"{pfs}/out/{combination}/model.skops")
    cairn.log_artifact(f"{pfs}/out/{combination}/model.skops")
print(f"{combination}: trained on {len(x_train)} rows")
