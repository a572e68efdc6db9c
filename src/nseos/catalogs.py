"""Bundled observational data sets, ready to use as :class:`ObservationSet` objects.

Every number ships inside the package (``nseos/data/observations``, provenance in
``PROVENANCE.md`` there and in ``docs/data.md``); nothing is downloaded. Each function builds
its observations once per process (KDE grids take ~0.1 s per sample set) and then returns the
cached, immutable set.
"""

from __future__ import annotations

import csv
import functools
from importlib import resources
from pathlib import Path
from typing import Literal

from .observations import (
    FlatComponentTidalPrior,
    MassRadiusGaussian,
    MassRadiusSamples,
    ObservationSet,
    PulsarMass,
    TidalDeformability,
)
from .observations._files import read_sample_file

GW170817_LAMBDA_MAX = 5000.0
"""Upper bound of the flat Lambda1, Lambda2 prior of the GWTC-1 GW170817 analysis."""
GW190425_LAMBDA_MAX = 10000.0
"""Assumed upper bound for GW190425: the bundled draws reach Lambda2 = 9590, above GWTC-1's
5000, so the bound was at least that. Only the shape of the prior near the data matters
(it rises linearly from Lambda-tilde = 0 for any bound), so this choice hardly matters."""

_PRE_FILES = {
    "4U 1820-30": "xray_pre_kim2021_4U1820-30.csv",
    "SAX J1748.9-2021": "xray_pre_kim2021_SAXJ1748.9-2021.csv",
    "EXO 1745-248": "xray_pre_kim2021_EXO1745-248.csv",
    "KS 1731-260": "xray_pre_kim2021_KS1731-260.csv",
    "4U 1724-207": "xray_pre_kim2021_4U1724-207.csv",
    "4U 1608-52": "xray_pre_kim2021_4U1608-52.csv",
}
_KIM2021 = "Kim et al. 2021 (arXiv:2104.00263)"
_NICER = {
    "J0030+0451 (Amsterdam)": (
        "nicer_J0030_riley2019_st_pst.csv",
        "Riley et al. 2019 ApJL 887 L21 (ST+PST)",
    ),
    "J0030+0451 (Maryland)": (
        "nicer_J0030_miller2019_3spot.csv",
        "Miller et al. 2019 ApJL 887 L24 (3-spot)",
    ),
    "J0740+6620": (
        "nicer_J0740_salmi2024_gamma_nicerxmm.csv",
        "Salmi et al. 2024 ApJ 974 294 (NICER+XMM)",
    ),
    "J0437-4715": (
        "nicer_J0437_choudhury2024_cst_pdt.csv",
        "Choudhury et al. 2024 ApJL 971 L20 (CST+PDT)",
    ),
    "J0614-3329": (
        "nicer_J0614_mauviard2025_st_pdt.csv",
        "Mauviard et al. 2025 (ST+PDT)",
    ),
}


def data_path(name: str) -> Path:
    """Path of a bundled observation file."""
    return Path(str(resources.files("nseos.data.observations").joinpath(name)))


def _cached(build):
    """Build a catalog once per process *and precision*: arrays made while JAX runs in 32-bit
    mode stay float32, so a catalog built before ``jax_enable_x64`` was switched on is built
    again afterwards instead of being returned in the wrong precision."""
    import jax

    @functools.cache
    def per_precision(x64: bool, *args, **kwargs):
        return build(*args, **kwargs)

    @functools.wraps(build)
    def catalog(*args, **kwargs):
        return per_precision(bool(jax.config.read("jax_enable_x64")), *args, **kwargs)

    return catalog


def _mr_samples(name: str, file: str, reference: str) -> MassRadiusSamples:
    cols = read_sample_file(data_path(file), ("mass_msun", "radius_km"), name)
    return MassRadiusSamples(name, cols["mass_msun"], cols["radius_km"], reference=reference)


