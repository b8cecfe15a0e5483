"""TPU slices sized from this machine: the real step compiled for
compile-only TPU devices (libtpu, no TPU), checked against the CPU's own cost
analysis of the same global step."""

import json
import sys

import jax
import pytest

from conftest import load_repo_config, run

pytest.importorskip("libtpu", reason='needs pip install -e ".[tpu]"')

from simvae_jax import aot, sharding, xla_options  # pylint: disable=wrong-import-position
from simvae_jax.experiment import (  # pylint: disable=wrong-import-position
    Experiment,
)

DIGITS = (8, 8, 1)


@pytest.fixture(scope="module")
def cpu_flops():
  """XLA's FLOP count of the digits step on one CPU device (global batch)."""
  experiment = Experiment.from_config(
      load_repo_config("digits"), jax.devices("cpu")[:1], DIGITS
  )
  return aot._cost(aot.compile_step(experiment, "cpu"))["flops_per_chip"]


def aot_command(*arguments):
  return [
      sys.executable,
      "-m",
      "simvae_jax.aot",
      "--config=configs/digits.py",
      *arguments,
  ]


@pytest.mark.slow
def test_the_cli_sizes_the_digits_step_for_a_v5e_slice(cpu_flops):
  completed = run(aot_command("--topology=v5e:2x2"))
  assert completed.returncode == 0, completed.stderr[-3000:]
  result = json.loads(completed.stdout.strip().splitlines()[-1])
  assert result["topology"] == "v5e:2x2" and result["chips"] == 4
  assert result["global_batch"] == 64
  assert result["chip_memory_bytes"] == 16 * 2**30
  assert result["argument_bytes_per_chip"] > 0
  assert result["peak_bytes_per_chip"] >= result["argument_bytes_per_chip"]
  assert result["hbm_bytes_per_chip"] > 0
  # The batch is split over 4 chips: one all-reduce of the gradients at least.
  assert result["collectives"].get("all-reduce", 0) >= 1
  assert result["eval_peak_bytes_per_chip"] > 0
  # Each chip does a quarter of the global step (the replicated optimiser
  # update is the few percent above it).
  total = result["flops_per_chip"] * result["chips"]
  assert total == pytest.approx(cpu_flops, rel=0.05)


def test_a_v4_slice_counts_its_megacore_chips(cpu_flops):
  result = aot.size(
      load_repo_config("digits"), aot.tpu_devices("v4:2x2x1"), DIGITS
  )
  assert result["chips"] == 4
  total = result["flops_per_chip"] * result["chips"]
  assert total == pytest.approx(cpu_flops, rel=0.05)


def test_programs_for_tpu_devices_take_no_cpu_compiler_options():
  """The XLA:CPU option sets follow the devices a program is compiled for,
  not the host's backend: none for a TPU slice sized from this CPU."""
  tpu = sharding.make_mesh(aot.tpu_devices("v5e:2x2"))
  cpu = sharding.make_mesh(jax.devices("cpu"))
  for name in xla_options.OPTION_SETS:
    assert xla_options.for_mesh(name, tpu) is None
    assert xla_options.for_mesh(name, cpu) == xla_options.cpu_options(name)


@pytest.mark.slow
def test_a_step_larger_than_the_chip_exits_1_naming_the_shortfall():
  completed = run(
      aot_command("--topology=v5e:2x2", "--config.batch_size=40000000")
  )
  assert completed.returncode == 1
  last = completed.stderr.strip().splitlines()[-1]
  assert last.startswith("error: the step does not fit on v5e:2x2")
  assert "exceeds available HBM" in last and "batch_size" in last


GIB, MIB = 2**30, 2**20
# Per-chip peak bytes of a step against its per-chip batch: linear, convex
# (the two-point prediction overshoots), flat beyond 64 images (it
# undershoots), out of memory in the compiler beyond 1,000 (inf), and a step
# that does not fit even one image.
PEAKS = {
    "linear": lambda b: GIB + 3 * MIB * b,
    "convex": lambda b: GIB + MIB * b + 1024 * b**2,
    "flat": lambda b: GIB + 16 * MIB * min(b, 64),
    "compiler refuses": lambda b: GIB + MIB * b if b <= 1000 else float("inf"),
    "nothing fits": lambda b: 17 * GIB + b,
}


@pytest.mark.parametrize("name", PEAKS)
def test_the_largest_batch_is_the_largest_power_of_two_that_fits(
    monkeypatch, name
):
  peak, calls = PEAKS[name], []

  def step_peak(config, devices, image_shape, per_chip):
    del config, devices, image_shape
    calls.append(per_chip)
    return peak(per_chip)

  monkeypatch.setattr(aot, "_step_peak", step_peak)
  memory = 16 * GIB
  powers = [2**k for k in range(aot.MAX_BATCH_PER_CHIP.bit_length())]
  expected = max((b for b in powers if peak(b) <= memory), default=0)
  found = aot.largest_batch_per_chip(None, None, None, memory)
  assert found == expected
  assert len(calls) <= 8  # a few compiles, not one per power of two


def test_missing_libtpu_and_unknown_generations_are_one_line_errors(
    monkeypatch,
):
  with pytest.raises(aot.SizingError, match="v4"):
    aot.tpu_devices("v9:2x2")
  monkeypatch.setattr(aot.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(aot.SizingError, match=r'pip install -e "\.\[tpu\]"'):
    aot.tpu_devices("v5e:2x2")


@pytest.mark.slow
def test_the_tpu_table_script_adds_a_slice_and_keeps_the_other_rows(tmp_path):
  """``experiments/tpu_sizes.py`` (the README's table): a second run for
  another slice adds its row and keeps the first run's row as it was."""
  out = tmp_path / "tpu_sizes.md"

  def table(topologies):
    completed = run(
        [
            sys.executable,
            "experiments/tpu_sizes.py",
            "--configs=digits",
            f"--topologies={topologies}",
            f"--out={out}",
        ]
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out.read_text().splitlines()

  written = table("v5e:2x2")
  header, first = written[:2], written[2:]
  rows = table("v4:2x2x1")[2:]
  assert rows[0] == first[0] and len(first) == 1 and len(rows) == 2
  config = load_repo_config("digits")
  for row, topology in zip(rows, ["v5e:2x2", "v4:2x2x1"]):
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:3] == [
        f"digits ({config.batch_size} x {config.num_views})",
        topology,
        "4",
    ]
    largest = int(cells[5])
    assert largest & (largest - 1) == 0 and largest >= config.batch_size // 4
  assert header[0].startswith("| config")
