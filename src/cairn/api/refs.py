"""The one reference parser of the face: every sub-client reads the strings users type
through these functions, which reuse the parsers of the layers (``cairn.data.parse_ref``
and the registry's ``parse_spec``) rather than parsing again.

==========================  ================================================
``images``                  a repo
``images@master``           a branch head (``^``, ``^2``, ``~2`` step back)
``images@3f2a...``          a commit by id or unique id prefix
``images@master:/a.png``    a path in that commit
``edges@9c1e...``           a job of pipeline ``edges`` (jobs.get)
``cancer@champion``         the version an alias names (``models:/`` prefix accepted)
``cancer/3``                version 3; ``cancer/latest`` or ``cancer``: the latest
==========================  ================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn.data import InvalidReference, Ref, parse_ref

__all__ = ["ModelRef", "RefLike", "data_ref", "job_ref", "model_ref"]

RefLike = str | Ref
"""What a data method takes: the text ``repo@commit:/path`` or an already parsed Ref."""


def data_ref(ref: RefLike) -> Ref:
    """``ref`` parsed (a Ref is returned as it is). Raises InvalidReference, InvalidPath."""
    return ref if isinstance(ref, Ref) else parse_ref(ref)


def job_ref(ref: str) -> tuple[str, str]:
    """``(pipeline, job id or prefix)`` of ``pipeline@job``. Raises InvalidReference."""
    parsed = parse_ref(ref)
    if parsed.commit is None or parsed.ancestry or parsed.path is not None:
        raise InvalidReference(f"{ref!r}: name a job as PIPELINE@JOB_ID")
    return parsed.repo, parsed.commit


@dataclass(frozen=True)
class ModelRef:
    """A parsed model spec: at most one of ``alias`` and ``version``; neither names the
    latest version."""

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


def model_ref(spec: str) -> ModelRef:
    """``NAME@ALIAS``, ``NAME/VERSION``, ``NAME/latest`` or ``NAME`` parsed (see
    ``cairn.ml.registry.parse_spec``). Raises InvalidReference."""
    from cairn.ml.registry import parse_spec  # the ML layer loads on first use

    return ModelRef(*parse_spec(spec))
