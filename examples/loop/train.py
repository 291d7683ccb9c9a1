"""Fit the cancer classifier on every CSV in the `training` repo; record a run.

Input: every CSV under $CAIRN_PFS/training, recursively (scikit-learn's Wisconsin
breast-cancer columns: 30 numeric features plus `target`, 0 = malignant, 1 = benign). The
monitoring loop adds the production windows it commits under /production/. Output:
$CAIRN_PFS/out/model.skops, a scikit-learn pipeline (standard scaling + logistic
regression) saved with skops. The run: params (C, rows, files, malignant share) and the
5-fold cross-validated accuracy on the training rows.
"""

import glob
import os

import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cairn

pfs = os.environ["CAIRN_PFS"]
files = sorted(glob.glob(f"{pfs}/training/**/*.csv", recursive=True))
frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
features, target = frame.drop(columns="target"), frame["target"].astype(int)
c = float(os.environ.get("C", "1.0"))
model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
cv = cross_val_score(model, features, target, cv=folds)
cairn.log_params(
    {
        "C": c,
        "rows": len(frame),
        "files": len(files),
        "malignant_share": float((target == 0).mean()),
    }
)
cairn.log_metrics({"cv_accuracy": float(cv.mean())})
sio.dump(model.fit(features, target), f"{pfs}/out/model.skops")
names = ", ".join(os.path.relpath(f, f"{pfs}/training") for f in files)
print(f"trained on {len(frame)} rows from {names}; cv accuracy {cv.mean():.3f}")
