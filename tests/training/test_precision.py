"""Choosing the training precision: bfloat16 only on CPUs with bfloat16 units."""

import pytest

from kerascnn.training import precision


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {' '.join(flags)}\n\n")
    return str(path)


@pytest.mark.parametrize("flags, fast", [
    (["fpu", "avx2", "avx512f"], False),
    (["fpu", "avx512f", "avx512_bf16"], True),
    (["fpu", "amx_tile", "amx_bf16"], True),
])
def test_cpu_flags_decide(tmp_path, monkeypatch, flags, fast):
    monkeypatch.delenv(precision.CPU_BFLOAT16_ENV, raising=False)
    found, reason = precision.cpu_bfloat16_support(_cpuinfo(tmp_path, flags))
    assert found is fast
    assert ("has none" in reason) is not fast


def test_auto_keeps_float32_where_bfloat16_is_slow(monkeypatch):
    monkeypatch.setenv(precision.CPU_BFLOAT16_ENV, "0")
    chosen = precision.choose_precision("auto", gpu=False)
    assert (chosen.name, chosen.policy) == ("float32", "float32")
    assert precision.CPU_BFLOAT16_ENV in chosen.reason


def test_auto_picks_bfloat16_on_a_bfloat16_cpu_and_float16_on_a_gpu(monkeypatch):
    monkeypatch.setenv(precision.CPU_BFLOAT16_ENV, "1")
    assert precision.choose_precision("auto", gpu=False).policy == "mixed_bfloat16"
    assert precision.choose_precision("auto", gpu=True).policy == "mixed_float16"


def test_bad_requests_name_the_value():
    with pytest.raises(ValueError, match="'bf16'"):
        precision.choose_precision("bf16", gpu=False)
    with pytest.raises(ValueError, match="needs a GPU"):
        precision.choose_precision("float16", gpu=False)
