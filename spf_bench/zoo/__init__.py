"""The model zoo: every network of the suite, loaded by one loader from one weight source.

>>> from spf_bench import zoo
>>> pipe = zoo.load("sd15", source="tiny")  # doctest: +SKIP
"""

from spf_bench.zoo.registry import SOURCES, get_network, known_networks, load  # noqa: F401
