"""The config schema and what families of datasets share (ml_collections).

Each dataset is one file ``configs/<dataset>.py`` with ``get_config(arg)``: it
starts from ``get_base_config()`` (every field and its default) or a family
(``mnist_like_config``, ``natural_image_config``), states the dataset's facts
(``data``: tfds name, label key, splits, image size, offline files; the
paper's numbers as ``PAPER_TABLE1``) and its variants (``parse_variant``).
Any field can be overridden on the command line, e.g. ``--config.seed=1``.
"""

from __future__ import annotations

import ml_collections

from simvae_jax import methods, models


def get_base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.method = "simvae"

  # Host pipeline: yields uint8 images and labels only.
  config.data = ml_collections.ConfigDict(
      dict(
          source="npz",  # 'digits' | 'npz' | 'tfds' | 'celeba_folder'
          name="mnist",  # tfds dataset name (source='tfds')
          display_name="",  # for reports ('' = name)
          label_key="label",  # tfds feature of the class label
          # The splits that train the method, fit the probes (kNN, GMM; a
          # validation part is held out of it) and test them.
          train_split="train",
          probe_split="train",
          test_split="test",
          path="",  # .npz file(s), comma-separated; or the CelebA folder
          # The dataset's .npz files in a folder like ../shared/datasets, for
          # the experiment scripts' --data_dir (source='npz').
          offline_files=(),
          data_dir="",  # tfds data_dir ('' = tfds default)
          download=True,  # let tfds download and prepare (needs a network)
          train_subset=0,  # > 0: a fixed random subset of the training split
          center_crop=0,  # celeb_a / celeba_folder: centred square side (px)
          image_size=0,  # ... then resized to this side (0: as is)
          # (H, W, C) of the stored images, so that a run is sized without
          # reading data (python -m simvae_jax.aot); image_size overrides H, W.
          image_shape=(),
          # tfds and the CelebA folder are decoded once into a uint8 cache:
          # in memory up to this size (GiB), else memory-mapped in cache_dir
          # (CelebA at 64 px, 2 GiB, is then shared by every run).
          cache_memory_gib=1.0,
          cache_dir="",  # '' = simvae_cache/ beside the data
          decode_workers=0,  # processes decoding the CelebA folder (0: CPUs)
      )
  )

  # Views per image (J) and images per global batch; rows = batch_size * J.
  config.num_views = 10
  config.batch_size = 64
  # Length of training: num_steps if > 0, otherwise num_epochs epochs.
  config.num_steps = 0
  config.num_epochs = 400

  # On-device augmentation (SimCLR protocol).
  # Colour ops (RGB only) are off here; configs for colour datasets turn them on.
  config.augment = ml_collections.ConfigDict(
      dict(
          crop_scale=(0.4, 1.0),
          crop_ratio=(3 / 4, 4 / 3),
          flip="horizontal",
          color_jitter=(
              0.8,
              0.8,
              0.8,
              0.2,
          ),  # brightness, contrast, saturation, hue
          color_jitter_strength=1.0,  # s: the strengths are scaled by s
          color_jitter_prob=0.0,
          grayscale_prob=0.0,
          binarize=False,
      )
  )

  # Networks by name; each architecture's hyperparameters in its own section
  # (model.encoders.<name>, model.decoders.<name>), defaults from the modules.
  config.model = ml_collections.ConfigDict(
      dict(
          encoder="mlp",
          decoder="mlp",
          latent_dim=10,
          encoders=models.hyperparameter_defaults(models.ENCODERS),
          decoders=models.hyperparameter_defaults(models.DECODERS),
          dtype="float32",  # computation dtype: 'float32' | 'bfloat16'
          # Projection head (SimCLR, MoCo) / expander (VICReg) on the representation.
          head_hidden=(512,),
          head_dim=128,
      )
  )

  # p(x|z): 'gaussian' (paper) or 'bernoulli' (authors' MNIST code); the
  # Gaussian mean is the decoder output ('identity') or its 'sigmoid'.
  config.likelihood = ml_collections.ConfigDict(
      dict(name="gaussian", log_variance=-4.6, mean_link="identity")
  )
  # Each method's hyperparameters, config.<method>, with the defaults its
  # module declares (methods/*.py SPEC), e.g. simvae.prior_variance (the
  # variance sigma^2 of p(z^1..z^J|y)), simclr.temperature.
  for name, spec in methods.REGISTRY.items():
    if spec.defaults:
      config[name] = ml_collections.ConfigDict(dict(spec.defaults))
  # Decoder trained on frozen representations of discriminative methods:
  # num_epochs epochs of the training split, at most as many steps as the
  # run's own schedule (num_steps / num_epochs), unless num_steps > 0 asks
  # for a length.
  config.posthoc_decoder = ml_collections.ConfigDict(
      dict(num_steps=0, num_epochs=2.0, learning_rate=1e-3)
  )

  # The paper's constant Adam 8e-5 (eps 1e-4) by default; see optimizers.py.
  config.optimizer = ml_collections.ConfigDict(
      dict(
          name="adam",
          learning_rate=8e-5,
          eps=1e-4,
          weight_decay=0.0,
          momentum=0.9,  # LARS only
          schedule="constant",
          warmup_epochs=0.0,
          final_learning_rate_fraction=0.0,
      )
  )

  config.log_every = 100
  # Steps fused into one compiled call (a lax.scan over K batches; the same
  # result as K single steps). Logs, checkpoints, evaluations and stops on a
  # signal happen between dispatches, so log_every, checkpoint_every and
  # eval.every_steps must be multiples of it. Raise it (e.g. 8) when the
  # device outruns the host's dispatch (small models on an accelerator); keep
  # 1 on CPU, where XLA runs the conv networks several times slower inside
  # the loop that K > 1 compiles to.
  config.steps_per_dispatch = 1
  # A non-finite loss or gradient stops the run (naming the step and terms);
  # True skips such updates instead and counts them in metrics.jsonl.
  # Gradients are checked on logged and saved steps (their norms are computed
  # there only); elsewhere a non-finite gradient shows as a non-finite loss at
  # the next step. skip_nonfinite checks every step.
  config.skip_nonfinite = False
  # Also write TensorBoard event files (workdir/tensorboard, process 0 only).
  config.tensorboard = False
  # Checkpoints: every `checkpoint_every` steps (0: not by count) or every
  # `checkpoint_every_minutes` (0: not by time; checked at log steps),
  # whichever is due first, and at the end. By time by default: 1,000 steps
  # are 2-3 s on an H200 and 15 minutes of CIFAR-10 on a 2-core CPU.
  config.checkpoint_every = 0
  config.checkpoint_every_minutes = 10.0
  config.max_checkpoints = 3
  # Persistent XLA compilation cache: a restarted or resumed run takes its
  # compiled programs from here ("" leaves JAX's own setting).
  config.compilation_cache_dir = "~/.cache/simvae_jax/xla"
  # A run owns its workdir (lock.json); another host's lock without a
  # heartbeat for this long is taken over (same host: when its process ends).
  config.lock_stale_minutes = 10.0

  # The online monitor (online_probe.py): a linear classifier trained during
  # the run on stop-gradient representations of each batch's un-augmented
  # images and its labels, with its own Adam; logged as online/loss and
  # online/accuracy and scored on the test split at every evaluation. A
  # trend to watch, not the offline protocol.
  config.online_probe = ml_collections.ConfigDict(
      dict(enabled=False, learning_rate=1e-3)
  )

  # The evaluators of every evaluation (evaluation/evaluators.py), in order:
  # representation (probes, kNN, GMM, reconstruction error; eval.tasks),
  # online (with online_probe.enabled), fid (with fid.enabled), images and
  # latents (final evaluation only), untrained (with eval.compare_untrained).
  # Leave one out to skip it, e.g. --config.evals=representation,latents.
  config.evals = (
      "representation",
      "online",
      "fid",
      "images",
      "latents",
      "untrained",
  )
  config.eval = ml_collections.ConfigDict(
      dict(
          every_steps=0,  # also evaluate every N steps (0: only at the end)
          knn_ks=tuple(
              range(1, 21)
          ),  # k candidates, chosen on a validation split
          val_fraction=0.1,  # of train, held out for model selection
          probe_epochs=200,  # at most; the epoch is chosen on validation
          probe_learning_rate=3e-4,  # Adam, as the authors' probe
          probe_batch_size=64,
          probe_patience=20,  # stop after this many epochs without gain
          max_train_examples=0,  # 0 = all; cap for quick evaluations
          compare_untrained=True,  # also evaluate the encoder at initialisation
          num_images=8,  # test images in reconstructions.png
          tasks=(),  # further tasks (evaluation/tasks.py), e.g. style
          style_max_examples=10000,  # images per split for each style task
          # GMM: k-means initialisations (the best is kept), and where EM
          # runs: "device" (JAX), "sklearn" (host, float64) or "auto" (the
          # device from 10,000 training points; scikit-learn below, where it
          # is done before the device's programs would have compiled).
          gmm_inits=3,
          gmm_backend="auto",
      )
  )
  # FID of reconstructions and samples against the test set (final evaluation).
  # Features: Inception pool3 if inception_weights (a converted pytorch-fid
  # .npz) is set, else a classifier trained on the dataset's labels (cached;
  # its FIDs compare runs with each other, not with published Inception FIDs).
  config.fid = ml_collections.ConfigDict(
      dict(
          enabled=False,
          num_images=10000,
          inception_weights="",
          classifier_epochs=3,
          classifier_max_examples=20000,
          cache_dir="~/.cache/simvae_jax/fid",
      )
  )
  return config


