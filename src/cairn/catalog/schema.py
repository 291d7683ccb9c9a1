"""Tables of the catalog: small rows only (DESIGN.md, Storage).

Times are UTC seconds since the epoch (float). ``info`` and ``spec`` columns
hold canonical JSON text: provenance details, spec bodies, statistics.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "branches",
    "chunks",
    "commit_provenance",
    "commits",
    "datums",
    "jobs",
    "metadata",
    "pipeline_versions",
    "pipelines",
    "repos",
]

metadata = MetaData()

repos = Table(
    "repos",
    metadata,
    Column("name", String(255), primary_key=True),
    # "user" repos take puts; "pipeline" repos are written only by their pipeline's jobs.
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
