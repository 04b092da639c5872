"""The three programs of the TensorFlow eager autodiff walkthrough gpuad grew from, ported to
``import gpuad as ad``.  ``python -m gpuad demo`` runs them."""