def parse_variant(arg: str | None, flags: tuple[str, ...]) -> dict:
  """The variants of ``--config=configs/NAME.py:ARG``, which compose:
  comma-separated flags from ``flags`` (``paper``, the first, is the default
  and changes nothing) and ``encoder=NAME`` (any registered encoder), e.g.
  ``quick,encoder=resnet18``. Returns {"flags": set of names, "encoder": name
  or None}; raises a clear error naming the choices."""
  chosen = {"flags": set(), "encoder": None}
  for part in filter(None, (arg or "").split(",")):
    key, equals, value = part.partition("=")
    if equals and key == "encoder" and value in models.ENCODERS:
      chosen["encoder"] = value
    elif not equals and key in flags:
      chosen["flags"].add(key)
    else:
      raise ValueError(
          f"Unknown config variant {part!r}; combine any of {flags} and "
          f"encoder=NAME with NAME one of {tuple(models.ENCODERS)}, separated "
          f"by commas (e.g. quick,encoder=resnet18)"
      )
  return chosen


def mnist_like_config(variant: dict) -> ml_collections.ConfigDict:
  """What MNIST and Fashion-MNIST share (``variant`` from ``parse_variant``).

  ``paper`` (default): the MLP 784-2000-500-500-(2*10), J = 10 views of 64
  images, horizontal flips, Gaussian likelihood, Adam 8e-5 for 400 epochs.
  ``authors``: the released code's setting, 64 images x J = 2, vertical flips,
  binarised inputs and a Bernoulli likelihood. ``quick``: ``paper`` with Adam
  1e-3 for 7 epochs and no untrained-encoder comparison: training and
  evaluation in under 10 minutes on 2 CPU cores.
  """
  config = get_base_config()
  config.data.source = "tfds"
  if variant["encoder"]:
    config.model.encoder = variant["encoder"]
  if "authors" in variant["flags"]:
    config.num_views = 2
    config.augment.flip = "vertical"
    config.augment.binarize = True
    config.likelihood.name = "bernoulli"
  if "quick" in variant["flags"]:
    config.optimizer.learning_rate = 1e-3
    config.num_epochs = 7
    config.eval.compare_untrained = False
  return config


