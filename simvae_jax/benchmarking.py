"""What ``experiments/benchmark.py`` and ``experiments/accelerator_check.py``
measure: the compiled train step, the input pipeline and the host loop, each
with the machine's yardstick (a large float32 matmul's GFLOP/s measured in the
same process) so that figures from different machines can be related.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from simvae_jax import sharding, train, train_step, writers
from simvae_jax.data import pipeline, sources
from simvae_jax.experiment import Experiment


def step_flops(compiled) -> float:
  """FLOPs of one step according to XLA's cost analysis (0 if unavailable)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", 0.0))


def matmul_gflop_per_s(
    size: int = 2048, repeats: int = 7, dtype=jnp.float32
) -> float:
  """The yardstick: GFLOP/s of a jitted [size, size] @ [size, size] in
  ``dtype`` on the default device (the median of ``repeats`` calls)."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype)
  matmul = jax.jit(lambda a: a @ a)
  jax.block_until_ready(matmul(a))
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    jax.block_until_ready(matmul(a))
    times.append(time.perf_counter() - started)
  return 2 * size**3 / statistics.median(times) / 1e9


def unlogged_dispatch(experiment, images: np.ndarray):
  """The experiment's compiled dispatch (``steps_per_dispatch`` steps) of the
  steps nobody logs (no diagnostics: global norms), on the global batch
  ``images`` uint8 [B, H, W, C] (labels zero where the online probe needs
  them). Returns (``dispatch(state) -> (state, metrics)``, the compiled
  program)."""
  config = experiment.config
  batch = {"image": images, "label": np.zeros(len(images), np.int32)}
  batches = train_step.stack_batches(
      [batch] * config.steps_per_dispatch,
      experiment.mesh,
      labels=experiment.monitor is not None,
  )
  compiled = (
      experiment.compile_steps()
      .lower(experiment.abstract_state(), batches, np.bool_(False))
      .compile()
  )
  return lambda state: compiled(state, batches, np.bool_(False)), compiled


def benchmark(
    config, repeats: int, steps_per_repeat: int, warmup_steps: int
) -> dict:
  experiment = Experiment.from_config(config)
  per_dispatch = config.steps_per_dispatch
  images = experiment.train_source.read(np.arange(config.batch_size))["image"]
  state = experiment.initial_state()
  started = time.perf_counter()
  dispatch, compiled = unlogged_dispatch(experiment, images)
  compile_s = time.perf_counter() - started
  dispatches = max(1, steps_per_repeat // per_dispatch)
  for _ in range(max(1, warmup_steps // per_dispatch)):
    state, _ = dispatch(state)
  jax.block_until_ready(state)
  step_times = []
  for _ in range(repeats):
    started = time.perf_counter()
    for _ in range(dispatches):
      state, metrics = dispatch(state)
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - started
    step_times.append(elapsed / (dispatches * per_dispatch))
  median = statistics.median(step_times)
  views = config.batch_size * config.num_views
  flops = step_flops(compiled)
  yardstick = matmul_gflop_per_s()
  return {
      "config": f"{config.data.name} {config.method}",
      "encoder": config.model.encoder,
      "decoder": config.model.decoder,
      "dtype": config.model.dtype,
      "images_per_step": config.batch_size,
      "num_views": config.num_views,
      "steps_per_dispatch": per_dispatch,
      "online_probe": experiment.monitor is not None,
      "views_per_step": views,
      "devices": jax.device_count(),
      "backend": jax.default_backend(),
      "machine": platform.processor() or platform.machine(),
      "compile_s": round(compile_s, 3),
      "median_step_ms": round(1e3 * median, 3),
      "min_step_ms": round(1e3 * min(step_times), 3),
      "max_step_ms": round(1e3 * max(step_times), 3),
      "views_per_s": round(views / median, 1),
      "gflop_per_step": round(flops / 1e9, 4),
      "gflop_per_s": round(flops / median / 1e9, 2),
      "matmul_gflop_per_s": round(yardstick, 1),
      "fraction_of_matmul": round(flops / median / 1e9 / yardstick, 3),
      "repeats": repeats,
      "steps_per_repeat": steps_per_repeat,
  }


def input_benchmark(config, seconds: float) -> dict:
  started = time.perf_counter()
  source = sources.load_source(config.data, "train")
  load_s = time.perf_counter() - started
  mesh = sharding.make_mesh()
  per_dispatch = config.steps_per_dispatch
  iterator = pipeline.make_train_iterator(
      pipeline.make_train_dataset(source, config.batch_size, seed=config.seed)
  )

  def deliver():
    batches = [next(iterator) for _ in range(per_dispatch)]
    return train_step.stack_batches(batches, mesh)

  for _ in range(5):
    jax.block_until_ready(deliver())
  dispatches, started = 0, time.perf_counter()
  while time.perf_counter() - started < seconds:
    jax.block_until_ready(deliver())
    dispatches += 1
  elapsed = time.perf_counter() - started
  images = dispatches * per_dispatch * config.batch_size
  return {
      "what": "input",
      "config": f"{config.data.name} ({config.data.source})",
      "examples": len(source),
      "image_shape": list(source.image_shape),
      "batch_size": config.batch_size,
      "steps_per_dispatch": per_dispatch,
      "load_s": round(load_s, 3),
      "images_per_s": round(images / elapsed, 1),
      "batches": dispatches * per_dispatch,
      "devices": jax.device_count(),
      "matmul_gflop_per_s": round(matmul_gflop_per_s(), 1),
  }


def idle_steps(state, batches, diagnose):
  """A step that does no work: the state passes through (donated), and the
  metrics read one pixel per image so the batch must arrive."""
  del diagnose
  count = batches["image"].shape[0]
  first_pixel = batches["image"][:, :, 0, 0, 0].astype(jnp.float32)
  zeros = jnp.zeros(count, jnp.float32)
  metrics = {
      "loss": jnp.mean(first_pixel, axis=1),
      "learning_rate": zeros,
      "grad_norm": zeros,
      "param_norm": zeros,
      "finite": jnp.ones(count, jnp.float32),
  }
  return state.replace(step=state.step + count), metrics


class _NoCheckpoints:
  """The loop benchmark times the loop, not checkpoint writes."""

  directory = "(none)"

  def save(self, step, state, iterator):
    del step, state, iterator

  def latest_step(self):
    return None


def trivial_state(state):
  """``state`` with a one-scalar model: what the loop dispatches when the
  model is trivial (the step count and key kept, every network and optimiser
  leaf dropped; copies, so donating it leaves ``state`` intact)."""
  return state.replace(
      step=jnp.copy(state.step),
      rng=jnp.copy(state.rng),
      params={"w": jnp.zeros((), jnp.float32)},
      model_state={},
      opt_state={},
      method_state={},
      online_probe={},
  )


def loop_benchmark(config, seconds: float) -> dict:
  """The host ceiling: ``train.run_steps`` (pipeline, transfers, dispatch,
  logging) around ``idle_steps``, once with a trivial model's state
  (``images_per_s``) and once with the config's real train state
  (``real_state_images_per_s``: dispatch cost grows with its leaves)."""
  experiment = Experiment.from_config(config)
  per_dispatch = config.steps_per_dispatch
  replicated = sharding.replicated(experiment.mesh)
  idle = jax.jit(
      idle_steps,
      in_shardings=(
          replicated,
          sharding.steps_sharded(experiment.mesh),
          replicated,
      ),
      out_shardings=(replicated, replicated),
      donate_argnums=0,
  )
  dispatcher = train.Dispatcher(idle, None, per_dispatch)
  iterator = pipeline.make_train_iterator(experiment.train_dataset())

  def run(state, steps: int):
    experiment.total_steps = int(state.step) + steps
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
      writer, _ = writers.make_writers(directory, False)
      bar = tqdm.tqdm(total=steps, disable=True)
      parts = train.LoopParts(
          iterator,
          dispatcher,
          _NoCheckpoints(),
          writer,
          train.Preemption(),
          bar,
      )
      state = train.run_steps(experiment, state, parts)
      writer.close()
    return state, time.perf_counter() - started

  def ceiling(state) -> tuple[int, int, float]:
    """(leaves, steps, seconds) of the first doubling that lasts ``seconds``."""
    state, _ = run(state, 4 * per_dispatch)  # compiles the idle step
    steps = 32 * per_dispatch
    while True:
      state, elapsed = run(state, steps)
      if elapsed >= seconds:
        return len(jax.tree.leaves(state)), steps, elapsed
      steps *= 2

  real = experiment.initial_state()
  _, steps, elapsed = ceiling(trivial_state(real))
  real_leaves, real_steps, real_elapsed = ceiling(real)
  return {
      "what": "loop",
      "config": f"{config.data.name} {config.method} ({config.data.source})",
      "batch_size": config.batch_size,
      "steps_per_dispatch": per_dispatch,
      "log_every": config.log_every,
      "steps": steps,
      "images_per_s": round(steps * config.batch_size / elapsed, 1),
      "steps_per_s": round(steps / elapsed, 1),
      "real_state_leaves": real_leaves,
      "real_state_images_per_s": round(
          real_steps * config.batch_size / real_elapsed, 1
      ),
      "devices": jax.device_count(),
      "matmul_gflop_per_s": round(matmul_gflop_per_s(), 1),
  }


def eval_benchmark(config, workdir: str = "") -> dict:
  """Seconds per component of a run's final evaluation (what ends ``main``:
  post-hoc decoder, images, representations, probes, kNN, GMM, style images,
  FID, ...) of the latest checkpoint in ``workdir``, or of the initial state;
  the evaluation's outputs go to a temporary directory."""
  experiment = Experiment.from_config(config)
  state = (
      train.restore_latest(experiment, workdir)
      if workdir
      else experiment.initial_state()
  )
  with tempfile.TemporaryDirectory() as directory:
    evaluator = train.Evaluator(experiment, directory)
    started = time.perf_counter()
    results = train.evaluate_final(experiment, evaluator, state, directory)
    total = time.perf_counter() - started
  label = results["label"]
  return {
      "what": "eval",
      "config": f"{config.data.name} {config.method} ({config.data.source})",
      "step": int(state.step),
      "total_s": round(total, 1),
      "seconds": results["seconds"],
      "tasks": len(results.get("tasks", {})),
      "mlp_probe_acc": label.get("mlp_probe_acc"),
      "gmm_acc": label.get("gmm_acc"),
      "devices": jax.device_count(),
      "matmul_gflop_per_s": round(matmul_gflop_per_s(), 1),
  }
