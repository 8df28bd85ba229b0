"""Shipped weights of jaxdeblur's trained models, installed as the package `jaxdeblur_checkpoints`.

Data only: ``<model>/<preset>/`` folders read by `jaxdeblur.models.load` (see README.md).
"""