def natural_image_config(variant: dict) -> ml_collections.ConfigDict:
  """What the colour datasets share: the released code's conv networks (latent
  64), 64 images x J = 10 views, crop scale [0.6, 1], horizontal flip, SimCLR
  colour jitter (0.8, 0.8, 0.8, 0.2) with p = 0.8 and grayscale p = 0.2, a
  Gaussian likelihood with a sigmoid mean (log sigma_x^2 = -4.6), sigma^2 =
  0.15, Adam 8e-5 (eps 1e-4). ``authors`` switches to the released code's views
  (J = 2, jitter always, no grayscale, vertical flip), ``resnet18`` to the SSL
  libraries' ResNet-18 encoder (as does ``encoder=resnet18``); ``variant``
  from ``parse_variant``."""
  config = get_base_config()
  config.data.source = "tfds"
  config.model.encoder = "resnet_authors"
  config.model.decoder = "resnet_authors"
  config.model.latent_dim = 64
  config.likelihood.mean_link = "sigmoid"
  config.augment.crop_scale = (0.6, 1.0)
  config.augment.color_jitter_prob = 0.8
  config.augment.grayscale_prob = 0.2
  config.log_every = 50
  if "authors" in variant["flags"]:
    config.num_views = 2
    config.augment.color_jitter_prob = 1.0
    config.augment.grayscale_prob = 0.0
    config.augment.flip = "vertical"
  if "resnet18" in variant["flags"]:
    config.model.encoder = "resnet18"
  if variant["encoder"]:
    config.model.encoder = variant["encoder"]
  return config
