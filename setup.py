"""Builds the native engine (ext/) as warpsniff._engine.

Only gcc and the Python headers are needed: the engine has no system
library dependency.
"""
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

C_SOURCES = [
    "ext/capture/ws_pcap.c",
    "ext/decode/ws_decode.c",
    "ext/rtp/ws_rtp.c",
    "ext/sip/ws_sip.c",
    "ext/engine/ws_engine.c",
]

extra_compile_args = ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
if os.environ.get("WARPSNIFF_SANITIZE"):
    # bounds-checked variant for tests: ASan + UBSan
    extra_compile_args += ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"]

engine = Extension(
    "warpsniff._engine",
    sources=["ext/_engine.pyx"] + C_SOURCES,
    include_dirs=["ext", numpy.get_include()],
    extra_compile_args=extra_compile_args,
    define_macros=[("_GNU_SOURCE", None), ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    libraries=["m"],
)

setup(ext_modules=cythonize([engine], include_path=["ext"], compiler_directives={"language_level": "3"}))
