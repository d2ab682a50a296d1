"""The code generator as a package of stages: the catalogue's module is run against its
derivations before it is delivered, the IR names no backend, and only the backends spell NumPy."""
import ast
import pathlib
import re

import numpy as np
import pytest

import derive
from derive.codegen import FORMULAS, catalogue, module
from derive.codegen.backends import numpy as numpy_backend
from derive.codegen.ir import Const, Line, Ref
from derive.codegen.lines import OPS, Lowering, allocate
from derive.codegen.lower import lower
from derive.codegen.to_array import softmax_definitions
from derive.model import k, q, y

PACKAGE = pathlib.Path(derive.__file__).parent


@pytest.fixture(scope="module")
def loaded():
    return catalogue.load_module()


def test_the_catalogue_module_is_verified_when_it_is_loaded(loaded):
    module.verify_catalogue(loaded, lambda key: FORMULAS[key].expr())  # no error


WRONG = [
    ("cross_entropy_grad", lambda f: lambda *a, **v: f(*a, **v) * 1.001),
    ("cross_entropy_with_grad", lambda f: lambda *a, **v: (f(*a, **v)[0] + 1e-3, f(*a, **v)[1])),
    ("softmax", lambda f: lambda *a, **v: f(*a, **v)[..., ::-1]),
    ("cross_entropy_hessian", lambda f: lambda *a, **v: np.swapaxes(f(*a, **v), -1, -2) * 0.5),
    ("tempered_cross_entropy_with_grad",
     lambda f: lambda z, t, temperature, **v: f(z, t, 1.0, **v)),
    ("weighted_cross_entropy_with_grad",
     lambda f: lambda z, t, weight, **v: f(z, t, weight[::-1], **v)),
    ("sigmoid_binary_cross_entropy_with_grad",
     lambda f: lambda *a, **v: (f(*a, **v)[0], -f(*a, **v)[1])),
    ("softmax_jacobian", lambda f: lambda *a, **v: np.swapaxes(f(*a, **v), -1, -2) + 1e-3),
    ("smoothed_cross_entropy_with_grad",
     lambda f: lambda z, labels, epsilon, **v: f(z, labels, 2 * epsilon, **v)),
]


@pytest.mark.parametrize("name, wrong", WRONG, ids=[w[0] for w in WRONG])
def test_a_wrong_function_of_the_catalogue_is_caught(loaded, name, wrong, monkeypatch):
    monkeypatch.setattr(loaded, name, wrong(getattr(loaded, name)))
    with pytest.raises(derive.CheckError, match="does not agree"):
        module.verify_catalogue(loaded, lambda key: FORMULAS[key].expr())


def test_a_module_of_some_functions_is_verified_for_those():
    part = catalogue.load_module(functions=["softmax"])
    assert hasattr(part, "softmax") and not hasattr(part, "cross_entropy")


