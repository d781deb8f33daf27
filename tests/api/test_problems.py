"""ONE table maps every BastionError subclass (anywhere in Bastion) to a status and a
stable type URI; a new error without an entry fails here."""

from __future__ import annotations

import importlib
import pkgutil

import bastion
from bastion.api.problems import PROBLEM_JSON, ProblemType, problems
from bastion.errors import BastionError


def _all_subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out.add(sub)
        out |= _all_subclasses(sub)
    return out


def test_every_bastion_error_has_an_entry() -> None:
    for mod in pkgutil.walk_packages(bastion.__path__, "bastion."):
        if ".migrations" in mod.name or mod.name.endswith("__main__"):
            continue
        importlib.import_module(mod.name)
    table = problems()
    missing = {c.__module__ + "." + c.__qualname__
               for c in _all_subclasses(BastionError) | {BastionError} if c not in table}
    assert not missing, f"add these to bastion.api.problems: {sorted(missing)}"
    for cls, pt in table.items():
        assert isinstance(pt, ProblemType)
        assert 400 <= pt.status <= 599, cls
        assert pt.type.startswith("urn:bastion:problem:")


def test_problem_shape_and_no_stack_trace(api: object) -> None:
    from tests.api.conftest import Api

    assert isinstance(api, Api)
    r = api.client.get("/v1/banks/nope", headers=api.h("banks:read"))
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance"}
    assert body["instance"] == "/v1/banks/nope"
    assert "Traceback" not in r.text
    r = api.client.post("/v1/banks", headers=api.h("banks:write"), json={"name": "sample"})
    assert r.status_code == 409 and r.json()["type"] == "urn:bastion:problem:conflict"
    r = api.client.delete("/v1/banks", headers=api.h("banks:write"))
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM_JSON
