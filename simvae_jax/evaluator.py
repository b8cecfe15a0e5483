"""Evaluation of a run: the evaluators of ``config.evals``
(``evaluation/evaluators.py``) at their cadence, reported in one place
(``evaluation/report.py``).

The splits are streamed from their sources batch by batch (only labels and
attributes are held in memory), and representations and reconstructions are
computed by every process together, sharded over all devices; the probes, kNN
and clustering then run on process 0 only, which alone writes ``eval.json``,
``eval_history.jsonl``, the PNG files and the console table (other processes
get results without metrics).
"""

from __future__ import annotations

from etils import epath

from simvae_jax.evaluation import context, evaluators, report
from simvae_jax.evaluation.common import Stopwatch


class Evaluator:
  """Evaluates a run's parameters when called; the caller says whether the
  evaluation is the final one and whether the decoder is ready.

  ``timer`` collects the seconds of each component of the next evaluation
  (the caller may add its own, e.g. the post-hoc decoder's), reported in its
  results as ``seconds``.
  """

  def __init__(self, experiment, workdir: str, writer=None):
    self.experiment = experiment
    self.workdir = epath.Path(workdir)
    self.data = context.EvalData.from_experiment(experiment)
    self.units = evaluators.make_evaluators(experiment, writer)
    config = experiment.config
    self.reporter = (
        report.Reporter(
            workdir,
            writer,
            f"the {len(self.data.test)} {config.data.name} test images",
        )
        if context.is_main_process()
        else None
    )
    self.timer = Stopwatch()
    self._once: dict[str, dict] = {}  # results of the units run once

  def resume(self, step: int) -> None:
    """Drops history entries after ``step`` (logged by an interrupted run)."""
    if self.reporter is not None:
      self.reporter.resume(step)

  def __call__(
      self,
      params,
      model_state,
      step: int,
      monitor: dict | None = None,
      final: bool = False,
      reconstruction: bool | None = None,
  ) -> dict:
    """Runs the units due at this evaluation and reports their results.

    Args:
      params, model_state: the networks to evaluate.
      step: the training step they come from.
      monitor: the online probe's state (``TrainState.online_probe``).
      final: the run's last evaluation (units of cadence ``final`` run).
      reconstruction: whether the decoder is trained (default: only where it
        is part of the objective, i.e. generative methods).
    """
    if reconstruction is None:
      reconstruction = self.experiment.method.generative
    now = context.Context(
        self.experiment,
        self.data,
        self.workdir,
        params,
        model_state,
        int(step),
        final,
        reconstruction,
        self.timer,
        monitor,
    )
    results = {"step": int(step)}
    for unit in self.units:
      if unit.cadence == evaluators.FINAL and not final:
        continue
      if unit.cadence == evaluators.ONCE:
        if unit.name not in self._once:
          self._once[unit.name] = unit.run(now)
        results.update(self._once[unit.name])
      else:
        results.update(unit.run(now))
    results["seconds"] = {
        name: round(seconds, 2) for name, seconds in self.timer.seconds.items()
    }
    self.timer = Stopwatch()
    if self.reporter is not None:
      config = self.experiment.config
      self.reporter.write(results, f"{config.method} (step {step})")
    return results
