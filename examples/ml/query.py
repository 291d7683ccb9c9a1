"""Query a running `cairn serve` with both protocols, using rows of the real table.

    python3 query.py URL mlflow ROWS.csv      one MLflow /invocations request (dataframe_split)
    python3 query.py URL v2 ROWS.csv          one Open Inference Protocol V2 infer request
    python3 query.py URL traffic ROWS.csv N   N single-row requests; counts which version answered
    python3 query.py URL flush                commit the prediction log now; print the commit

Standard library only (urllib), so it shows the wire format as a client sees it.
"""

import collections
import csv
import json
import sys
import urllib.request


def post(url: str, body: dict) -> tuple[dict, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response), dict(response.headers)


def rows(path: str) -> tuple[list[str], list[list[float]], list[int]]:
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    header, body = table[0], table[1:]
    at = header.index("target")
    columns = [h for i, h in enumerate(header) if i != at]
    data = [[float(v) for i, v in enumerate(r) if i != at] for r in body]
    return columns, data, [int(float(r[at])) for r in body]


def main() -> None:
    url, mode = sys.argv[1].rstrip("/"), sys.argv[2]
    if mode == "flush":
        print(json.dumps(post(f"{url}/admin/log/flush", {})[0]))
        return
    columns, data, labels = rows(sys.argv[3])
    if mode == "mlflow":
        body = {"dataframe_split": {"columns": columns, "data": data[:5]}}
        reply, headers = post(f"{url}/invocations", body)
        print(f"POST /invocations (dataframe_split, 5 rows) -> {reply}")
        print(f"  answered by version {headers.get('x-cairn-model-version')}; labels {labels[:5]}")
    elif mode == "v2":
        flat = [v for row in data[:5] for v in row]
        body = {
            "id": "quickstart-1",
            "inputs": [
                {"name": "input-0", "shape": [5, len(columns)], "datatype": "FP64", "data": flat}
            ],
        }
        reply, headers = post(f"{url}/v2/models/{sys.argv[4]}/infer", body)
        print(f"POST /v2/models/{sys.argv[4]}/infer (FP64 [5, {len(columns)}]) -> {reply}")
    elif mode == "traffic":
        answered: collections.Counter[str] = collections.Counter()
        for i in range(int(sys.argv[4])):
            row = data[i % len(data)]
            _, headers = post(
                f"{url}/invocations", {"dataframe_split": {"columns": columns, "data": [row]}}
            )
            answered[headers.get("x-cairn-model-version", "?")] += 1
        shares = ", ".join(f"version {v}: {n}" for v, n in sorted(answered.items()))
        print(f"{sum(answered.values())} requests, 0 failed; answered by {shares}")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
