"""The command line: user mistakes end in one clear line and a non-zero exit.

Every case is a real ``python -m simvae_jax.main`` process (or one of the
other command lines, which share its errors: the TPU sizing, a benchmark,
the .npz exporter);
they are started together by one fixture (each mostly waits for imports) and
checked one test per case.
"""

import os
import subprocess
import sys

import pytest

from conftest import REPO

# Every test here starts processes: the fast tier leaves them out.
pytestmark = pytest.mark.slow

DIGITS = [
    "--config=configs/digits.py",
    "--config.num_steps=2",
    "--config.eval.probe_epochs=1",
]

# name: (arguments after --workdir, expected text in the error line)
CASES = {
    "unknown method": (
        DIGITS + ["--config.method=simclr2"],
        "Unknown method 'simclr2'; choose one of",
    ),
    "unknown encoder": (
        DIGITS + ["--config.model.encoder=vit"],
        "Unknown encoder 'vit'; choose one of",
    ),
    "unknown data source": (
        DIGITS + ["--config.data.source=web"],
        "Unknown data.source 'web'; choose one of",
    ),
    "unknown tfds dataset": (
        DIGITS
        + ["--config.data.source=tfds", "--config.data.name=no_such_dataset"],
        "tfds could not download and prepare 'no_such_dataset' (train)",
    ),
    "unknown variant": (
        ["--config=configs/mnist.py:fast"],
        "Unknown config variant 'fast'; combine any of ('paper', 'authors',"
        " 'quick') and encoder=NAME",
    ),
    "unknown config key": (
        DIGITS + ["--config.num_step=10"],
        'Unknown config key "num_step"; did you mean "num_steps"?',
    ),
    "wrong value type": (DIGITS + ["--config.num_views=two"], "num_views"),
    "batch not divisible by devices": (
        DIGITS + ["--config.batch_size=30"],
        "not divisible by the 8 devices",
    ),
    "missing npz": (
        DIGITS
        + [
            "--config.data.source=npz",
            "--config.data.path=/nonexistent/mnist.npz",
        ],
        "No such .npz file: /nonexistent/mnist.npz",
    ),
    "image size the decoder cannot make": (
        DIGITS + ["--config.model.decoder=resnet_authors"],
        "multiple of 16; got images of shape (8, 8, 1)",
    ),
    "colour ops on grayscale images": (
        DIGITS + ["--config.augment.grayscale_prob=0.2"],
        "need RGB images",
    ),
    "eval without checkpoint": (DIGITS + ["--mode=eval"], "No checkpoint in"),
    "workdir is a file": (DIGITS, "is a file, not a directory"),
}

# The other command lines share its one-line errors (simvae_jax/cli.py).
# name: (arguments after the interpreter, expected text in the error line)
OTHER_COMMANDS = {
    "benchmark: log_every not a multiple of steps_per_dispatch": (
        [
            "experiments/benchmark.py",
            "--what=loop",
            "--config=configs/digits.py",
            "--config.steps_per_dispatch=8",
        ],
        "log_every=50 is not a multiple of steps_per_dispatch=8",
    ),
    "aot: unknown config key": (
        [
            "-m",
            "simvae_jax.aot",
            "--config=configs/digits.py",
            "--topology=v5e:2x2",
            "--config.num_step=10",
        ],
        'Unknown config key "num_step"; did you mean "num_steps"?',
    ),
    "export: original files missing": (
        [
            "-m",
            "simvae_jax.data.export",
            "--dataset=mnist",
            "--from_files=/nonexistent",
            "--out=/nonexistent/mnist.npz",
        ],
        "/nonexistent has neither train-images-idx3-ubyte.gz nor",
    ),
}


def run_cli(args, workdir, env):
  return start(["-m", "simvae_jax.main", f"--workdir={workdir}", *args], env)


def start(args, env):
  return subprocess.Popen(
      [sys.executable, *args],
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
  root = tmp_path_factory.mktemp("cli")
  env = dict(
      os.environ,
      XLA_FLAGS="--xla_force_host_platform_device_count=8",
      JAX_PLATFORMS="cpu",
  )
  processes = {}
  for name, (args, _) in CASES.items():
    workdir = root / name.replace(" ", "_")
    if name == "workdir is a file":
      workdir.write_text("not a directory")
    processes[name] = (run_cli(args, workdir, env), workdir)
  for name, (args, _) in OTHER_COMMANDS.items():
    processes[name] = (start(args, env), None)
  verbose_workdir = root / "verbose"
  verbose = run_cli(
      CASES["unknown method"][0] + ["--verbose"], verbose_workdir, env
  )
  finished = {}
  for name, (process, workdir) in processes.items():
    stdout, stderr = process.communicate(timeout=600)
    finished[name] = (process.returncode, stdout, stderr, workdir)
  stdout, stderr = verbose.communicate(timeout=600)
  finished["verbose"] = (verbose.returncode, stdout, stderr, verbose_workdir)
  return finished


@pytest.mark.parametrize("name", sorted(CASES) + sorted(OTHER_COMMANDS))
def test_mistake_is_one_clear_line(results, name):
  returncode, _, stderr, _ = results[name]
  assert returncode == 1, stderr[-2000:]
  assert "Traceback" not in stderr
  errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, stderr[-2000:]
  assert {**CASES, **OTHER_COMMANDS}[name][1] in errors[0]
  assert "\\n" not in errors[0] and '\\"' not in errors[0]  # no escaped repr
  assert "--verbose" in stderr


def test_eval_without_checkpoint_leaves_nothing_behind(results):
  workdir = results["eval without checkpoint"][3]
  assert not workdir.exists() or not any(workdir.iterdir())


def test_verbose_shows_the_traceback(results):
  returncode, _, stderr, _ = results["verbose"]
  assert returncode != 0
  assert "Traceback" in stderr and "Unknown method 'simclr2'" in stderr


def test_changed_config_is_refused_on_resume_and_a_longer_schedule_allowed(
    tmp_path,
):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  base = [
      "--config=configs/digits.py",
      "--config.eval.probe_epochs=1",
      "--config.eval.compare_untrained=False",
      "--config.checkpoint_every=2",
  ]
  first = run_cli(base + ["--config.num_steps=4"], tmp_path, env)
  _, stderr = first.communicate(timeout=600)
  assert first.returncode == 0, stderr[-2000:]
  changed = run_cli(
      base
      + [
          "--config.num_steps=6",
          "--config.num_views=2",
          "--config.model.latent_dim=3",
      ],
      tmp_path,
      env,
  )
  _, stderr = changed.communicate(timeout=600)
  assert changed.returncode == 1
  error = [l for l in stderr.splitlines() if l.startswith("error: ")][0]
  assert "model.latent_dim, num_views" in error
  config = (tmp_path / "config.json").read_text()
  assert '"num_views": 4' in config  # not overwritten
  longer = run_cli(base + ["--config.num_steps=6"], tmp_path, env)
  _, stderr = longer.communicate(timeout=600)
  assert longer.returncode == 0, stderr[-2000:]
  assert '"num_steps": 6' in (tmp_path / "config.json").read_text()
