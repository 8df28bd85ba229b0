"""Package layout; everything else is in pyproject.toml.

The shipped weights live in the top-level ``checkpoints/`` folder of the
repository and are installed as the data-only package ``jaxdeblur_checkpoints``
(its files: package-data in pyproject.toml), so a clone, an editable install
and a ``pip install`` all find them (jaxdeblur.models.weights). pyproject's
package discovery cannot map a folder to a package of another name, hence
this file. The weight folders are listed as (namespace) packages too, as
setuptools expects of data directories with importable names.
"""

from setuptools import find_namespace_packages, setup

WEIGHTS = "jaxdeblur_checkpoints"

# Namespace discovery, as pyproject's packages.find did: a subpackage needs no __init__.py.
setup(packages=(find_namespace_packages(include=["jaxdeblur", "jaxdeblur.*"])
                + [WEIGHTS] + [f"{WEIGHTS}.{name}" for name in find_namespace_packages(where="checkpoints")]),
      package_dir={WEIGHTS: "checkpoints"})
