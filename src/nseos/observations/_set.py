"""An ordered collection of observations, with a table, a Gaussian reduction and contours."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import equinox as eqx
import numpy as np

from ._base import AbstractBinaryObservation, AbstractObservation, ObservationError
from ._gaussian import MassRadiusGaussian
from ._samples import MassRadiusSamples

POOR_REDUCTION_COVERAGE = 0.05
"""A Gaussian summary is flagged as poor when the fraction of samples inside its 68 % or 95 %
ellipse is off by more than 5 percentage points."""
POOR_REDUCTION_SKEWNESS = 0.5
"""... or when either marginal has |skewness| above 0.5."""


class GaussianReductionWarning(UserWarning):
    """A posterior was reduced to a Gaussian that describes it poorly."""


class ObservationSet(eqx.Module):
    """An ordered, named collection of observations; iterate, index by position or name."""

    observations: tuple[AbstractObservation, ...]

    def __init__(self, observations: Sequence[AbstractObservation]):
        obs = tuple(observations)
        for o in obs:
            if not isinstance(o, AbstractObservation):
                raise TypeError(f"not an observation: {o!r}")
        names = [o.name for o in obs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ObservationError(f"duplicate observation names: {', '.join(dupes)}")
        self.observations = obs

    def __len__(self) -> int:
        return len(self.observations)

    def __iter__(self) -> Iterator[AbstractObservation]:
        return iter(self.observations)

    def __getitem__(self, key: int | str) -> AbstractObservation:
        if isinstance(key, str):
            for o in self.observations:
                if o.name == key:
                    return o
            raise KeyError(f"no observation named {key!r}; have {', '.join(self.names)}")
        return self.observations[key]

    def __add__(self, other: ObservationSet) -> ObservationSet:
        return ObservationSet(self.observations + tuple(other))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.observations)

    @property
    def n_latent_masses(self) -> int:
        """Latent masses needed by the conditional likelihood: 1 per star, 2 per binary."""
        return sum(2 if isinstance(o, AbstractBinaryObservation) else 1 for o in self)

    def table(self) -> str:
        """A fixed-width text table (M in M_sun, R in km)."""
        head = f"{'name':<22} {'kind':<20} {'M [M_sun]':>16} {'R [km]':>16} {'rho':>6}  other"
        lines = [head, "-" * len(head)]
        for o in self.observations:
            s = o.summary()
            mass = radius = rho = other = ""
            if "mass_msun" in s:
                mass = f"{s['mass_msun']:.3f} +- {s['mass_sigma_msun']:.3f}"
            if "radius_km" in s:
                radius = f"{s['radius_km']:.2f} +- {s['radius_sigma_km']:.2f}"
                rho = f"{s['correlation']:+.2f}"
            if "chirp_mass_msun" in s:
                other = (
                    f"Mc={s['chirp_mass_msun']:.4f} q={s['mass_ratio']:.2f} "
                    f"Lt_median={s['lambda_tilde_median']:.0f}"
                )
            if "n_samples" in s:
                other = (other + f" n={int(s['n_samples'])}").strip()
            lines.append(f"{o.name:<22} {o.kind:<20} {mass:>16} {radius:>16} {rho:>6}  {other}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ObservationSet({len(self)} observations)\n{self.table()}"

    def gaussian_reduction_report(self) -> list[dict[str, float | str | bool]]:
        """How well a bivariate Gaussian describes each M-R sample set: the fraction of
        samples inside the Gaussian's 68 % and 95 % ellipses and the marginal skewness."""
        rows = []
        for o in self.observations:
            if not isinstance(o, MassRadiusSamples):
                continue
            x = np.stack([o.samples["mass_msun"], o.samples["radius_km"]], 1)
            mean, cov = x.mean(0), np.cov(x.T)
            d = x - mean
            r2 = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
            in68 = float(np.mean(r2 < -2 * math.log(1 - 0.68)))
            in95 = float(np.mean(r2 < -2 * math.log(1 - 0.95)))
            skew = (d**3).mean(0) / np.diag(cov) ** 1.5
            poor = (
                abs(in68 - 0.68) > POOR_REDUCTION_COVERAGE
                or abs(in95 - 0.95) > POOR_REDUCTION_COVERAGE
                or bool(np.any(np.abs(skew) > POOR_REDUCTION_SKEWNESS))
            )
            rows.append(
                {
                    "name": o.name,
                    "inside_68": in68,
                    "inside_95": in95,
                    "mass_skewness": float(skew[0]),
                    "radius_skewness": float(skew[1]),
                    "poor": poor,
                }
            )
        return rows

    def to_gaussian(self) -> ObservationSet:
        """Every M-R observation as a :class:`MassRadiusGaussian` (the network's input).

        Sample sets are reduced to their mean, standard deviations and correlation; a
        :class:`GaussianReductionWarning` names those the Gaussian describes poorly (see
        :meth:`gaussian_reduction_report`). Mass-only and tidal observations have no radius
        and are dropped, with a warning.
        """
        out, dropped = [], []
        for o in self.observations:
            if isinstance(o, MassRadiusGaussian):
                out.append(o)
            elif isinstance(o, MassRadiusSamples):
                s = o.summary()
                out.append(
                    MassRadiusGaussian(
                        o.name,
                        s["mass_msun"],
                        s["mass_sigma_msun"],
                        s["radius_km"],
                        s["radius_sigma_km"],
                        s["correlation"],
                    )
                )
            else:
                dropped.append(o.name)
        poor = [r for r in self.gaussian_reduction_report() if r["poor"]]
        if poor:
            detail = "; ".join(
                f"{r['name']}: {100 * r['inside_68']:.0f}% inside the 68% ellipse, "
                f"{100 * r['inside_95']:.0f}% inside the 95%, R skewness "
                f"{r['radius_skewness']:+.2f}"
                for r in poor
            )
            warnings.warn(
                f"the Gaussian reduction is poor for {detail}", GaussianReductionWarning, 2
            )
        if dropped:
            warnings.warn(
                f"no radius to reduce, dropped from the Gaussian set: {', '.join(dropped)}",
                GaussianReductionWarning,
                2,
            )
        return ObservationSet(out)
