"""The one thing pyproject.toml cannot declare yet without an experimental table: the C
helper that starts actions' children (fswatchd/actions/_clone.c).

It is optional: without a C compiler and Python's headers the build skips it, and
children are started with os.posix_spawn instead (docs/actions.md, "How a child starts").
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fswatchd.actions._clone",
            sources=["fswatchd/actions/_clone.c"],
            optional=True,
        )
    ]
)
