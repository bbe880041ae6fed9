import numpy as np

from xane3.baseline import mean_spectrum


def test_mean_spectrum_ignores_masked_points_and_fills_uncovered() -> None:
    e = np.arange(5.0)
    spec = np.array([[1.0, 2.0, 99.0, 4.0, 5.0], [3.0, 4.0, 99.0, 6.0, 0.0]])
    mask = np.array([[1, 1, 0, 1, 1], [1, 1, 0, 1, 0]], dtype=bool)
    mean = mean_spectrum(e, spec, mask)
    # column 2 is covered by no spectrum: interpolated between 3 and 5, never the 99s
    np.testing.assert_allclose(mean, [2.0, 3.0, 4.0, 5.0, 5.0])
