"""European handwriting styles drawn into MNIST's training digits."""

import numpy as np

from mnist_core.styles import with_styles


def test_a_share_of_the_0s_1s_and_7s_get_their_european_stroke_and_stay_mnist_like(mnist):
    x, y = mnist.x_train[:3000], mnist.y_train[:3000]
    styled = with_styles(x, y, 0.2, seed=3)
    changed = (styled != x).any(axis=(1, 2))
    for digit in range(10):
        count = changed[y == digit].sum()
        expected = round(0.2 * (y == digit).sum()) if digit in (0, 1, 7) else 0
        assert abs(count - expected) <= 1, (digit, count, expected)  # an unchanged refit, at most
    added = styled[changed].astype(int) - x[changed].astype(int)
    assert (added.clip(0).sum(axis=(1, 2)) > 255 * 3).mean() > 0.9  # a stroke, not a speck
    for image in styled[changed]:
        rows, columns = np.nonzero(image > 25)
        assert np.ptp(rows) < 21 and np.ptp(columns) < 21  # fitted in MNIST's 20-pixel box
        mass = np.array(np.nonzero(image)).T.mean(axis=0)
        assert np.abs(mass - 13.5).max() < 4
    np.testing.assert_array_equal(styled, with_styles(x, y, 0.2, seed=3))
    np.testing.assert_array_equal(with_styles(x, y, 0.0), x)
