"""Send traffic to a running `cairn serve`; the labels "arrive" into repo `labels`.

    python3 send.py URL ROWS.csv NAME [--count N] [--flip-labels]

Sends N (default: every row) single-row MLflow `/invocations` requests built from the rows
of ROWS.csv (cycled when N is larger), each with the caller's request id
`x-request-id: NAME-0001`, ... Then the truth arrives: `request_id,label` for each request
is committed to `labels@master:/NAME.csv` (`--flip-labels` inverts every label: a
labelling bug). Last, the server's prediction log is flushed, so the monitor sees the whole
batch in one commit, labels included. Prints one line: requests per answering version,
the accuracy of each version against the table's truth, the labels file and the log commit.

CAIRN_HOME names the store (the labels are committed with the Python client); the
requests use the standard library only.
"""

import argparse
import collections
import csv
import http.client
import io
import json
import os
import urllib.parse

import cairn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("rows")
    parser.add_argument("name")
    parser.add_argument("--count", type=int)
    parser.add_argument("--flip-labels", action="store_true")
    args = parser.parse_args()
    with open(args.rows, newline="") as f:
        table = list(csv.reader(f))
    header, body = table[0], table[1:]
    at = header.index("target")
    columns = [h for i, h in enumerate(header) if i != at]
    url = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    answered: collections.Counter[str] = collections.Counter()
    right: collections.Counter[str] = collections.Counter()
    labels = []
    for i in range(args.count or len(body)):
        row = body[i % len(body)]
        request_id = f"{args.name}-{i + 1:04d}"
        payload = {
            "dataframe_split": {
                "columns": columns,
                "data": [[float(v) for j, v in enumerate(row) if j != at]],
            }
        }
        conn.request(
            "POST",
            "/invocations",
            body=json.dumps(payload),
            headers={"Content-Type": "application/json", "x-request-id": request_id},
        )
        response = conn.getresponse()
        reply = json.load(response)
        if response.status != 200:
            raise SystemExit(f"{request_id}: HTTP {response.status}: {reply}")
        version = response.headers["x-cairn-model-version"]
        truth = int(float(row[at]))
        answered[version] += 1
        right[version] += reply["predictions"][0] == truth
        labels.append((request_id, 1 - truth if args.flip_labels else truth))
    client = cairn.Client.open(os.environ["CAIRN_HOME"], auto_run=False)
    text = "request_id,label\n" + "".join(f"{r},{y}\n" for r, y in labels)
    client.put_files(
        "labels",
        "master",
        [(f"/{args.name}.csv", io.BytesIO(text.encode()))],
        description=f"labels of {args.name}"
        + (" (inverted by a labelling bug)" if args.flip_labels else ""),
    )
    # A new connection: the server closes an idle keep-alive one after a few seconds, and
    # committing the labels can take that long on a loaded machine.
    conn.close()
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request(
        "POST", "/admin/log/flush", body=b"{}", headers={"Content-Type": "application/json"}
    )
    flushed = json.load(conn.getresponse())
    conn.close()
    shares = ", ".join(
        f"v{v}: {n} (accuracy {right[v] / n:.2f})" for v, n in sorted(answered.items())
    )
    flip = ", inverted" if args.flip_labels else ""
    print(
        f"{args.name}: {sum(answered.values())} requests, 0 failed; answered by {shares}; "
        f"labels -> labels@master:/{args.name}.csv{flip}; logged in commit {flushed['commit']}"
    )


if __name__ == "__main__":
    main()
