"""Conversions between mmgraph's graphs and other graph libraries (optional dependencies).

- :mod:`mmgraph.interop.dgl`: :func:`to_dgl` / :func:`from_dgl` for DGL (``pip install 'mmgraph[dgl]'``).

Importing this package never imports the other library; the conversion functions do, and
raise a one-line :class:`~mmgraph.errors.ConfigError` naming the extra to install when it is
missing.
"""
from mmgraph.interop.dgl import from_dgl, to_dgl

__all__ = ["to_dgl", "from_dgl"]
