"""The one thing pyproject.toml cannot declare yet without an experimental table: the C
helper that starts actions' children (fswatchd/actions/_vfork.c).

It is optional: without a C compiler and Python's headers the build skips it, and
children are started with os.posix_spawn instead (docs/actions.md, "How a child starts").
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fswatchd.actions._vfork",
            sources=["fswatchd/actions/_vfork.c"],
            optional=True,
        )
    ]
)
