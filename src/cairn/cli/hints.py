"""What to run next, after an error's message: the library says what is wrong and marks
the error with what it is about (``exc.about``, cairn.data.subject); this table turns
that into the command a CLI user types. Each hint follows the message as it is printed,
so it carries its own separator."""

from __future__ import annotations

__all__ = ["HINTS", "with_hint"]

HINTS: dict[str, str] = {
    "repo.missing": "; `cairn list repo` shows the repos",
    "repo.create": "; create it with `cairn create repo {name}`",
    "repo.in_use": "; delete the pipeline first or pass --force",
    "put.folder": "; add -r to put it recursively",
    "store.damaged": ": run `cairn fsck` to see what is wrong",
    "pipeline.missing": "; `cairn list pipeline` shows them",
    "pipeline.exists": "; use `cairn update pipeline`",
    "pipeline.unreadable": (
        "; `cairn delete pipeline {name} --force` removes it, "
        "`cairn update pipeline` with a valid spec replaces it"
    ),
    "pipeline.unconfined": " (cairn run --allow-unconfined)",
    "secret.exists": "; `cairn delete secret {name}` first to replace it",
    "secret.missing": "; `cairn list secret` shows them",
    "secret.unset": "; store it with `cairn create secret {name} --from-literal {key}=...`",
    "deployment.missing": (
        "; `cairn serve MODEL@ALIAS` or `cairn set traffic NAME --model MODEL ...` creates it"
    ),
    "alias.unset": "; `cairn set alias {model} {alias} VERSION`",
    "commit.open": " (`cairn finish commit {ref}`)",
    "deployment.first": "; set one with `cairn set traffic`",
    "policy.targets": " (see `cairn inspect model {model}`)",
    "monitor.create": "; `cairn create monitor -f FILE` creates it",
    "monitor.exists": "; `cairn update monitor -f FILE` changes it",
    "monitor.missing": "; `cairn list monitor` shows them",
    "datum.missing": "; `cairn list datum {ref}` lists its datums",
    "run.missing": "; `cairn list run` shows the runs",
    "model.missing": "; `cairn list model` shows the models",
    "prediction.missing": (
        "; name the deployment (--deployment), or look for the id in the log with "
        "`cairn list file predictions@master:/DEPLOYMENT/`"
    ),
    "model.retrust": ": `cairn register model {model} {ref} --trust` if you trust it",
}
"""``exc.about`` kind -> the hint, formatted with the names the error carries."""


def with_hint(exc: BaseException) -> str:
    """The error's message, followed by the command to run when the table has one."""
    message = str(exc)
    kind, names = getattr(exc, "about", (None, {}))
    template = HINTS.get(kind) if isinstance(kind, str) else None
    if template is None:
        return message
    try:
        return message + template.format(**names)
    except (KeyError, IndexError):  # a kind raised without a name its hint needs
        return message
