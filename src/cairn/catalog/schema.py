"""Tables of the catalog: small rows only (DESIGN.md, Storage).

Times are UTC seconds since the epoch (float). ``info`` and ``spec`` columns
hold canonical JSON text: provenance details, spec bodies, statistics.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from cairn.catalog.actor import current_actor

__all__ = [
    "alias_history",
    "auth_state",
    "branches",
    "chunks",
    "commit_provenance",
    "commits",
    "datums",
    "deployment_history",
    "deployments",
    "events",
    "gc_state",
    "jobs",
    "leases",
    "metadata",
    "model_aliases",
    "model_versions",
    "models",
    "monitor_state",
    "monitor_versions",
    "monitors",
    "pins",
    "pipeline_versions",
    "role_bindings",
    "pipelines",
    "repos",
    "run_metrics",
    "run_sources",
    "runs",
    "s3_keys",
    "tokens",
]

metadata = MetaData()

repos = Table(
    "repos",
    metadata,
    Column("name", String(255), primary_key=True),
    # "user" repos take puts; "pipeline" repos are written only by their pipeline's jobs;
    # "spout" repos are a spout pipeline's output, which its process puts into.
    Column("type", String(16), nullable=False, default="user"),
    Column("description", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
)

commits = Table(
    "commits",
    metadata,
    Column("repo", String(255), primary_key=True),
    # A commit id is shared by every commit of one cause (Pachyderm's commit set).
    Column("id", String(32), primary_key=True),
    Column("parent", String(32)),
    Column("branch", String(255)),
    # Root hash of the commit's tree; NULL is the empty tree.
    Column("tree", String(64)),
    Column("state", String(16), nullable=False),  # open | finished
    Column("origin", String(16), nullable=False),  # user | auto | pipeline
    Column("description", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("finished", Float),
    Column("size", BigInteger, nullable=False, default=0),
    Column("info", Text, nullable=False, default="{}"),
    ForeignKeyConstraint(["repo"], ["repos.name"], ondelete="CASCADE"),
)
Index("commits_by_created", commits.c.repo, commits.c.created)

commit_provenance = Table(
    "commit_provenance",
    metadata,
    Column("repo", String(255), primary_key=True),
    Column("commit", String(32), primary_key=True),
    Column("input_name", String(255), primary_key=True),
    Column("input_repo", String(255), nullable=False),
    Column("input_branch", String(255), nullable=False),
    Column("input_commit", String(32), nullable=False),
)
Index("provenance_by_input", commit_provenance.c.input_repo, commit_provenance.c.input_commit)

branches = Table(
    "branches",
    metadata,
    Column("repo", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("head", String(32)),
    Column("created", Float, nullable=False),
    ForeignKeyConstraint(["repo"], ["repos.name"], ondelete="CASCADE"),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("spec", Text, nullable=False),
    # Folder the spec was created from: the transform's working directory.
    Column("spec_dir", Text, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # running | paused
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("created", Float, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("pipeline", String(255), primary_key=True),
    Column("id", String(32), primary_key=True),
    # created | running | success | failure | unrunnable
    Column("state", String(16), nullable=False),
    Column("spec_version", Integer, nullable=False),
    # Canonical JSON of {input name: commit id}: what this job read.
    Column("input_key", Text, nullable=False),
    Column("output_commit", String(32)),
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    Column("processed", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("recovered", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("bytes_in", BigInteger, nullable=False, default=0),
    Column("bytes_out", BigInteger, nullable=False, default=0),
    Column("reason", Text, nullable=False, default=""),
)
Index("jobs_by_created", jobs.c.pipeline, jobs.c.created)

datums = Table(
    "datums",
    metadata,
    Column("pipeline", String(255), primary_key=True),
    Column("job", String(32), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("hash", String(64), nullable=False),
    # success | skipped | failed | recovered
    Column("state", String(16), nullable=False),
    # JSON list of the datum's input files: name, repo, branch, commit, path, hash, size.
    Column("inputs", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("exit_code", Integer),
    Column("duration", Float, nullable=False, default=0.0),
    Column("bytes_in", BigInteger, nullable=False, default=0),
    Column("bytes_out", BigInteger, nullable=False, default=0),
    # Object key "logs/<pipeline>/<job>/<datum>": up to 358 characters, past String(255).
    Column("log", Text),
    Column("error", Text, nullable=False, default=""),
    # Where it ran: a cluster executor's node id and the hash of that node's environment
    # fingerprint (object env/<h[:2]>/<h>); "" for datums run by the local executor.
    # Added after the table: older catalogs get them, empty (Catalog's migration).
    Column("node", String(128), nullable=False, server_default="", info={"added": True}),
    Column("environment", String(64), nullable=False, server_default="", info={"added": True}),
)
Index("datums_by_hash", datums.c.pipeline, datums.c.hash)

# Where each packed chunk lives (cairn.storage.packs). Chunks stored loose, one object
# each, have no row: a miss here means "look for chunks/<h[:2]>/<h>".
chunks = Table(
    "chunks",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("pack", String(80), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
)
Index("chunks_by_pack", chunks.c.pack)

# What writers rely on, so that garbage collection spares it (cairn.catalog.pins). An
# ``epoch`` is a counter that only grows: every collection and every closed lease moves it.
# A pin: object ``key`` (``chunks/…`` for a chunk loose or packed, ``trees/…``,
# ``packs/…``) that a writer was about to reuse or write, at ``epoch``.
pins = Table(
    "pins",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)
Index("pins_by_epoch", pins.c.epoch)

# A lease: a writer (``kind`` write) or a collection (``kind`` gc) at work since ``epoch``;
# ``seen`` is renewed while it pins, and a lease silent for a day is taken for dead.
leases = Table(
    "leases",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("opened", Float, nullable=False),
    Column("seen", Float, nullable=False),
)

# One row (id 0): the current epoch. Absent in a new store and in stores made before pins
# existed, which read it as 0; ``metadata.create_all`` adds these three tables to them.
gc_state = Table(
    "gc_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
)

# -- the ML lifecycle (cairn.ml, cairn.serving) ----------------------------------------
# A run: one tracked execution (MLflow's term). Runs of pipeline jobs come from the run
# files a datum wrote into its output commit (cairn.ml.runs); ``repo``/``commit``/
# ``source`` name that file, ``job``/``datum_hash`` the datum. ``params``/``tags`` are
# canonical JSON objects; ``info`` holds input commits, code, environment, artifacts.
runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False, default=""),
    Column("experiment", String(255), nullable=False, default="default"),
    Column("state", String(16), nullable=False),  # running | finished | failed
    Column("pipeline", String(255)),
    Column("job", String(32)),
    Column("datum", String(64)),
    Column("datum_hash", String(64)),
    Column("repo", String(255)),
    Column("commit", String(32)),
    Column("source", Text),
    Column("created", Float, nullable=False),
    Column("finished", Float),
    Column("params", Text, nullable=False, default="{}"),
    Column("tags", Text, nullable=False, default="{}"),
    Column("info", Text, nullable=False, default="{}"),
)
Index("runs_by_created", runs.c.experiment, runs.c.created)
Index("runs_by_commit", runs.c.repo, runs.c.commit)

# Metric values: every logged point, in logging order (``seq``), as MLflow keeps history.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("run", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("step", BigInteger, nullable=False, default=0),
    Column("timestamp", Float, nullable=False),
    Column("value", Float, nullable=False),
    ForeignKeyConstraint(["run"], ["runs.id"], ondelete="CASCADE"),
)

# Output commits already scanned for run files, so each is read once.
run_sources = Table(
    "run_sources",
    metadata,
    Column("repo", String(255), primary_key=True),
    Column("commit", String(32), primary_key=True),
    Column("runs", Integer, nullable=False, default=0),
)

models = Table(
    "models",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

# A model version is immutable: a path in a finished commit plus how to load it.
model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("repo", String(255), nullable=False),
    Column("commit", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("flavor", String(32), nullable=False),
    # MLflow's signature JSON: {"inputs": [{"name", "type"}...], "outputs": [...]}, or "null".
    Column("signature", Text, nullable=False, default="null"),
    Column("run", String(32)),
    Column("description", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("info", Text, nullable=False, default="{}"),
    # The user's consent (--trust) that loading it may run its code (pickle, MLflow).
    # Added after the table: catalogs made before it get it, false (Catalog's migration).
    Column("trusted", Boolean, nullable=False, server_default=false(), info={"added": True}),
    ForeignKeyConstraint(["name"], ["models.name"], ondelete="CASCADE"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated", Float, nullable=False),
    ForeignKeyConstraint(["name"], ["models.name"], ondelete="CASCADE"),
)

# Every alias move, oldest first: what ``rollback`` walks back (version NULL: deleted).
# ``kind`` is set | delete | rollback: a rollback undoes one earlier move, so two rollbacks
# step back two versions instead of swinging between the last two.
alias_history = Table(
    "alias_history",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("version", Integer),
    Column("kind", String(16), nullable=False, default="set"),
    Column("time", Float, nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

# A deployment: a served endpoint and its traffic policy (cairn.serving.policy), canonical
# JSON. ``revision`` counts policy changes; servers poll it to apply changes live.
deployments = Table(
    "deployments",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("model", String(255), nullable=False),
    Column("policy", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated", Float, nullable=False),
)

deployment_history = Table(
    "deployment_history",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("policy", Text, nullable=False),
    Column("time", Float, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    # The earlier revision a rollback restored (NULL: a policy set by hand), so that a
    # second rollback goes one revision further back instead of undoing the first.
    Column("restores", Integer),
)

# Transactions (cairn.pipelines.transactions): changes recorded while one is open, made at
# once by finish. ``requests`` is a JSON list; at most one row is "open".
transactions = Table(
    "transactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("requests", Text, nullable=False, default="[]"),
)

# Events of the lifecycle (alias moves, policy changes, drift, retraining), newest last.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject", String(255), nullable=False, default=""),
    Column("info", Text, nullable=False, default="{}"),
    # Who caused it: the subject of the request's token on a server (cairn.catalog.actor),
    # NULL in embedded use and for what the server does by itself. Every insert that does
    # not say takes the current actor, so no event writer can forget it.
    Column("actor", String(255), default=lambda: current_actor.get(), info={"added": True}),
)
Index("events_by_subject", events.c.subject, events.c.time)

# -- monitoring rules and their loop (cairn.monitoring.rules, cairn.monitoring.loop) -------
# A monitor: a rule (canonical JSON) watching one model; versioned like a pipeline spec.
monitors = Table(
    "monitors",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("spec", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

monitor_versions = Table(
    "monitor_versions",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("created", Float, nullable=False),
)

# Where each monitor's loop is: ``cycle`` counts drift detections (0: none yet), ``step``
# is idle | drift | data_committed | model_trained | challenger_registered | canary |
# evaluated; ``info`` (JSON) holds what the steps so far found (window, commits, version,
# evaluation) and the last check. A step is written in the transaction of its event, so a
# crash resumes at the last step recorded.
monitor_state = Table(
    "monitor_state",
    metadata,
    Column("monitor", String(255), primary_key=True),
    Column("cycle", Integer, nullable=False, default=0),
    Column("step", String(32), nullable=False),
    Column("info", Text, nullable=False, default="{}"),
    Column("updated", Float, nullable=False),
)

# -- authentication and authorization (cairn.catalog.auth) --------------------------------
# One row (id 0) once ``cairn auth activate`` ran; absent while auth is off.
auth_state = Table(
    "auth_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("active", Boolean, nullable=False),
    Column("activated_at", Float, nullable=False),
)

# Bearer tokens, never their text: ``hash`` is HMAC-SHA256 keyed by the row's own random
# ``salt`` over the whole token (hex); ``hint`` is its last 4 characters, to tell tokens
# apart in a listing. ``expires`` NULL: no expiry; ``revoked_at`` NULL: not revoked.
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("subject", String(255), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float),
    Column("revoked_at", Float),
    Column("hint", String(8), nullable=False),
)
Index("tokens_by_subject", tokens.c.subject)

# S3 access keys (the S3 gateway's SigV4): ``id`` the access key id, not secret.
# ``secret`` is the secret access key itself, unlike a token's hash: SigV4 signs with a
# key derived from it (by date, region and service), so the checker needs the secret;
# whoever reads the catalog can sign as any key (as with S3's and lakeFS's own stores
# without their encryption key). ``revoked_at`` NULL: not revoked.
s3_keys = Table(
    "s3_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("subject", String(255), nullable=False),
    Column("secret", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("revoked_at", Float),
)

# Who holds which role on what: ``kind`` cluster | repo | model; ``resource`` the repo or
# model name ("" for the cluster, whose bindings hold on every resource).
role_bindings = Table(
    "role_bindings",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("resource", String(255), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("role", String(32), primary_key=True),
)
Index("role_bindings_by_subject", role_bindings.c.subject)
