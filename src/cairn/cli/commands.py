"""Where every ``cairn`` command lives: the one table the CLI reads to load it lazily.

``cairn --help``, ``cairn VERB --help`` and ``cairn --version`` list or print from these
tables alone, without importing a command module (each pulls in the library: the catalog,
SQLAlchemy, pydantic...); running ``cairn VERB NOUN`` imports only ``NOUN``'s module.

``VERBS`` maps each verb group (``list``, ``create``...) to its help. ``COMMANDS`` maps
``(verb, noun)`` to ``(module, help)``: the module under ``cairn.cli`` whose import
registers the command (``@groups[verb].command(noun)``, or ``@app.command(verb)`` for a
command without a noun, whose key is ``(verb, None)``), and the first paragraph of the
command's help on one line, as the listings show it. A test checks the table against what
the modules register, so a command added to a module and not here (or the reverse), or a
help changed in one place only, fails.

The order is the listings' order: the modules' import order, then their definition order.
"""

from __future__ import annotations

__all__ = ["COMMANDS", "VERBS"]

VERBS: dict[str, str] = {
    "create": "Create a repo, branch, pipeline, secret, monitor or token.",
    "list": "List repos, branches, commits, files, pipelines, secrets, jobs, datums, runs, "
    "models, deployments, monitors, events or transactions.",
    "inspect": "Show one repo, branch, commit, file, pipeline, job, datum, run, model, "
    "deployment or monitor.",
    "delete": "Delete a repo, branch, commit, file, pipeline, job, secret, monitor or transaction.",
    "put": "Put files into a repo.",
    "get": "Get files out of a repo.",
    "glob": "Match files with a glob pattern.",
    "diff": "Compare two commits or two model versions.",
    "explain": "Explain a logged prediction back to the data that made its model.",
    "copy": "Copy files between commits without copying bytes.",
    "start": "Start a commit, a transaction or a pipeline.",
    "finish": "Finish a commit or a transaction.",
    "wait": "Wait for a commit or job to finish.",
    "update": "Update a pipeline or a monitor.",
    "stop": "Stop (pause) a pipeline, or end a running job.",
    "next": "Take the next datum (inside a transform with datum_batching).",
    "compare": "Compare runs side by side.",
    "plot": "Plot runs' metrics to a PNG file.",
    "register": "Register a model version.",
    "set": "Set a model alias or a deployment's traffic policy.",
    "rollback": "Move a model alias or a deployment's traffic policy back.",
    "revoke": "Revoke a token.",
    "rerun": "Run a pipeline again although its last job failed.",
    "validate": "Check a pipeline spec offline.",
    "draw": "Draw the pipeline DAG as text.",
    "edit": "Edit a pipeline's spec in $EDITOR.",
    "squash": "Squash a commit into its children.",
    "restart": "Run a failed datum once more.",
    "subscribe": "Print each new commit of a branch as it lands.",
}

