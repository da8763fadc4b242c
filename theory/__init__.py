"""dipjax.theory: the theory of Section II of the survey as functions to evaluate on your own network and operator.

* :mod:`~dipjax.theory.empirical_ntk` — empirical NTK ``J Jᵀ`` of any ``apply(params, z)``: dense, matrix-free,
  Lanczos spectrum, finite differences.
* :mod:`~dipjax.theory.stax` — infinite-width NNGP/NTK from a layer list (neural-tangents ``stax`` conventions,
  natural axis order) that also builds the finite network dipjax trains.
* :mod:`~dipjax.theory.filter_recursion` — eq. (6) in closed form, gradient flow, Theorem 2 (limit and regimes),
  Theorem 3 (bias–variance MSE).
* :mod:`~dipjax.theory.compressive_sensing` — Theorem 1's terms (smoothness × spectral tail), the
  Heckel–Soltanolkotabi factors and the decoder-Jacobian facts.
* :mod:`~dipjax.theory.early_stopping` — the ES-WMV curve predicted by the NTK dynamics.
* :mod:`~dipjax.theory.burer_monteiro` — Theorem 4 (factorised gradient flow vs minimum nuclear norm) and DOP.
* :mod:`~dipjax.theory.gradient_descent` — the real gradient-descent training eq. (6) linearises.

Dense linear algebra here is meant for float64: call ``jax.config.update("jax_enable_x64", True)`` first.
"""

from dipjax.theory import stax
from dipjax.theory.burer_monteiro import (commuting_measurements, dop_convex_commuting, dop_gradient_flow,
                                          factorised_gradient_flow, min_nuclear_norm_commuting)
from dipjax.theory.compressive_sensing import (decoder_jacobian, heckel_soltanolkotabi_factors,
                                               jacobian_spectrum_facts, theorem1_terms, two_layer_decoder)
from dipjax.theory.early_stopping import predicted_wmv, wmv_detection
from dipjax.theory.empirical_ntk import (empirical_ntk, finite_difference_ntk, lanczos_top_eigenpairs, module_apply,
                                         ntk_matvec)
from dipjax.theory.filter_recursion import (expected_squared_error, filter_recursion, gradient_flow, iterate,
                                            iterate_naive, limit, operator_matrix, psnr_curve, stable_step_size,
                                            theorem2_regime)
from dipjax.theory.gradient_descent import train_gradient_descent

__all__ = ["stax", "empirical_ntk", "ntk_matvec", "finite_difference_ntk", "lanczos_top_eigenpairs", "module_apply",
           "filter_recursion", "iterate", "iterate_naive", "gradient_flow", "limit", "stable_step_size",
           "expected_squared_error", "psnr_curve", "operator_matrix", "theorem2_regime", "theorem1_terms",
           "heckel_soltanolkotabi_factors",
           "jacobian_spectrum_facts", "two_layer_decoder", "decoder_jacobian", "predicted_wmv", "wmv_detection",
           "factorised_gradient_flow", "min_nuclear_norm_commuting", "commuting_measurements", "dop_gradient_flow",
           "dop_convex_commuting", "train_gradient_descent"]
