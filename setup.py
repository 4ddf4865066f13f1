"""Build of the one C extension, ``deploy.safety._native``: the safety filter's tick and the critic's
selection graph for the 1 kHz loop (``deploy/safety/native/``). Everything else is in pyproject.toml.
The extension is optional: without a C compiler the install still succeeds and the filter runs
in Python with the critic in onnxruntime (``deploy.safety.engines`` says why)."""

from setuptools import Extension, setup

SOURCES = ["deploy/safety/native/module.c", "deploy/safety/native/critic.c", "deploy/safety/native/filter.c"]

setup(
    ext_modules=[
        Extension(
            "deploy.safety._native",
            SOURCES,
            depends=["deploy/safety/native/native.h"],
            # c11: no contraction into fused multiply-adds, so the filter's arithmetic is the
            # Python's operation for operation (bit-identical commands, tested)
            extra_compile_args=["-O3", "-std=c11"],
            optional=True,
        )
    ]
)
