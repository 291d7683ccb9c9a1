"""The error tree: one leaf module (cairn.api.errors) exports and draws every CairnError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import cairn
import cairn.api.errors


def _every_cairn_error() -> set[type]:
    found: set[type] = set()
    for info in pkgutil.walk_packages(cairn.__path__, "cairn."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed here
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, cairn.api.errors.CairnError) and obj.__module__.startswith("cairn."):
                found.add(obj)
    return found


def test_every_cairn_error_is_exported_and_drawn_by_the_leaf_module() -> None:
    errors = _every_cairn_error()
    assert len(errors) > 30
    doc = cairn.api.errors.__doc__ or ""
    for error in errors:
        assert getattr(cairn.api.errors, error.__name__, None) is error, error
        assert error.__name__ in cairn.api.errors.__all__, error
        assert f" {error.__name__} " in doc or f" {error.__name__}\n" in doc, error


def test_the_package_exports_the_error_tree() -> None:
    for name in cairn.api.errors.__all__:
        assert getattr(cairn, name) is getattr(cairn.api.errors, name)
        assert name in cairn.__all__


def test_config_errors_name_the_field_and_are_value_errors() -> None:
    assert issubclass(cairn.api.errors.ConfigError, cairn.api.errors.FieldError)
    assert issubclass(cairn.api.errors.FieldError, ValueError)
    for error in (
        cairn.api.errors.SpecError,
        cairn.api.errors.RuleError,
        cairn.api.errors.PolicyError,
    ):
        assert issubclass(error, cairn.api.errors.FieldError)
