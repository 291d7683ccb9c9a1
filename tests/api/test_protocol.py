"""Each implementation satisfies the Protocols, and declares nothing the Protocols do not
(so a remote client written against them cannot silently miss a method)."""

from __future__ import annotations

import inspect
from functools import cached_property

import pytest

from cairn.api.protocol import SUB_CLIENTS, ClientProtocol
from cairn.client import Client


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if not name.startswith("_") and callable(member)
    }


def test_the_client_and_each_sub_client_satisfy_their_protocols(client: ClientProtocol) -> None:
    assert isinstance(client, ClientProtocol)
    for name, protocol in SUB_CLIENTS.items():
        assert isinstance(getattr(client, name), protocol), name


def test_the_protocol_lists_every_sub_client_and_the_client_has_them() -> None:
    declared = {n for n in vars(ClientProtocol) if not n.startswith("_")}
    assert declared == set(SUB_CLIENTS)
    for name in SUB_CLIENTS:
        assert isinstance(inspect.getattr_static(Client, name), property | cached_property)


@pytest.mark.parametrize("name", sorted(SUB_CLIENTS))
def test_every_public_method_is_declared_with_the_same_parameters(
    client: ClientProtocol, name: str
) -> None:
    declared = _public(SUB_CLIENTS[name])
    offered = _public(type(getattr(client, name)))
    assert set(offered) == set(declared), name
    for method, signature in declared.items():
        got = offered[method]
        assert list(got.parameters) == list(signature.parameters), f"{name}.{method}"
        for param, expected in signature.parameters.items():
            assert got.parameters[param].kind == expected.kind, f"{name}.{method}({param})"
            assert got.parameters[param].default == expected.default, f"{name}.{method}({param})"
