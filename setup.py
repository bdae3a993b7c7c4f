"""Builds the Cython extensions of engine/; everything else is in pyproject.toml.

Generated C files are build output (see .gitignore); `cythonize` regenerates them.
"""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(str(pyx.with_suffix("")).replace("/", "."), [str(pyx)], extra_compile_args=["-O3"])
    for pyx in sorted(Path("engine").rglob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        annotate=False,
    )
)
