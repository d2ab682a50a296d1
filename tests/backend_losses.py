"""Users' losses for the PyTorch and JAX backends' tests: each with its text, values, facts, and
the same loss written naively with the array library (what autograd would differentiate), as
a function of a namespace ``F`` of that library's operations."""
import numpy as np

ALPHA = [0.5, 1.0, 2.0, 1.5, 0.25]


def _ce(F, z, y):
    return -F.sum(y * F.log(F.softmax(z)))


#: id -> (text, values, assume, naive(F, z, y, c, values) -> one loss a row)
LOSSES = {
    "focal-0": ("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", {"gamma": 0.0}, "probability",
                lambda F, z, y, c, v: -F.sum(y * (1 - F.softmax(z)) ** v["gamma"]
                                             * F.log(F.softmax(z)))),
    "focal-0.5": ("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", {"gamma": 0.5}, "probability",
                  lambda F, z, y, c, v: -F.sum(y * (1 - F.softmax(z)) ** v["gamma"]
                                               * F.log(F.softmax(z)))),
    "focal-2": ("-sum(y[i]*(1 - q[i])**gamma*log(q[i]), i)", {"gamma": 2.0}, "probability",
                lambda F, z, y, c, v: -F.sum(y * (1 - F.softmax(z)) ** v["gamma"]
                                             * F.log(F.softmax(z)))),
    "focal-label": ("-(1 - q[c])**gamma*log(q[c])", {"gamma": 2.0}, "one-hot",
                    lambda F, z, y, c, v: -(1 - F.take(F.softmax(z), c)) ** v["gamma"]
                    * F.log(F.take(F.softmax(z), c))),
    "poly-1": ("-sum(y[i]*log(q[i]), i) + eps*sum(y[i]*(1 - q[i]), i)", {"eps": 1.0},
               "probability",
               lambda F, z, y, c, v: _ce(F, z, y) + v["eps"] * F.sum(y * (1 - F.softmax(z)))),
    "z-loss": ("-sum(y[i]*log(q[i]), i) + lam*log(sum(exp(z[i]), i))**2", {"lam": 0.1},
               "probability",
               lambda F, z, y, c, v: _ce(F, z, y) + v["lam"] * F.log(F.sum(F.exp(z))) ** 2),
    "class-balanced": ("-sum(alpha[i]*y[i]*log(q[i]), i)", {"alpha": ALPHA}, "probability",
                       lambda F, z, y, c, v: -F.sum(v["alpha"] * y * F.log(F.softmax(z)))),
    "label-smoothing": ("-sum(((1 - eps)*y[i] + eps/K)*log(q[i]), i)", {"eps": 0.1},
                        "probability",
                        lambda F, z, y, c, v: -F.sum(((1 - v["eps"]) * y + v["eps"] / z.shape[-1])
                                                     * F.log(F.softmax(z)))),
    "tempered": ("-sum(y[i]*log(exp(z[i]/T)/sum(exp(z[j]/T), j)), i)", {"T": 2.0},
                 "probability", lambda F, z, y, c, v: _ce(F, z / v["T"], y)),
    "entropy-regularised": ("-sum(y[i]*log(q[i]), i) + beta*sum(q[i]*log(q[i]), i)",
                            {"beta": 0.3}, "probability",
                            lambda F, z, y, c, v: _ce(F, z, y) + v["beta"] * F.sum(
                                F.softmax(z) * F.log(F.softmax(z)))),
    "weighted-focal-label": ("-alpha[c]*(1 - q[c])**gamma*log(q[c])",
                             {"gamma": 2.0, "alpha": ALPHA}, "one-hot",
                             lambda F, z, y, c, v: -F.take(v["alpha"] + 0 * z, c)
                             * (1 - F.take(F.softmax(z), c)) ** v["gamma"]
                             * F.log(F.take(F.softmax(z), c))),
    "sigmoid-bce": ("-sum(y[i]*log(sigma[i]) + (1 - y[i])*log(1 - sigma[i]), i)", {}, "any",
                    lambda F, z, y, c, v: -F.sum(y * F.log(F.sigmoid(z))
                                                 + (1 - y) * F.log(1 - F.sigmoid(z)))),
    "label-cross-entropy": ("-log(q[c])", {}, "one-hot",
                            lambda F, z, y, c, v: -F.log(F.take(F.softmax(z), c))),
    "generalised-ce": ("(1 - q[c]**rho)/rho", {"rho": 0.7}, "one-hot",
                       lambda F, z, y, c, v: (1 - F.take(F.softmax(z), c) ** v["rho"])
                       / v["rho"]),
}
IDS = list(LOSSES)
FOCAL = ["focal-0", "focal-0.5", "focal-2"]


def labels_only(name):
    return LOSSES[name][2] == "one-hot"


def data(rows=6, classes=5, scale=2.0, seed=3):
    """Logits, labels, one-hot rows and probabilities, as NumPy float64 arrays."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, classes)) * scale
    c = rng.integers(0, classes, rows)
    return z, c, np.eye(classes)[c], rng.dirichlet(np.ones(classes), rows)


def values(name, convert):
    """The loss's values, arrays through ``convert``."""
    return {key: convert(np.array(v)) if isinstance(v, list) else v
            for key, v in LOSSES[name][1].items()}