def _strings(path: pathlib.Path):
    """The string literals of a module that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docs]


def test_only_the_backends_spell_numpy_for_generated_code():
    spelled = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "backends" in path.parts:
            continue
        found = [s for s in _strings(path) if re.search(r"\bnumpy\.\w", s)]
        if found:
            spelled[str(path.relative_to(PACKAGE))] = found
    assert spelled == {}


def test_the_lines_name_neutral_operations_on_operands_not_text():
    definitions = softmax_definitions(FORMULAS["probs"].expr(), FORMULAS["log_probs"].expr())
    lowering = Lowering({})
    from derive.codegen.ir import Values
    program = lower([("grad", q[k] - y[k])], Values(), definitions, labels=False)
    assert program.lines and all("  # " in line for line in program.lines)
    assert set(OPS.values()) <= set(numpy_backend.OPS)  # every operation has a NumPy spelling
    assert lowering.code == []
    line = Line("t0", "multiply", (Ref("probs", "column"), Const(2)), None, q[k])
    assert numpy_backend.line(line, "2 q") == "t0 = numpy.multiply(probs[..., :, None], 2)  # 2 q"


def test_buffer_reuse_is_a_pass_that_a_backend_may_leave_out():
    from derive.codegen.ir import FULL
    code = [Line("t0", "exp", (Ref("shifted"),), FULL, q[k]),
            Line("t1", "multiply", (Ref("t0"), Const(2)), FULL, q[k])]
    plain = [Line(c.name, c.op, c.args, c.shape, c.meaning) for c in code]
    allocate(code, {"shifted": FULL, "t0": FULL, "t1": FULL}, ["t1"], numpy_backend.IN_PLACE)
    assert [c.out for c in code] == ["shifted", "t0"]
    allocate(plain, {"shifted": FULL, "t0": FULL, "t1": FULL}, ["t1"], frozenset())
    assert [c.out for c in plain] == [None, None]


def test_the_linear_layer_is_a_line_of_the_ir_printed_by_the_backend():
    from derive.codegen.layer import layer_lines
    from derive.model import LINEAR, b
    d = derive.derivation("linear-layer")
    first, second = layer_lines(LINEAR.statement, [("grad_weight", d.result)])
    assert first[0].op == "einsum" and first[0].params == ("ng,ig->ni",)
    assert second[0].params == ("nk,nd->kd",)
    assert numpy_backend.line(second[0], "c").startswith(
        'grad_weight = numpy.einsum("nk,nd->kd", grad, inputs)')
    with pytest.raises(derive.DeriveError, match="not a product of the logits' gradient"):
        layer_lines(LINEAR.statement, [("grad_bias", b[k] * 2)])


def test_the_two_paths_check_their_arguments_alike(loaded, recwarn):
    own = derive.numpy_module("-sum(y[i]*log(q[i]), i)", assume="any")
    logits = np.zeros((1, 3), dtype=np.float32)
    target = np.array([[1e300, 0.0, 0.0]])
    messages = []
    for function in (loaded.cross_entropy_with_grad, own.loss_with_grad):
        with pytest.raises(ValueError) as caught:
            function(logits, target)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == \
        "target: probability 1e+300 overflows float32, the dtype of the logits"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_fill_checks_the_declared_holes():
    from derive.codegen import scaffold
    from derive.codegen.backends import numpy_functions
    holes = numpy_functions.HOLES
    for name, declared in holes.items():
        assert scaffold.holes(getattr(numpy_functions, name)) == declared
    with pytest.raises(ValueError, match="not the declared"):
        scaffold.fill(numpy_functions.softmax, ("probs",), {"probs": []})
    with pytest.raises(ValueError, match="not both declared and filled"):
        scaffold.fill(numpy_functions.softmax, ("softmax",), {})
    text = scaffold.fill(numpy_functions.softmax, ("softmax",), {"softmax": ["probs = 1  # q"]})
    assert "        probs = 1  # q\n" in text and "hole" not in text


def test_one_path_makes_a_module_of_any_spec():
    """What differs between modules is their spec: here a loss of one line, whose module
    includes the runtime helpers its function calls, found from the code."""
    from derive.codegen import ModuleSpec, generate
    from derive.codegen.backends import numpy_own
    spec = ModuleSpec(functions=(("loss", numpy_own.loss, ("body",)),),
                      lower=lambda function, hole, made: ["loss = 0 * logits[..., :1]  # 0"],
                      cite=lambda made: ["  loss  nothing"],
                      header=lambda sources, made: f'"""{sources}"""\nimport numpy\n'
                                                   "_LABELS_ONLY = False\n",
                      derivation=derive.derivation)
    text = generate(spec, numpy_backend)
    assert text.startswith('"""  loss  nothing"""') and "def _prepare(" in text
    assert "def _take(" not in text  # only what the function calls
    made = module.load("zero", text)
    assert made.loss(np.ones((2, 3)), np.array([0, 2])).tolist() == [0.0, 0.0]


def test_the_catalogue_and_a_users_loss_are_both_specs():
    import inspect
    from derive.codegen import own
    for function in (catalogue.source, own.source):
        code = inspect.getsource(function)
        assert "generate(spec, backend)" in code and "scaffold.fill" not in code
