"""Which NumPy and OpenBLAS kernels modelops-ci pins for a CPU, read from its flags line
(modelops_ci/numerics.py)."""

from __future__ import annotations

from pathlib import Path

from modelops_ci import numerics

AVX512_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"})
AVX2_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma"})


def test_an_avx512_cpu_is_held_to_the_avx2_kernels() -> None:
    assert numerics.portable_kernels("x86_64", AVX512_FLAGS) == {
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"}


def test_an_avx2_cpu_only_names_its_openblas_core() -> None:
    assert numerics.portable_kernels("x86_64", AVX2_FLAGS) == {"OPENBLAS_CORETYPE": "Haswell"}


def test_nothing_is_forced_on_a_cpu_without_avx2_or_on_arm() -> None:
    assert numerics.portable_kernels("x86_64", frozenset({"sse4_2", "avx"})) == {}
    assert numerics.portable_kernels("aarch64", AVX512_FLAGS) == {}


def test_cpu_flags_are_read_from_the_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu sse4_2 avx2 fma\nbugs\t: x\n")
    assert numerics.cpu_flags(cpuinfo) == {"fpu", "sse4_2", "avx2", "fma"}
    assert numerics.cpu_flags(tmp_path / "missing") == frozenset()
