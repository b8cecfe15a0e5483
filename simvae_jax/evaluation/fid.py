"""Fréchet distance between Gaussian fits of two feature sets (FID).

``FD = ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^{1/2} C_2 C_1^{1/2})^{1/2})``

The trace term is computed from symmetric eigendecompositions (``C_1^{1/2}``,
then the eigenvalues of the symmetric PSD matrix ``C_1^{1/2} C_2 C_1^{1/2}``,
clipped at 0), so it stays real, finite and non-negative for near-singular or
rank-deficient covariances (fewer samples than feature dimensions), where the
usual ``scipy.linalg.sqrtm(C_1 @ C_2)`` returns complex parts and needs an
epsilon added to the diagonals. Which features are used (Inception pool3, or an
offline classifier trained on the dataset, not comparable with Inception FID)
is the caller's and is named in every result.
"""

from __future__ import annotations

import numpy as np


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean [D] and covariance [D, D] (unbiased) of features [N, D], float64."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError(f"need features [N >= 2, D], got {features.shape}")
  return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (eigenvalues clipped)."""
  values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(
    mean_1: np.ndarray, cov_1: np.ndarray, mean_2: np.ndarray, cov_2: np.ndarray
) -> float:
  """Fréchet distance between N(mean_1, cov_1) and N(mean_2, cov_2)."""
  mean_1, mean_2 = np.asarray(mean_1, np.float64), np.asarray(
      mean_2, np.float64
  )
  cov_1, cov_2 = np.asarray(cov_1, np.float64), np.asarray(cov_2, np.float64)
  root_1 = _psd_sqrt(cov_1)
  middle = root_1 @ cov_2 @ root_1
  eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
  trace_sqrt = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
  distance = (
      np.sum(np.square(mean_1 - mean_2))
      + np.trace(cov_1)
      + np.trace(cov_2)
      - 2.0 * trace_sqrt
  )
  return float(max(distance, 0.0))


def fid_from_features(features_1: np.ndarray, features_2: np.ndarray) -> float:
  """Fréchet distance of Gaussian fits to two feature sets [N_i, D]."""
  return frechet_distance(
      *gaussian_statistics(features_1), *gaussian_statistics(features_2)
  )