COMMANDS: dict[tuple[str, str | None], tuple[str, str]] = {
    # -- without a noun ---------------------------------------------------------------------
    ("init", None): (
        "admin_commands",
        "Create an empty store in ./.cairn (or CAIRN_HOME); read commands need one.",
    ),
    ("gc", None): (
        "admin_commands",
        "Remove chunks, packs, tree nodes and logs that no commit, branch or job reaches.",
    ),
    ("fsck", None): (
        "admin_commands",
        "Verify every hash and reference in the store; exit 1 if anything is wrong.",
    ),
    ("monitor", None): (
        "monitor_commands",
        "Compare a model's logged traffic with its training data: drift per feature, of its "
        "predictions and, with --labels, its metric over time.",
    ),
    ("replay", None): (
        "audit_commands",
        "Send a deployment's logged traffic to a candidate model offline (no live request is "
        "touched) and compare: agreement with what production answered, the confusion of the "
        "two (classes) or numeric deltas, and with --labels the metric of both.",
    ),
    ("logs", None): (
        "pipeline_commands",
        "Print the logs of a pipeline's latest job, a job, or one datum.",
    ),
    ("lineage", None): (
        "pipeline_commands",
        "Upstream and downstream commits, where one output file came from, or (``lineage "
        "model NAME@ALIAS``) the training job, data, code, environment and run of a model.",
    ),
    ("run", None): (
        "pipeline_commands",
        "Keep pipelines current as commits arrive from other processes, and tick the "
        "monitoring rules (on their schedule and after each prediction-log commit); Ctrl-C "
        "stops.",
    ),
    ("serve", None): (
        "serve_commands",
        "Serve a model over MLflow's scoring protocol and the Open Inference Protocol V2.",
    ),
    ("server", None): (
        "server_commands",
        "Serve the store to a team over HTTP(S) until Ctrl-C: every command and the SDK talk "
        "to it when CAIRN_URL or a saved context names it; it runs pipelines and monitors.",
    ),
    ("console", None): (
        "server_commands",
        "Serve the web console over this store (or CAIRN_URL's server) until Ctrl-C: the "
        "DAG, repos and files, lineage, jobs, runs, models and deployments, monitoring.",
    ),
    ("s3-gateway", None): (
        "gateway_commands",
        "Serve the S3 API until Ctrl-C: bucket = repo, key = BRANCH-or-COMMIT/PATH.",
    ),
    ("version", None): (
        "server_commands",
        "Print the version of this cairn and, when it talks to a server, the server's.",
    ),
    ("auth", None): (
        "auth_commands",
        "Tokens and roles on a cairn server: activate, login, whoami, set, get, check.",
    ),
    ("create", "token"): (
        "auth_commands",
        "Create a token for USER (clusterAdmin); prints it once, alone on the last line.",
    ),
    ("create", "s3-key"): (
        "auth_commands",
        "Create an S3 access key for USER (clusterAdmin); prints its id, then its secret once.",
    ),
    ("list", "s3-key"): (
        "auth_commands",
        "List S3 access keys (never their secrets), for a clusterAdmin.",
    ),
    ("revoke", "s3-key"): (
        "auth_commands",
        "Revoke an S3 access key (its id); it stops working at once.",
    ),
    ("list", "token"): (
        "auth_commands",
        "List tokens (never their text): yours, or everyone's for a clusterAdmin.",
    ),
    ("revoke", "token"): (
        "auth_commands",
        "Revoke a token (its id, or its text); it stops working at once.",
    ),
    ("reproduce", None): (
        "history_commands",
        "Run a finished job's datums again into scratch from its recorded inputs, spec version "
        "and code; report each output file identical (BLAKE3) or not, and how the environment "
        "changed. Exit 0 only when every file is identical; nothing is committed.",
    ),
    ("delete", "commit"): (
        "history_commands",
        "Delete a commit no commit has as parent, and the commits pipelines made from it (with "
        "their jobs), as pachctl delete commit: branches at them move to their parents.",
    ),
    ("squash", "commit"): (
        "history_commands",
        "Remove a commit from inside its history, with the commits pipelines made from it, as "
        "pachctl squash commit: its children take its parent and keep their own data.",
    ),
    ("subscribe", "commit"): (
        "history_commands",
        "Print each commit of a branch as it is finished, oldest first (with --new only those "
        "made from now on), until interrupted (Ctrl-C).",
    ),
    ("stop", "job"): (
        "history_commands",
        "End a running job: it fails as stopped, writes no output, starts no more datums.",
    ),
    ("delete", "job"): (
        "history_commands",
        "Delete a finished job's records and logs, and its output commit with what pipelines "
        "made from it (delete commit's rules).",
    ),
    ("inspect", "datum"): (
        "history_commands",
        "Show one datum of a job: state, attempts, exit code, duration, bytes, input files, "
        "the node it ran on.",
    ),
    ("restart", "datum"): (
        "history_commands",
        "Run a failed job's failed datum once more with the pipeline's current code over the "
        "job's inputs; once none of its datums is failed, the pipeline runs those inputs again.",
    ),
    ("extract", None): (
        "history_commands",
        "Write the whole store (catalog rows and objects) to one file, as pachctl extract; a "
        "deterministic tar.gz (cairn.data.archive) that restore loads into an empty store.",
    ),
    ("restore", None): (
        "history_commands",
        "Load a file written by extract into this store, which must be empty (cairn init), as "
        "pachctl restore.",
    ),
    ("port-forward", None): (
        "pachctl_commands",
        "Not needed: pachctl port-forward reaches pachd inside Kubernetes; cairn server "
        "listens on its own port.",
    ),
    ("deploy", None): (
        "pachctl_commands",
        "Not needed: pachctl deploy installs Pachyderm on Kubernetes; cairn is pip install "
        "and cairn init (or cairn server for a team).",
    ),
    ("config", None): (
        "config_commands",
        "Save, choose and list contexts: the cairn servers to talk to (as pachctl's).",
    ),
    # -- data: repos, branches, commits, files ----------------------------------------------
    ("create", "repo"): ("data_commands", "Create a new, empty repo."),
    ("list", "repo"): ("data_commands", "List every repo."),
    ("inspect", "repo"): ("data_commands", "Show a repo's type, branches and size."),
    ("delete", "repo"): (
        "data_commands",
        "Delete a repo (refused while a pipeline reads it, unless --force).",
    ),
    ("create", "branch"): ("data_commands", "Create a branch, or move it to --head."),
    ("list", "branch"): ("data_commands", "List a repo's branches."),
    ("inspect", "branch"): ("data_commands", "Show a branch's head."),
    ("delete", "branch"): (
        "data_commands",
        "Delete a branch name (its commits stay reachable by id).",
    ),
    ("start", "commit"): (
        "data_commands",
        "Open a commit; later puts go into it until `finish commit`. Prints its id.",
    ),
    ("finish", "commit"): ("data_commands", "Finish an open commit; pipelines that read it run."),
    ("start", "transaction"): (
        "data_commands",
        "Open a transaction: create/delete branch and finish commit wait for its finish. "
        "Prints its id.",
    ),
    ("finish", "transaction"): (
        "data_commands",
        "Make a transaction's changes at once; pipelines then see them together.",
    ),
    ("delete", "transaction"): ("data_commands", "Drop a transaction and the changes it recorded."),
    ("list", "transaction"): (
        "data_commands",
        "List transactions: id, state, and the changes each recorded.",
    ),
    ("list", "commit"): (
        "data_commands",
        "List commits, newest first (a branch's history when a branch is named).",
    ),
    ("inspect", "commit"): ("data_commands", "Show a commit with its provenance."),
    ("wait", "commit"): (
        "data_commands",
        "Block until a commit is finished and the jobs it starts downstream are done; exit 1 "
        "naming a job that did not succeed.",
    ),
    ("put", "file"): (
        "data_commands",
        "Put files into a commit (overwrite by default, -a to append).",
    ),
    ("get", "file"): (
        "data_commands",
        "Write a file to stdout or -o; with -r, a folder into the -o folder.",
    ),
    ("list", "file"): ("data_commands", "List a folder's files."),
    ("glob", "file"): ("data_commands", "List the files and folders a glob pattern matches."),
    ("inspect", "file"): (
        "data_commands",
        "Show a file's size, hash, chunks and the datum that wrote it.",
    ),
    ("diff", "file"): ("data_commands", "Files added, modified and deleted between two commits."),
    ("diff", "model"): (
        "audit_commands",
        "What changed between two model versions: training files added, removed and modified "
        "(sizes, table rows), code, environment, params, metrics and signature, from the two "
        "training jobs' recorded input commits.",
    ),
    ("explain", "prediction"): (
        "audit_commands",
        "Show one logged prediction and where its answer came from: inputs, outputs, latency, "
        "the deployment revision, route and model version that answered, that version's "
        "training data, code, environment and run, the drift verdict of its window and the "
        "monitor events around it.",
    ),
    ("delete", "file"): (
        "data_commands",
        "Delete a file or folder (in a new commit, or the open one).",
    ),
    ("copy", "file"): (
        "data_commands",
        "Copy a file or folder; the copy shares the original's chunks.",
    ),
    # -- deployments ---------------------------------------------------------------------------
    ("set", "traffic"): (
        "deploy_commands",
        "Change a deployment's traffic policy; running servers apply it without a restart.",
    ),
    ("list", "deployment"): (
        "deploy_commands",
        "List deployments with their routes, shadows and policy revision.",
    ),
    ("inspect", "deployment"): (
        "deploy_commands",
        "Show a deployment: its policy, the versions its aliases reach now, its history.",
    ),
    ("rollback", "deployment"): (
        "deploy_commands",
        "Restore the policy in force before the current one (as a new revision); again goes "
        "one further back.",
    ),
    # -- monitoring rules and events -------------------------------------------------------
    ("create", "monitor"): (
        "loop_commands",
        "Create a monitoring rule; `cairn run` then checks it and runs its loop.",
    ),
    ("update", "monitor"): (
        "loop_commands",
        "Replace a monitoring rule (a cycle in progress finishes with its old version).",
    ),
    ("list", "monitor"): (
        "loop_commands",
        "List monitoring rules with their model, action and where their loop is.",
    ),
    ("inspect", "monitor"): (
        "loop_commands",
        "Show a monitoring rule, its loop's state, the current cycle and its last events.",
    ),
    ("delete", "monitor"): (
        "loop_commands",
        "Delete a monitoring rule and its loop state (its events stay).",
    ),
    ("list", "event"): (
        "loop_commands",
        "List lifecycle events (alias moves, traffic changes, monitors' steps), oldest first.",
    ),
    # -- models ------------------------------------------------------------------------------
    ("register", "model"): (
        "model_commands",
        "Register a model file or folder as the model's next version.",
    ),
    ("list", "model"): ("model_commands", "List models, or with NAME the versions of one model."),
    ("inspect", "model"): (
        "model_commands",
        "Show one model version: its source commit, flavor, trust, signature and run.",
    ),
    ("set", "alias"): (
        "model_commands",
        "Point a model's alias at a version (create or move it).",
    ),
    ("delete", "alias"): (
        "model_commands",
        "Remove a model's alias (its history stays; rollback brings it back).",
    ),
    ("rollback", "alias"): (
        "model_commands",
        "Move a model's alias back to the version it named before its last move.",
    ),
    # -- pipelines, secrets, jobs, datums ----------------------------------------------------
    ("create", "pipeline"): (
        "pipeline_commands",
        "Create the pipelines in a spec file and run them over existing data; exit 1 naming "
        "a job that failed (--no-wait: leave the jobs to `cairn run` or the server).",
    ),
    ("update", "pipeline"): (
        "pipeline_commands",
        "Replace pipelines' specs; unchanged datums are skipped unless --reprocess. Exits 1 "
        "naming a job that failed, as create pipeline.",
    ),
    ("rerun", "pipeline"): (
        "pipeline_commands",
        "Run a pipeline again for its current inputs although its last job failed (its "
        "code was missing and is there now); exit 1 naming a job that failed.",
    ),
    ("list", "pipeline"): (
        "pipeline_commands",
        "List pipelines with their inputs and state; a pipeline whose stored spec cannot be "
        "read is listed as broken, with the error.",
    ),
    ("inspect", "pipeline"): (
        "pipeline_commands",
        "Show a pipeline's spec and state (secret values masked as ***).",
    ),
    ("delete", "pipeline"): (
        "pipeline_commands",
        "Delete a pipeline, its jobs and its output repo (also a broken one).",
    ),
    ("create", "secret"): (
        "pipeline_commands",
        "Store a secret for transform.secrets, like kubectl create secret generic; its values "
        "stay in the store folder's secrets.json (mode 0600), never in a spec or the catalog.",
    ),
    ("list", "secret"): ("pipeline_commands", "List secrets with their keys (never their values)."),
    ("delete", "secret"): (
        "pipeline_commands",
        "Delete a secret; jobs of pipelines that name it fail until it is created again.",
    ),
    ("start", "pipeline"): (
        "pipeline_commands",
        "Resume a stopped pipeline (and catch up on its inputs).",
    ),
    ("stop", "pipeline"): (
        "pipeline_commands",
        "Pause a pipeline: new input commits wait until `start pipeline`.",
    ),
    ("list", "job"): ("pipeline_commands", "List jobs, newest first."),
    ("inspect", "job"): (
        "pipeline_commands",
        "Show a job's state, datum counts, durations and bytes.",
    ),
    ("wait", "job"): (
        "pipeline_commands",
        "Block until a job is done; exit 1 if it did not succeed.",
    ),
    ("list", "datum"): (
        "pipeline_commands",
        "List a job's datums with their state and input files, or (-f SPEC) the datums a spec "
        "would make over its inputs now, before it is created.",
    ),
    ("next", "datum"): (
        "pipeline_commands",
        "Finish the datum in progress and print the next datum's id; exit 1 when none is left.",
    ),
    ("validate", "pipeline"): (
        "pachctl_commands",
        "Check a spec file offline, as pachctl validate pipeline: the fields, their types and "
        "the input tree; exit 1 naming the first wrong field. Nothing is stored.",
    ),
    ("draw", "pipeline"): (
        "pachctl_commands",
        "Draw the DAG as text: each input repo, the pipelines that read it, their outputs.",
    ),
    ("edit", "pipeline"): (
        "pachctl_commands",
        "Open a pipeline's spec in $EDITOR (as YAML) and update the pipeline with what is "
        "saved; an unchanged file changes nothing. The transform keeps running in the folder "
        "its spec was created from.",
    ),
    # -- runs ----------------------------------------------------------------------------------
    ("list", "run"): ("run_commands", "List runs newest first, with their final metrics."),
    ("inspect", "run"): (
        "run_commands",
        "Show a run (id, id prefix or name): params, final metrics, tags, links, artifacts.",
    ),
    ("compare", "run"): (
        "run_commands",
        "Compare runs side by side: params (* marks those that differ), then final metrics.",
    ),
    ("plot", "metric"): (
        "run_commands",
        "Plot a metric against its step, one line per run, to a PNG file.",
    ),
}
