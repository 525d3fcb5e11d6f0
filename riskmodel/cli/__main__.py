"""``python -m riskmodel.cli``: the ``riskmodel`` program."""

from riskmodel.cli import console

console()
