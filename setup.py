"""Builds the native engine (ext/) as warpsniff._engine.

Only gcc and the Python headers are needed: the engine has no system
library dependency.
"""
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# one translation unit (it #includes each stage's .c) so the per-packet path inlines
C_SOURCES = ["ext/ws_engine_all.c"]

extra_compile_args = ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
extra_link_args = []
define_macros = [("_GNU_SOURCE", None), ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if os.environ.get("WARPSNIFF_SANITIZE"):
    # bounds-checked variant for tests: ASan + UBSan; each SIP message the tracker
    # reads is copied into a block of its own size (WS_EXACT_COPIES)
    extra_compile_args += ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    extra_link_args += ["-fsanitize=address,undefined"]
    define_macros.append(("WS_EXACT_COPIES", "1"))

engine = Extension(
    "warpsniff._engine",
    sources=["ext/_engine.pyx"] + C_SOURCES,
    include_dirs=["ext", numpy.get_include()],
    extra_compile_args=extra_compile_args,
    extra_link_args=extra_link_args,
    define_macros=define_macros,
    depends=["ext/ws_common.h"] + [str(p) for p in __import__("pathlib").Path("ext").glob("*/*.[ch]")],
    libraries=["m"],
)

setup(ext_modules=cythonize([engine], include_path=["ext"], compiler_directives={"language_level": "3"}))
