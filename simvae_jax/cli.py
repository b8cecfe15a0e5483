"""One-line errors for the package's command lines.

``python -m simvae_jax.main``, ``python -m simvae_jax.aot``, ``python -m
simvae_jax.data.export`` and the scripts in ``experiments/`` run through
``run``: a mistake in the flags, the config, the data or the workdir ends in
one ``error: ...`` line on stderr and exit status 1; ``--verbose`` shows the
traceback instead.
"""

from __future__ import annotations

import re
import sys

from absl import app, flags

_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Show the full traceback of errors."
)

# Errors that describe a problem with the user's config, data or workdir.
USER_ERRORS = (ValueError, KeyError, OSError, FloatingPointError)


def one_line(error: BaseException) -> str:
  """The error's message on one line (KeyError's repr quoting removed)."""
  message = (
      error.args[0] if isinstance(error, KeyError) and error.args else error
  )
  text = " ".join(str(message).split())
  return text or type(error).__name__


def fail(message: str, hint: bool = True) -> None:
  """Prints ``error: message`` (and how to see the traceback) and exits 1."""
  print(f"error: {message}", file=sys.stderr)
  if hint and "--verbose" not in sys.argv:
    print("(run with --verbose for the traceback)", file=sys.stderr)
  sys.exit(1)


def describe_config_error(error: BaseException) -> str:
  """One line for an error raised while parsing --config flags.

  An unknown key arrives from ml_collections as a chain of KeyError and
  AttributeError whose messages quote each other; it is reported as the key
  and ml_collections' suggestion.
  """
  chain = []
  while error is not None and error not in chain:
    chain.append(error)
    error = error.__cause__ or error.__context__
  if isinstance(chain[0], (KeyError, AttributeError)):
    keys = [e.args[0] for e in chain if isinstance(e, KeyError) and e.args]
    text = " ".join(str(e) for e in chain).replace("\\", "")
    suggestion = re.search(r'Did you mean "([\w.]+)"', text)
    if keys:
      hint = f'; did you mean "{suggestion.group(1)}"?' if suggestion else ""
      return f'Unknown config key "{keys[-1]}"{hint}'
  # absl names the flag (useful for bad values) but, for a config file that
  # failed to load, embeds the traceback: then the original error is the news.
  if "Traceback" in str(chain[0]) or "config file" in str(chain[0]):
    return one_line(chain[-1])
  return one_line(chain[0])


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with config errors (unknown keys or variants, bad
  values) reported in one line."""
  try:
    return flags.FLAGS(argv)
  except Exception as error:  # what a config file or override may raise
    if "--verbose" in argv:
      raise
    fail(describe_config_error(error))


def run(main, quiet_errors: tuple[type[BaseException], ...] = ()) -> None:
  """``app.run(main)`` with flags parsed by ``parse_flags`` and the
  ``USER_ERRORS`` that ``main`` raises reported by ``fail``; errors of
  ``quiet_errors`` (about the run's surroundings, with no traceback worth
  offering) are reported without the ``--verbose`` hint."""

  def guarded(argv):
    try:
      return main(argv)
    except (*quiet_errors, *USER_ERRORS) as error:
      if _VERBOSE.value:
        raise
      fail(one_line(error), hint=not isinstance(error, quiet_errors))

  app.run(guarded, flags_parser=parse_flags)