@_cached
def xray_2016(bursters_as_samples: bool = False) -> ObservationSet:
    """The 14 X-ray sources (6 PRE bursters, 8 qLMXBs) of the Özel et al. 2016 compilation
    used by Fujimoto, Fukushima and Murase.

    **Stand-ins:** these are bivariate Gaussians computed from public posteriors (Kim et al.
    2021 for the bursters; bamr / CompARE grids for the qLMXBs), not the Özel et al. (2016)
    likelihood grids of the original study, which are not public here. They differ from the
    originals, in places considerably. The burster Gaussians keep the 14-19 % acausal tails of
    their posteriors.

    Parameters
    ----------
    bursters_as_samples : bool
        Use the six bursters' posterior samples (Kim et al. 2021, 10 000 draws each, flat
        priors in M and R) instead of their Gaussian summaries.
    """
    observations = []
    with open(data_path("xray_2016_gaussian.csv"), newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = row["source"]
            if bursters_as_samples and name in _PRE_FILES:
                observations.append(_mr_samples(name, _PRE_FILES[name], _KIM2021))
                continue
            observations.append(
                MassRadiusGaussian(
                    name,
                    float(row["mass_mean_msun"]),
                    float(row["mass_sigma_msun"]),
                    float(row["radius_mean_km"]),
                    float(row["radius_sigma_km"]),
                    float(row["correlation"]),
                )
            )
    return ObservationSet(observations)


@_cached
def nicer(j0030: Literal["amsterdam", "maryland"] = "amsterdam") -> ObservationSet:
    """NICER mass-radius posteriors (20 000 equal-weight draws each): J0030+0451,
    J0740+6620 (with NICER+XMM), J0437-4715 and J0614-3329.

    Parameters
    ----------
    j0030 : {"amsterdam", "maryland"}
        Which J0030+0451 analysis: Riley et al. 2019 (X-PSI, ST+PST) or Miller et al. 2019
        (3-spot). The two are analyses of the same data: never use both.

    Notes
    -----
    The J0740+6620 analysis uses the radio-timing mass (Fonseca et al. 2021) as its mass
    prior, so its M-R posterior already contains that measurement; do not add the radio mass
    of J0740+6620 as well. The same holds for J0437-4715. The X-PSI priors are flat in M and R
    (up to R = 16 km), so nothing is divided out.
    """
    if j0030 not in ("amsterdam", "maryland"):
        raise ValueError(f"j0030 must be 'amsterdam' or 'maryland', not {j0030!r}")
    key = "J0030+0451 (Amsterdam)" if j0030 == "amsterdam" else "J0030+0451 (Maryland)"
    out = []
    for label in (key, "J0740+6620", "J0437-4715", "J0614-3329"):
        file, ref = _NICER[label]
        out.append(_mr_samples(label.split(" ")[0], file, ref))
    return ObservationSet(out)


@_cached
def pulsar_masses(
    j1614: Literal["nanograv15", "nanograv11"] = "nanograv15",
    include_j0740: bool = True,
) -> ObservationSet:
    """Radio-timing masses of the heaviest known pulsars: J0740+6620 (2.08 +- 0.07,
    Fonseca et al. 2021), J0348+0432 (2.01 +- 0.04, Antoniadis et al. 2013) and J1614-2230
    (1.937 +- 0.014, NANOGrav 15-yr, or 1.908 +- 0.016, NANOGrav 11-yr)."""
    if j1614 not in ("nanograv15", "nanograv11"):
        raise ValueError(f"j1614 must be 'nanograv15' or 'nanograv11', not {j1614!r}")
    wanted_j1614 = "15-yr" if j1614 == "nanograv15" else "11-yr"
    out = []
    with open(data_path("pulsar_masses.csv"), newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name, ref = row["pulsar"], row["reference"]
            if name == "J1614-2230" and wanted_j1614 not in ref:
                continue
            if name == "J0740+6620" and not include_j0740:
                continue
            out.append(
                PulsarMass(
                    name,
                    float(row["mass_median_msun"]),
                    float(row["minus_1sigma_msun"]),
                    float(row["plus_1sigma_msun"]),
                    reference=ref,
                )
            )
    return ObservationSet(out)


def _gw(name: str, file: str, lambda_max: float | None, reference: str) -> ObservationSet:
    cols = read_sample_file(
        data_path(file), ("m1_source_msun", "m2_source_msun", "lambda1", "lambda2"), name
    )
    prior = None if lambda_max is None else FlatComponentTidalPrior(lambda_max)
    return ObservationSet(
        [TidalDeformability(name, *cols.values(), analysis_prior=prior, reference=reference)]
    )


@_cached
def gw170817(divide_analysis_prior: bool = True) -> ObservationSet:
    """GW170817 (GWTC-1, IMRPhenomPv2NRT low spin, 8078 draws of m1, m2, Lambda1, Lambda2).

    By default the analysis prior (flat in Lambda1, Lambda2 on [0, 5000] and in the
    component masses) is divided out; see :class:`FlatComponentTidalPrior`.
    """
    return _gw(
        "GW170817",
        "gw170817_lowspin.csv",
        GW170817_LAMBDA_MAX if divide_analysis_prior else None,
        "Abbott et al. 2019 PRX 9 011001 and 031040 (GWTC-1)",
    )


@_cached
def gw190425(divide_analysis_prior: bool = True) -> ObservationSet:
    """GW190425 (PhenomPNRT low spin, 20 000 draws); see :func:`gw170817`."""
    return _gw(
        "GW190425",
        "gw190425_lowspin.csv",
        GW190425_LAMBDA_MAX if divide_analysis_prior else None,
        "Abbott et al. 2020 ApJL 892 L3",
    )


@_cached
def modern(j0030: Literal["amsterdam", "maryland"] = "amsterdam") -> ObservationSet:
    """The default real-data set: the four NICER pulsars, the heavy radio pulsars and
    GW170817.

    J0740+6620 enters once, through its NICER+XMM posterior (whose mass prior is the radio
    measurement); the radio masses added are J0348+0432 and J1614-2230.
    """
    return nicer(j0030) + pulsar_masses(include_j0740=False) + gw170817()


CATALOGS = {
    "xray_2016": xray_2016,
    "nicer": nicer,
    "pulsar_masses": pulsar_masses,
    "gw170817": gw170817,
    "gw190425": gw190425,
    "modern": modern,
}
"""Catalog names accepted by the CLI."""
