"""Call is one slotted object over three modules: the state its mixins declare must match it.

``CallState`` declares that state for the type checker only, so nothing at run time ties
it to ``Call.__slots__``: these tests do.
"""

from __future__ import annotations

import ast
import inspect

import pytest

from resilient_client._call import _state as _call_state
from resilient_client._call._call import Call
from resilient_client._call._decisions import CallDecisions
from resilient_client._call._end import CallEnd


def _block(module: object, class_name: str) -> list[ast.stmt]:
    """The body of the class's ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    block = next(n for n in cls.body if isinstance(n, ast.If))
    assert ast.unparse(block.test) == "TYPE_CHECKING"
    return block.body


def _declared(module: object, class_name: str) -> set[str]:
    """Names annotated in the class's ``if TYPE_CHECKING:`` block."""
    return {
        n.target.id
        for n in _block(module, class_name)
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }


@pytest.mark.parametrize(("module", "class_name"), [(_call_state, "CallState")])
def test_every_attribute_a_mixin_declares_is_a_slot_of_call(
    module: object, class_name: str
) -> None:
    declared = _declared(module, class_name)
    assert declared, "no declarations found: the test no longer reads CallState"
    assert declared <= set(Call.__slots__), declared - set(Call.__slots__)


@pytest.mark.parametrize(("module", "class_name"), [(_call_state, "CallState")])
def test_every_method_a_mixin_declares_is_a_method_of_call(module: object, class_name: str) -> None:
    # The stubs exist for the type checker only: at run time Call must have the real ones.
    stubs = {n.name for n in _block(module, class_name) if isinstance(n, ast.FunctionDef)}
    assert stubs, "no method stubs found: the test no longer reads CallState"
    assert all(callable(getattr(Call, name, None)) for name in stubs), stubs


def test_a_call_has_no_instance_dict() -> None:
    assert Call.__dictoffset__ == 0
    assert all(getattr(base, "__slots__", None) == () for base in Call.__mro__[1:-1])


def test_both_mixins_read_the_one_declared_state() -> None:
    assert issubclass(CallDecisions, _call_state.CallState)
    assert issubclass(CallEnd, _call_state.CallState)
