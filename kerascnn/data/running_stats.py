"""Mean and variance accumulated batch by batch, in constant memory."""

import numpy as np


class RunningMoments:
    """Count, mean and M2 (sum of squared deviations) along some axes, merged batch by batch.

    Each batch's own mean and M2 are merged into the totals with the pairwise update of
    Chan, Golub & LeVeque ("Updating formulae and a pairwise algorithm for computing sample
    variances", 1979): numerically stable, unlike sum-of-squares minus squared mean, and the
    accumulators are float64 arrays of the kept axes' size, whatever the number of batches.

    Args:
        axis: the axes each batch is reduced over (e.g. all but the channel axis).
    """

    def __init__(self, axis):
        self.axis = tuple(axis)
        self.count = 0
        self.mean = None
        self.m2 = None

    def update(self, batch):
        """Merges a float batch into the totals."""
        batch = np.asarray(batch)
        n = int(np.prod([batch.shape[a] for a in self.axis]))
        if n == 0:
            return
        batch_mean = batch.sum(axis=self.axis, dtype=np.float64, keepdims=True) / n
        # Deviations in the batch's precision, squares summed in float64; the mean's rounding
        # to that precision is corrected exactly: sum((x - m')^2) = M2 + n (m - m')^2.
        rounded = batch_mean.astype(batch.dtype)
        batch_m2 = np.square(batch - rounded).sum(axis=self.axis, dtype=np.float64)
        batch_m2 -= n * np.square(np.squeeze(batch_mean - rounded, axis=self.axis))
        batch_mean = np.squeeze(batch_mean, axis=self.axis)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, batch_mean, np.maximum(batch_m2, 0.0)
            return
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + np.maximum(batch_m2, 0.0) + np.square(delta) * (self.count * n / total)
        self.count = total

    @property
    def variance(self):
        """The population variance (M2 / count), float64."""
        return self.m2 / self.count

    @property
    def std(self):
        """The population standard deviation, float64."""
        return np.sqrt(self.variance)
