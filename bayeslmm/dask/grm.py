"""placeholder"""

__all__ = ["grm"]


def grm(X):
    """placeholder"""
    raise NotImplementedError
