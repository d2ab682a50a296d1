"""A central-difference gradient, the independent check every generated gradient is held to."""
import numpy as np


def central_difference(f, x, h=1e-6):
    """∂f/∂x for a scalar function f of an array x, entry by entry."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2 * h)
    return grad
