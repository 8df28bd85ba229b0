"""The experiment scripts: run each from the repository root as a module, ``python -m experiments.<name>``.

They share helpers through this package (``from experiments._common import RESULTS, machine, write_json``,
``from experiments.levin import spread``); no script edits ``sys.path``. The PyTorch reference networks
(``experiments.torch_*``) need a torch environment; the rest need only jaxdeblur's.
"""
