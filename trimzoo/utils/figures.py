"""Figures: the one place that picks matplotlib's backend.

trimzoo draws figures only into files (``trimzoo.utils.io.save_figure``),
so every program draws with the ``Agg`` backend, which needs no display.
Call :func:`pyplot` where a figure is drawn (matplotlib is imported then,
not when the module that draws is imported).

Examples:

>>> plt = pyplot()
>>> import matplotlib
>>> matplotlib.get_backend().lower()
'agg'
>>> fig, ax = plt.subplots()
>>> plt.close(fig)
"""


def pyplot():
    """``matplotlib.pyplot``, with the ``Agg`` backend set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
