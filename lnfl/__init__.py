"""lnfl — Label Noise and Feature Learning.

The library behind the executable textbook on Han et al., *On the Role of Label Noise in the
Feature Learning Process* (ICML 2025).  One module per concept of the paper:

- :mod:`lnfl.data`           the signal–noise data model and label flips (ỹ)
- :mod:`lnfl.model`          the two-layer ReLU CNN, logistic loss, analytic gradient
- :mod:`lnfl.training`       full-batch gradient descent with γ/ρ bookkeeping; batched runs (``train_batch``)
- :mod:`lnfl.engine`         the numerical core: GD on the weights or, d-independently, on Gram matrices
- :mod:`lnfl.decomposition`  the signal–noise decomposition by projection
- :mod:`lnfl.theory`         SNR, T₁ order, Stage I growth ratio, the paper's bounds and conditions
- :mod:`lnfl.race`           the clean/noisy race on γ and the measured Stage I growth ratio
- :mod:`lnfl.stages`         Stage I/II quantities read off a run: ρ̄ vs γ per sample, gradient shares, the Stage I window and T₁
- :mod:`lnfl.selection`      the log 2 threshold, small-loss selection, early stopping, select-then-retrain
- :mod:`lnfl.realdata`       real data offline (scikit-learn's 8×8 digits), a small CNN, GD/SGD trainer, CIFAR-10 (local only)
- :mod:`lnfl.beyond`         SGD, instance-dependent flips, K classes, per-class accuracy (chapter 11)
- :mod:`lnfl.regimes`        the sweeps of chapter 9: Stage I time scales, phase diagram, benign vs harmful
- :mod:`lnfl.bench`          ``python -m lnfl.bench``: speed against autograd, GEMM throughput, engines
- :mod:`lnfl.widgets`        the interactive explorers (data model, the race, log 2 selection)
- :mod:`lnfl.coursework`     student versions, otter-grader assignments, the exercise check, the Colab cell
- :mod:`lnfl.plain`          the chapters as plain notebooks (boxes, glued numbers, references as Markdown)
- :mod:`lnfl.plotting`       the book's figure style: colour-blind-safe, clean/noisy colours, stage boundary
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
