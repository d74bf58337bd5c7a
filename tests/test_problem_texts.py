"""Every refusal a person reads is a msgid the catalogues can translate (issue 24).

A static walk over the code (no server): an API problem's ``detail``, a domain refusal
(``core.web.problem.Refusal`` and its subclasses: ``AuthError``, ``DeviceError``, ``PhoneError`` …),
a flash message and a field or row error may not be built from a plain string, an f-string or a
concatenation, because none of them can be looked up in a catalogue: they carry an ``N_()`` msgid
and the values of its ``%(name)s`` placeholders. (A variable passed on is allowed: it holds a
msgid made elsewhere, which this walk checks there.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("core", "addons") for p in (ROOT / folder).rglob("*.py")
                 if "migrations" not in p.parts)


def plain_text(node: ast.AST) -> bool:
    """A string no catalogue can look up: a literal, an f-string, or text glued together."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value != ""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return plain_text(node.left) or plain_text(node.right) or isinstance(node.left, ast.JoinedStr)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "strip"):
        return plain_text(node.func.value)
    return False


def name_of(func: ast.AST) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def refusal_classes(trees) -> dict[str, int]:
    """``Refusal`` and every class that derives from it, by name, across the code base, with the
    position of the message among its arguments (after a ``field``, for a field's refusal)."""
    names, grew = {"Refusal": 0}, True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names and \
                        any(name_of(b) in names for b in node.bases):
                    init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"),
                                None)
                    first = init.args.args[1].arg if init is not None and len(init.args.args) > 1 else ""
                    names[node.name] = 1 if first == "field" else 0
                    grew = True
    return names


def untranslatable(trees) -> list[str]:
    refusals = refusal_classes(trees)
    found = []
    for path, tree in trees.items():
        where = lambda node: f"{path.relative_to(ROOT)}:{node.lineno}"  # noqa: E731
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = name_of(node.func)
                said = None
                if name == "Problem" and len(node.args) >= 3:
                    said = node.args[2]
                elif name in refusals:
                    position = refusals[name]
                    said = node.args[position] if len(node.args) > position else None
                elif name == "unauthorized":
                    said = node.args[0] if node.args else None
                elif name == "flash" and len(node.args) >= 2:
                    said = node.args[1]
                for kw in node.keywords:
                    if kw.arg == "detail" and name == "Problem":
                        said = kw.value
                if said is not None and plain_text(said):
                    found.append(f"{where(node)} {name}({ast.unparse(said)[:70]})")
            elif isinstance(node, ast.Dict):
                keys = {k.value: v for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)}
                if "message" in keys and ("field" in keys or "row" in keys) and "msgid" not in keys \
                        and plain_text(keys["message"]):
                    found.append(f"{where(node)} error {ast.unparse(keys['message'])[:70]}")
    return found


def test_every_refusal_problem_flash_and_field_error_is_a_msgid():
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in SOURCES}
    found = untranslatable(trees)
    assert not found, "not translatable (mark with N_() and pass the values as arguments):\n" + "\n".join(found)


def test_the_walk_finds_what_it_is_meant_to_find():
    """The check itself: each kind of plain text is caught, and msgids and variables pass."""
    code = """
class KindError(Refusal):
    pass
class SubError(KindError):
    pass
class AtField(SubError):
    def __init__(self, field, message):
        pass
def f(x, n):
    raise Problem(400, "bad", "plain")  # caught
    raise Problem(400, "bad", f"count {n}")  # caught
    raise Problem(400, "bad", "a " + x)  # caught
    raise SubError(f"no {x}")  # caught
    raise AtField("email", "Taken.")  # caught
    self.flash("success", "Saved.")  # caught
    errors.append({"field": "to", "message": f"{x} is wrong"})  # caught
    errors.append({"row": 3, "message": "empty"})  # caught
    raise Problem(400, "bad", N_("fine %(n)s"), args={"n": n})
    raise Problem(400, "bad", x)
    raise SubError(N_("fine"))
    raise AtField("email", N_("Taken."))
    self.flash("success", N_("Saved."))
    errors.append({"field": "to", "message": N_("is wrong")})
    errors.append({"field": "to", "message": x, "msgid": y})
"""
    found = untranslatable({ROOT / "example.py": ast.parse(code)})
    caught = [i for i, line in enumerate(code.split("\n"), 1) if line.endswith("# caught")]
    assert [int(f.split(" ")[0].rsplit(":", 1)[1]) for f in found] == caught, found
