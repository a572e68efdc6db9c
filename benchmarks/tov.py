"""TOV benchmark: nseos against jestertov 0.1.1 (speed, gradients, compile time, accuracy).

Both codes solve the same equation of state, the speed-of-sound family
:class:`nseos.eos.SpeedOfSoundSegments` (SLy4 crust, five constant-c_s^2 segments). jestertov
takes a table: nseos's EoS is tabulated on 200 enthalpies (60 log-spaced up to h = 0.04, then
140 linear up to 1.02 h(p_c,max)) and handed to ``jesterTOV.tov.tov_solver`` (diffrax Dopri5,
rtol 1e-5), vmapped over the same log-spaced central pressures as nseos's sequence.

Sections
--------
1. One 100-star M-R-Lambda curve (nseos default RK4()).
2. A vmapped batch of EoS (cs2 ~ U[0.01, 0.99], fixed seed): R(1.4), Lambda(1.4), M_max.
3. Gradient of R(1.4) with respect to the five c_s^2 (forward and reverse mode).
4. First-call time (trace + compile + run) in a fresh Python process.
5. Accuracy at identical central pressures against nseos with RK4(64, center_steps=154),
   over the stars with M > 1 M_sun on the stable branch, for five EoS; then the same over
   random EoS of the batch (robustness).
6. Cost per curve against n_stars and against steps_per_interval, with the accuracy reached.

Timings are the best of several calls after a warm-up call (median also shown), with
``jax.block_until_ready`` and ``time.perf_counter``. Ratios are jestertov time / nseos time.
If jestertov is not installed (``pip install -e '.[bench]'``) only nseos is measured.

Usage::

    python benchmarks/tov.py                  # full run (a few minutes on 2 CPU cores)
    python benchmarks/tov.py --quick          # fewer repeats, 100-EoS batch, short sweeps
    python benchmarks/tov.py --json out.json  # also write the results as JSON

The report ends with Markdown tables that can be pasted into docs/performance.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from nseos import units  # noqa: E402
from nseos.eos import SpeedOfSoundSegments  # noqa: E402
from nseos.tov import RK4, mass_radius_curve, solve_at_mass  # noqa: E402

try:
    from jesterTOV import tov as jester_tov
    from jesterTOV import utils as jester_utils

    JESTER_ERROR = None
except Exception as exc:  # any import failure: run the nseos half only
    jester_tov = jester_utils = None
    JESTER_ERROR = f"{type(exc).__name__}: {exc}"

DEFAULT_CS2 = (0.3, 0.5, 0.5, 0.4, 0.3)
SEED = 2024
N_STARS = 100
STEPS = 10  # nseos's default RK4(): 10 steps per interval, 24 in the central region
REFERENCE_STEPS = 64


def method(steps: int) -> RK4:
    """The default schedule at ``steps`` per interval (``RK4.scaled``)."""
    return RK4.scaled(steps)


TARGET_MASS = 1.4
MEV_FM3_TO_GEOMETRIC_M2 = units.MEV_FM3_TO_GEOMETRIC_KM2 * 1e-6
TABLE_CRUST, TABLE_CORE = 60, 140
TARGETS = {"curve": 10.0, "batch": 10.0, "gradient": 30.0, "compile_s": 5.0}
HAVE_JESTER = JESTER_ERROR is None


# --- helpers -------------------------------------------------------------------------------------
def measure(fn, *args, repeats: int, budget_s: float = 30.0, aot: bool = False):
    """(timing dict, output) of a jitted ``fn``: a warm-up call (compile), then up to
    ``repeats`` timed calls, stopping early once they have taken ``budget_s``.

    With ``aot`` (for calls that take many seconds) ``fn`` is compiled ahead of time and the
    first run is itself the first timed call, so that no long run is spent on warming up.
    """
    t0 = time.perf_counter()
    times: list[float] = []
    if aot:
        fn = fn.lower(*args).compile()
        t1 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t1)
    else:
        out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    while len(times) < repeats and (not times or sum(times) < budget_s):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    timing = dict(
        first_call_s=first, best_s=min(times), median_s=statistics.median(times), n=len(times)
    )
    return timing, out


def fmt_time(seconds) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(num, den) -> str:
    r = ratio(num, den)
    return "n/a" if r is None else f"{r:.1f}x"


def ratio(num, den):
    if num is None or den is None or not den > 0:
        return None
    return num / den


def fmt_num(x, spec=".2e") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def finite_max(x) -> float:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.max(x)) if x.size else float("nan")


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def yes_no(ok) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


# --- nseos ---------------------------------------------------------------------------------------
@functools.cache
def nseos_curve_fn(n_stars: int = N_STARS, steps: int = STEPS):
    """jit(cs2 -> MassRadiusCurve), compiled once per (n_stars, steps)."""
    return jax.jit(lambda c: mass_radius_curve(SpeedOfSoundSegments(c), n_stars, method(steps)))


def nseos_batch_summary(c):
    curve = mass_radius_curve(SpeedOfSoundSegments(c), N_STARS, method(STEPS))
    return dict(
        r14_km=curve.radius_at(TARGET_MASS),
        lambda14=curve.lambda_at(TARGET_MASS),
        max_mass_msun=curve.max_mass_msun,
        n_failed=jnp.sum(curve.status != 0),
        n_failed_stable=jnp.sum(curve.stable & (curve.status != 0)),
    )


def nseos_r14(c):
    """R(1.4) [km] by the exact-derivative direct solve; aux: (R, Lambda) values."""
    star, _ = solve_at_mass(SpeedOfSoundSegments(c), TARGET_MASS, method(STEPS))
    return star.radius_km, (star.radius_km, star.tidal_deformability)


# --- jestertov -----------------------------------------------------------------------------------
def jester_table(eos):
    """nseos's EoS tabulated for jestertov, in geometric m^-2, up to 1.02 h(p_c,max)."""
    _, p_hi = eos.default_central_pressure_range_mev_fm3()
    h_top = jnp.maximum(1.02 * eos.enthalpy(p_hi), 0.05)
    h = jnp.concatenate(
        [jnp.geomspace(1e-6, 0.04, TABLE_CRUST), jnp.linspace(0.04, h_top, TABLE_CORE + 1)[1:]]
    )
    s = eos.state(h)
    g = MEV_FM3_TO_GEOMETRIC_M2
    p, e, de = s.pressure_mev_fm3 * g, s.energy_density_mev_fm3 * g, s.denergy_dh_mev_fm3 * g
    return dict(p=p, h=h, e=e, dloge_dlogp=(p / e) * (de / (e + p)))


def jester_solve(table, pcs_mev_fm3):
    """jestertov stars at the given central pressures: (M [M_sun], R [km], Lambda)."""
    pcs = pcs_mev_fm3 * MEV_FM3_TO_GEOMETRIC_M2
    m, r, k2 = jax.vmap(lambda pc: jester_tov.tov_solver(table, pc))(pcs)
    lam = 2.0 / 3.0 * k2 * (m / r) ** -5
    return m / jester_utils.solar_mass_in_meter, r / 1e3, lam


def default_pressures(eos, n_stars=N_STARS):
    """The central pressures of nseos's default sequence [MeV fm^-3]."""
    p_lo, p_hi = eos.default_central_pressure_range_mev_fm3()
    return jnp.exp(jnp.linspace(jnp.log(p_lo), jnp.log(p_hi), n_stars))


def jester_curve(c, pcs_mev_fm3):
    """The whole jestertov pipeline from cs2: table, then the stars at ``pcs``."""
    return jester_solve(jester_table(SpeedOfSoundSegments(c)), pcs_mev_fm3)


def jester_stable_branch(m, r, lam):
    """jestertov's own truncation at M_max (as in its construct_family): sorted by mass."""
    _, m, r, lam = jester_utils.limit_by_MTOV(jnp.zeros_like(m), m, r, lam)
    return m, r, lam


def jester_batch_summary(c):
    eos = SpeedOfSoundSegments(c)
    m, r, lam = jester_solve(jester_table(eos), default_pressures(eos))
    n_failed = jnp.sum(~(jnp.isfinite(m) & jnp.isfinite(r) & jnp.isfinite(lam) & (lam > 0)))
    m, r, lam = jester_stable_branch(m, r, lam)
    inside = (m[0] <= TARGET_MASS) & (m[-1] >= TARGET_MASS)
    return dict(
        r14_km=jnp.where(inside, jnp.interp(TARGET_MASS, m, r), jnp.nan),
        lambda14=jnp.where(inside, jnp.interp(TARGET_MASS, m, lam), jnp.nan),
        max_mass_msun=m[-1],
        n_failed=n_failed,
    )


def jester_r14(c):
    """R(1.4) [km]: linear interpolation of jestertov's stable branch, as construct_family."""
    m, r, lam = jester_curve(c, default_pressures(SpeedOfSoundSegments(c)))
    m, r, lam = jester_stable_branch(m, r, lam)
    return jnp.interp(TARGET_MASS, m, r)


# --- accuracy ------------------------------------------------------------------------------------
def star_errors(ref, m, r, lam) -> dict:
    """Errors against the reference curve over its stable stars with M > 1 M_sun."""
    ref_m, ref_r = np.asarray(ref.mass_msun), np.asarray(ref.radius_km)
    ref_l = np.asarray(ref.tidal_deformability)
    mask = np.asarray(ref.stable) & (np.asarray(ref.status) == 0) & (ref_m > 1.0)
    dm = np.abs(np.asarray(m) / ref_m - 1.0)[mask]
    dr = np.abs(np.asarray(r) - ref_r)[mask] * 1e3
    dl = np.abs(np.asarray(lam) / ref_l - 1.0)[mask]
    bad = ~(np.isfinite(dm) & np.isfinite(dr) & np.isfinite(dl))
    worst = ref_m[mask][np.argmax(np.where(np.isfinite(dr), dr, -1.0))] if mask.any() else np.nan
    return dict(
        worst_dr_star_msun=float(worst),
        dm_rel=finite_max(dm),
        dr_m=finite_max(dr),
        dlambda_rel=finite_max(dl),
        n_stars=int(mask.sum()),
        n_nonfinite=int(bad.sum()),
    )


def combine(errors: list[dict]) -> dict:
    out = {k: finite_max([e[k] for e in errors]) for k in ("dm_rel", "dr_m", "dlambda_rel")}
    out["n_stars"] = sum(e["n_stars"] for e in errors)
    out["n_nonfinite"] = sum(e["n_nonfinite"] for e in errors)
    return out


def nseos_arrays(curve):
    return curve.mass_msun, curve.radius_km, curve.tidal_deformability


def fmt_errors(e: dict) -> str:
    s = (
        f"|dM|/M {fmt_num(e['dm_rel'])}  |dR| {fmt_num(e['dr_m'], '.3g')} m  "
        f"|dL|/L {fmt_num(e['dlambda_rel'])}  ({e['n_stars']} stars"
    )
    if e["n_nonfinite"]:
        s += f", {e['n_nonfinite']} NON-FINITE"
    return s + ")"


def accuracy_eos(n: int) -> list[np.ndarray]:
    """The default cs2 and ``n - 1`` random ones (U[0.01, 0.99]) that reach 1.4 M_sun."""
    rng = np.random.default_rng(SEED + 1)
    out = [np.asarray(DEFAULT_CS2)]
    ref_fn = nseos_curve_fn(N_STARS, REFERENCE_STEPS)
    while len(out) < n:
        c = rng.uniform(0.01, 0.99, 5)
        if float(ref_fn(jnp.asarray(c)).max_mass_msun) >= TARGET_MASS:
            out.append(c)
    return out


# --- first call in a fresh process ---------------------------------------------------------------
def compile_probe(which: str) -> None:
    """Run in a subprocess: time trace + compile + first run of one curve; print JSON."""
    jax.config.update("jax_enable_compilation_cache", False)
    cs2 = jax.block_until_ready(jnp.asarray(DEFAULT_CS2))
    if which == "nseos":

        def fn(c):
            return mass_radius_curve(SpeedOfSoundSegments(c), N_STARS, method(STEPS))

        args = (cs2,)
    else:
        fn = jester_curve
        pcs = jax.block_until_ready(default_pressures(SpeedOfSoundSegments(cs2)))
        args = (cs2, pcs)
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    t3 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    t4 = time.perf_counter()
    result = dict(trace_lower_s=t1 - t0, compile_s=t2 - t1, first_run_s=t3 - t2)
    result.update(first_call_s=t3 - t0, second_call_s=t4 - t3)
    print("PROBE " + json.dumps(result))


def run_probe(which: str):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--compile-probe", which],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return None, "timed out after 300 s"
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE "):
            return json.loads(line[6:]), None
    return None, (proc.stderr.strip().splitlines() or ["no output"])[-1]


# --- main ----------------------------------------------------------------------------------------
def source_digest() -> str:
    """A short digest of the installed nseos sources (identifies a dirty working tree)."""
    import hashlib

    import nseos

    digest = hashlib.sha256()
    for path in sorted(Path(nseos.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller batch")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--batch", type=int, help="EoS in the vmapped batch (1000; quick 100)")
    parser.add_argument("--compile-probe", choices=["nseos", "jester"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_probe:
        compile_probe(args.compile_probe)
        return 0

    quick = args.quick
    repeats = 3 if quick else 7
    n_batch = args.batch or (100 if quick else 1000)
    n_robust = 20 if quick else 200
    steps_sweep = (6, 10) if quick else (4, 6, 8, 10, 12, 16)
    stars_sweep = (50, 100) if quick else (25, 50, 100, 200)
    wall0 = time.perf_counter()
    res: dict = {}
    dev = jax.devices()[0]
    import importlib.metadata as md

    versions = {"jax": jax.__version__, "nseos": md.version("nseos")}
    if HAVE_JESTER:
        versions["jestertov"] = md.version("jestertov")
        versions["diffrax"] = md.version("diffrax")
    res["setup"] = dict(
        mode="quick" if quick else "full",
        device=f"{dev.platform}: {dev.device_kind}",
        cpu_count=os.cpu_count(),
        machine=f"{platform.system()} {platform.machine()} {platform.processor()}".strip(),
        python=platform.python_version(),
        versions=versions,
        git=git_revision(),
        nseos_source_sha256=source_digest(),
        repeats=repeats,
        seed=SEED,
        jester_table=f"{TABLE_CRUST}+{TABLE_CORE} enthalpies",
        load_average_start=load_average(),
    )
    print("TOV benchmark: nseos vs jestertov 0.1.1")
    for k, v in res["setup"].items():
        print(f"  {k}: {v}")
    if not HAVE_JESTER:
        print(
            f"\n  jestertov is NOT importable ({JESTER_ERROR}); install it with "
            "`pip install -e '.[bench]'`. Only nseos is measured; ratios are n/a."
        )

    cs2 = jnp.asarray(DEFAULT_CS2)
    eos = SpeedOfSoundSegments(cs2)
    pcs = default_pressures(eos)

    # 1. One curve ------------------------------------------------------------------------------
    section(f"1. One {N_STARS}-star M-R-Lambda curve, cs2 = {DEFAULT_CS2}")
    t_n, curve = measure(nseos_curve_fn(), cs2, repeats=repeats)
    print(
        f"  nseos RK4({STEPS}):                 best {fmt_time(t_n['best_s'])}, "
        f"median {fmt_time(t_n['median_s'])} (first call {fmt_time(t_n['first_call_s'])})"
    )
    print(
        f"    M_max = {float(curve.max_mass_msun):.5f} M_sun, "
        f"R(1.4) = {float(curve.radius_at(TARGET_MASS)):.5f} km, "
        f"Lambda(1.4) = {float(curve.lambda_at(TARGET_MASS)):.3f}"
    )
    res["curve"] = {"nseos": t_n}
    t_j = t_js = None
    jester_fn = jax.jit(jester_curve) if HAVE_JESTER else None
    if HAVE_JESTER:
        t_j, jout = measure(jester_fn, cs2, pcs, repeats=repeats)
        table = jax.block_until_ready(jester_table(eos))
        t_js, _ = measure(jax.jit(jester_solve), table, pcs, repeats=repeats)
        print(
            f"  jestertov, table built from cs2:  best {fmt_time(t_j['best_s'])}, "
            f"median {fmt_time(t_j['median_s'])} (first call {fmt_time(t_j['first_call_s'])})"
        )
        print(
            f"  jestertov, precomputed table:     best {fmt_time(t_js['best_s'])}, "
            f"median {fmt_time(t_js['median_s'])} (first call {fmt_time(t_js['first_call_s'])})"
        )
        jm, jr, _ = jester_stable_branch(*jout)
        print(
            f"    M_max = {float(jm[-1]):.5f} M_sun (grid maximum), "
            f"R(1.4) = {float(jnp.interp(TARGET_MASS, jm, jr)):.5f} km (linear in M)"
        )
        res["curve"].update(jester_with_table=t_j, jester_solve_only=t_js)
    jester_curve_best = min(t["best_s"] for t in (t_j, t_js)) if t_j else None
    res["curve"]["ratio"] = ratio(jester_curve_best, t_n["best_s"])
    print(
        f"  ratio (jestertov's faster variant / nseos): "
        f"{fmt_ratio(jester_curve_best, t_n['best_s'])}   target >= {TARGETS['curve']:.0f}x"
    )

    # 2. Batch ----------------------------------------------------------------------------------
    cs2_batch = jnp.asarray(np.random.default_rng(SEED).uniform(0.01, 0.99, (n_batch, 5)))
    section(f"2. vmapped batch of {n_batch} EoS, cs2 ~ U[0.01, 0.99] (seed {SEED})")
    bt_n, bout_n = measure(
        jax.jit(jax.vmap(nseos_batch_summary)), cs2_batch, repeats=min(repeats, 5)
    )
    per_n = bt_n["best_s"] / n_batch
    r14_n = np.asarray(bout_n["r14_km"])
    print(
        f"  nseos:     best {fmt_time(bt_n['best_s'])} per batch = {fmt_time(per_n)} per EoS "
        f"(first call {fmt_time(bt_n['first_call_s'])})"
    )
    failed = np.nonzero(np.asarray(bout_n["n_failed"]) > 0)[0]
    failed_stable = np.nonzero(np.asarray(bout_n["n_failed_stable"]) > 0)[0]
    print(
        f"    R(1.4) NaN for {int(np.isnan(r14_n).sum())} EoS "
        f"(M_max < 1.4 for {int((np.asarray(bout_n['max_mass_msun']) < TARGET_MASS).sum())}); "
        f"EoS with a failed star: {failed.size} ({failed_stable.size} on the stable branch)"
    )
    for i in failed[:5]:
        print(
            f"      failed: EoS {i}, cs2 = {np.array2string(np.asarray(cs2_batch[i]), precision=3)}"
        )
    res["batch"] = dict(
        n_eos=n_batch,
        nseos=bt_n,
        nseos_per_eos_s=per_n,
        nseos_eos_with_failed_star=failed.tolist(),
        nseos_eos_with_failed_stable_star=failed_stable.tolist(),
    )
    per_j = None
    if HAVE_JESTER:
        bt_j, bout_j = measure(
            jax.jit(jax.vmap(jester_batch_summary)), cs2_batch, repeats=3, budget_s=20, aot=True
        )
        per_j = bt_j["best_s"] / n_batch
        r14_j = np.asarray(bout_j["r14_km"])
        print(
            f"  jestertov: best {fmt_time(bt_j['best_s'])} per batch = {fmt_time(per_j)} per EoS "
            f"(compile + first run {fmt_time(bt_j['first_call_s'])}; {bt_j['n']} timed "
            f"call(s), the first run included; the same {n_batch} EoS, not scaled)"
        )
        print(
            f"    R(1.4) NaN for {int(np.isnan(r14_j).sum())} EoS; "
            f"EoS with a non-finite star: {int((np.asarray(bout_j['n_failed']) > 0).sum())}"
        )
        res["batch"]["jester_per_eos_s_batch100"] = None
        if n_batch > 100:
            bt_j100, _ = measure(
                jax.jit(jax.vmap(jester_batch_summary)), cs2_batch[:100], repeats=3
            )
            res["batch"]["jester_per_eos_s_batch100"] = bt_j100["best_s"] / 100
            print(
                f"    (jestertov on the first 100 of them: {fmt_time(bt_j100['best_s'] / 100)} "
                f"per EoS; a vmapped adaptive solve runs until its slowest member is done, so "
                f"scaling a 100-batch would give a ratio of "
                f"{fmt_ratio(bt_j100['best_s'] / 100, per_n)})"
            )
        both = np.isfinite(r14_n) & np.isfinite(r14_j)
        d_r = np.abs(r14_n - r14_j)[both] * 1e3
        d_m = np.abs(np.asarray(bout_n["max_mass_msun"]) - np.asarray(bout_j["max_mass_msun"]))
        print(
            f"    nseos vs jestertov: |dR(1.4)| median {np.median(d_r):.2f} m, "
            f"max {np.max(d_r):.2f} m over {int(both.sum())} EoS; |dM_max| median "
            f"{np.median(d_m):.2e}, max {np.max(d_m):.2e} M_sun (jestertov: grid maximum)"
        )
        res["batch"].update(
            jester=bt_j,
            jester_per_eos_s=per_j,
            r14_diff_median_m=float(np.median(d_r)),
            r14_diff_max_m=float(np.max(d_r)),
        )
    res["batch"]["ratio"] = ratio(per_j, per_n)
    print(f"  throughput ratio: {fmt_ratio(per_j, per_n)}   target >= {TARGETS['batch']:.0f}x")

    # 3. Gradient -------------------------------------------------------------------------------
    section("3. Gradient of R(1.4) with respect to the 5 c_s^2 (default EoS)")
    fwd_fn = jax.jit(jax.jacfwd(nseos_r14, has_aux=True))
    gt_fwd, (g_fwd, (r14, lam14)) = measure(fwd_fn, cs2, repeats=repeats)
    print(
        f"  nseos solve_at_mass, jacfwd:         best {fmt_time(gt_fwd['best_s'])} "
        f"(first call {fmt_time(gt_fwd['first_call_s'])})"
    )
    gt_rev = None
    if not quick:  # reverse mode compiles for ~30 s on 2 cores
        gt_rev, ((_, _), g_rev) = measure(
            jax.jit(jax.value_and_grad(nseos_r14, has_aux=True)), cs2, repeats=repeats
        )
        print(
            f"  nseos solve_at_mass, value_and_grad: best {fmt_time(gt_rev['best_s'])} "
            f"(first call {fmt_time(gt_rev['first_call_s'])})"
        )
    else:
        print("  nseos solve_at_mass, value_and_grad: skipped in --quick")
    print(f"    R(1.4) = {float(r14):.6f} km, Lambda(1.4) = {float(lam14):.4f}")
    print(f"    dR/dcs2 [km]: jacfwd {np.array2string(np.asarray(g_fwd), precision=5)}")
    if gt_rev:
        print(f"                  grad   {np.array2string(np.asarray(g_rev), precision=5)}")
    g_best_n = min(t["best_s"] for t in (gt_fwd, gt_rev) if t)
    res["gradient"] = dict(
        nseos_jacfwd=gt_fwd,
        nseos_grad=gt_rev,
        nseos_value_km=float(r14),
        nseos_grad_km=np.asarray(g_fwd).tolist(),
    )
    g_best_j = None
    if HAVE_JESTER:
        gt_j, (r14_jv, g_j) = measure(
            jax.jit(jax.value_and_grad(jester_r14)), cs2, repeats=min(repeats, 5)
        )
        g_best_j = gt_j["best_s"]
        print(
            f"  jestertov value_and_grad (reverse): best {fmt_time(gt_j['best_s'])} "
            f"(first call {fmt_time(gt_j['first_call_s'])})"
        )
        try:
            jax.jit(jax.jacfwd(jester_r14)).lower(cs2)
            fwd_note = "jacfwd traces (not timed)"
        except Exception as exc:  # diffrax's adjoint is a custom_vjp: no forward mode
            fwd_note = f"jacfwd unsupported ({type(exc).__name__}: {str(exc)[:70]})"
        print(f"    {fwd_note}")
        print(f"    R(1.4) = {float(r14_jv):.6f} km (linear interpolation of the 100 stars)")
        print(f"    dR/dcs2 [km]:        {np.array2string(np.asarray(g_j), precision=5)}")
        res["gradient"].update(
            jester_grad=gt_j,
            jester_value_km=float(r14_jv),
            jester_grad_km=np.asarray(g_j).tolist(),
            jester_forward_mode=fwd_note,
        )
    res["gradient"]["ratio"] = ratio(g_best_j, g_best_n)
    print(
        f"  ratio (jestertov / nseos's faster mode): {fmt_ratio(g_best_j, g_best_n)}   "
        f"target >= {TARGETS['gradient']:.0f}x"
    )

    # 4. First call in a fresh process ----------------------------------------------------------
    section("4. First call (trace + compile + run) of one curve, in a fresh Python process")
    probes = {}
    for which in ("nseos", "jester") if HAVE_JESTER else ("nseos",):
        probe, err = run_probe(which)
        probes[which] = probe
        name = "nseos    " if which == "nseos" else "jestertov"
        if probe is None:
            print(f"  {name}: probe failed: {err}")
            continue
        print(
            f"  {name}: first call {probe['first_call_s']:.2f} s = trace/lower "
            f"{probe['trace_lower_s']:.2f} s + compile {probe['compile_s']:.2f} s + run "
            f"{fmt_time(probe['first_run_s'])}; second call {fmt_time(probe['second_call_s'])}"
        )
    res["first_call"] = probes
    compile_n = probes["nseos"]["first_call_s"] if probes.get("nseos") else None
    compile_j = probes["jester"]["first_call_s"] if probes.get("jester") else None
    print(f"  target: nseos under {TARGETS['compile_s']:.0f} s")
    print(
        "  (in this process, first calls incl. compile: nseos curve "
        f"{fmt_time(t_n['first_call_s'])}, batch {fmt_time(bt_n['first_call_s'])}, jacfwd "
        f"{fmt_time(gt_fwd['first_call_s'])}, grad "
        f"{fmt_time(gt_rev['first_call_s'] if gt_rev else None)})"
    )

    # 5. Accuracy -------------------------------------------------------------------------------
    section(f"5. Accuracy vs nseos RK4({REFERENCE_STEPS}) at identical p_c; stable, M > 1 M_sun")
    ref_fn = nseos_curve_fn(N_STARS, REFERENCE_STEPS)
    acc_cs2 = accuracy_eos(5)
    refs = [ref_fn(jnp.asarray(c)) for c in acc_cs2]
    jester_curves = [
        jester_fn(jnp.asarray(c), ref.central_pressure_mev_fm3) if HAVE_JESTER else None
        for c, ref in zip(acc_cs2, refs, strict=True)
    ]
    err_n, err_j = [], []
    for c, ref, jc in zip(acc_cs2, refs, jester_curves, strict=True):
        e_n = star_errors(ref, *nseos_arrays(nseos_curve_fn()(jnp.asarray(c))))
        err_n.append(e_n)
        print(
            f"  cs2 = {np.array2string(np.asarray(c), precision=3)}, "
            f"M_max {float(ref.max_mass_msun):.3f}"
        )
        print(f"    nseos RK4({STEPS}): {fmt_errors(e_n)}")
        if HAVE_JESTER:
            e_j = star_errors(ref, *jc)
            err_j.append(e_j)
            print(f"    jestertov:  {fmt_errors(e_j)}")
    acc_n = combine(err_n)
    acc_j = combine(err_j) if HAVE_JESTER else None
    print(f"  all 5 EoS, nseos:     {fmt_errors(acc_n)}")
    if HAVE_JESTER:
        print(f"  all 5 EoS, jestertov: {fmt_errors(acc_j)}")
    res["accuracy"] = dict(cs2=[np.asarray(c).tolist() for c in acc_cs2], nseos=acc_n)
    res["accuracy"]["jester"] = acc_j
    if not quick:
        ref2 = [nseos_curve_fn(N_STARS, 2 * REFERENCE_STEPS)(jnp.asarray(c)) for c in acc_cs2]
        self_check = combine(
            [star_errors(r2, *nseos_arrays(r)) for r, r2 in zip(refs, ref2, strict=True)]
        )
        print(f"  reference check, RK4({REFERENCE_STEPS}) vs RK4({2 * REFERENCE_STEPS}):")
        print(f"    {fmt_errors(self_check)}")
        res["accuracy"]["reference_self_check"] = self_check

    # Robustness over random EoS of the batch.
    n_rob = min(n_robust, n_batch)
    print(f"\n  Robustness: the first {n_rob} EoS of the batch (errors where the reference has")
    print("  stable stars with M > 1 M_sun; R(1.4) errors where both values are finite):")
    rob_n, rob_j, d14_n, d14_j, ref_failed = [], [], [], [], 0
    for c in np.asarray(cs2_batch[:n_rob]):
        ref = ref_fn(jnp.asarray(c))
        ref_failed += int(np.sum(np.asarray(ref.status) != 0))
        cur = nseos_curve_fn()(jnp.asarray(c))
        rob_n.append(star_errors(ref, *nseos_arrays(cur)))
        r_ref = float(ref.radius_at(TARGET_MASS))
        d14_n.append(abs(float(cur.radius_at(TARGET_MASS)) - r_ref) * 1e3)
        if HAVE_JESTER:
            jm, jr, jl = jester_fn(jnp.asarray(c), ref.central_pressure_mev_fm3)
            rob_j.append(star_errors(ref, jm, jr, jl))
            bm, br, _ = jester_stable_branch(jm, jr, jl)
            inside = float(bm[0]) <= TARGET_MASS <= float(bm[-1])
            r_j = float(jnp.interp(TARGET_MASS, bm, br)) if inside else float("nan")
            d14_j.append(abs(r_j - r_ref) * 1e3)
    robust = {"reference_failed_stars": ref_failed}

    def report(key, label, errs, d14):
        robust[key] = combine(errs)
        robust[f"{key}_r14_max_m"] = finite_max(d14)
        robust[f"{key}_dr_p95_m"] = float(np.nanpercentile([e["dr_m"] for e in errs], 95))
        print(f"    {label}: {fmt_errors(robust[key])}")
        print(
            f"      95th percentile over EoS of max |dR|: {robust[f'{key}_dr_p95_m']:.3g} m; "
            f"max |dR(1.4)|: {robust[f'{key}_r14_max_m']:.3g} m"
        )

    report("nseos", f"nseos RK4({STEPS})", rob_n, d14_n)
    if HAVE_JESTER:
        report("jester", "jestertov ", rob_j, d14_j)
    if ref_failed:
        print(f"    NOTE: {ref_failed} reference stars failed (excluded from the comparison)")
    # The worst EoS of each code, re-checked against a reference twice as fine (full mode).
    ref2_fn = None if quick else nseos_curve_fn(N_STARS, 2 * REFERENCE_STEPS)
    for name, errs in (("nseos", rob_n), ("jestertov", rob_j)):
        if not errs:
            continue
        i = int(np.argmax([e["dr_m"] if np.isfinite(e["dr_m"]) else -1.0 for e in errs]))
        c = np.asarray(cs2_batch[i])
        e = errs[i]
        print(
            f"    worst for {name}: EoS {i}, cs2 = {np.array2string(c, precision=3)}: "
            f"|dR| {e['dr_m']:.3g} m at M = {e['worst_dr_star_msun']:.3f} M_sun, "
            f"|dL|/L {e['dlambda_rel']:.2e}"
        )
        robust[f"{name}_worst_eos"] = dict(index=i, cs2=c.tolist(), **e)
        if ref2_fn is not None:
            ref2 = ref2_fn(jnp.asarray(c))
            chk = star_errors(ref2, *nseos_arrays(ref_fn(jnp.asarray(c))))
            print(
                f"      its reference, RK4({REFERENCE_STEPS}) vs RK4({2 * REFERENCE_STEPS}): "
                f"{fmt_errors(chk)}"
            )
            robust[f"{name}_worst_eos"]["reference_self_check"] = chk
    res["robustness"] = dict(n_eos=n_rob, **robust)

    # 6. Sweeps ---------------------------------------------------------------------------------
    section("6. Cost per curve vs n_stars and vs steps_per_interval (default EoS timings)")
    exact14 = [fwd_fn(jnp.asarray(c))[1] for c in acc_cs2]
    sweep_stars = []
    print("  n_stars  time/curve   max |R(1.4) interp - direct solve| over the 5 EoS [m]")
    for n in stars_sweep:
        t, _ = measure(nseos_curve_fn(n, STEPS), cs2, repeats=repeats)
        d = []
        for c, (r_exact, _) in zip(acc_cs2, exact14, strict=True):
            r_int = float(nseos_curve_fn(n, STEPS)(jnp.asarray(c)).radius_at(TARGET_MASS))
            d.append(abs(r_int - float(r_exact)) * 1e3)
        row = dict(n_stars=n, time=t, r14_interp_err_m=finite_max(d))
        sweep_stars.append(row)
        print(f"  {n:7d}  {fmt_time(t['best_s']):>10}   {row['r14_interp_err_m']:.3g}")
    sweep_steps = []
    print(f"  steps  time/curve   accuracy over the 5 EoS vs RK4({REFERENCE_STEPS})")
    for s in steps_sweep:
        t, _ = measure(nseos_curve_fn(N_STARS, s), cs2, repeats=repeats)
        errs = [
            star_errors(ref, *nseos_arrays(nseos_curve_fn(N_STARS, s)(jnp.asarray(c))))
            for c, ref in zip(acc_cs2, refs, strict=True)
        ]
        row = dict(steps_per_interval=s, time=t, **combine(errs))
        sweep_steps.append(row)
        print(f"  {s:5d}  {fmt_time(t['best_s']):>10}   {fmt_errors(row)}")
    res["sweeps"] = dict(n_stars=sweep_stars, steps_per_interval=sweep_steps)

    # Summary -----------------------------------------------------------------------------------
    def better(key):
        if acc_j is None:
            return None
        return bool(acc_n["n_nonfinite"] == 0 and acc_n[key] <= acc_j[key])

    def meets(r, target):
        return None if r is None else bool(r >= target)

    res["targets"] = dict(
        curve=meets(res["curve"]["ratio"], TARGETS["curve"]),
        batch=meets(res["batch"]["ratio"], TARGETS["batch"]),
        gradient=meets(res["gradient"]["ratio"], TARGETS["gradient"]),
        compile=None if compile_n is None else bool(compile_n < TARGETS["compile_s"]),
        accuracy={k: better(k) for k in ("dr_m", "dm_rel", "dlambda_rel")},
    )
    res["wall_time_s"] = time.perf_counter() - wall0
    res["setup"]["load_average_end"] = load_average()

    section("Summary (Markdown)")
    dev_line = f"{res['setup']['device']}, {os.cpu_count()} cores"
    jt = (
        f"{fmt_time(t_js['best_s'])} (solve only), {fmt_time(t_j['best_s'])} (with table)"
        if t_j
        else "n/a"
    )
    batch_j = f"{fmt_time(per_j)} per EoS" if per_j else "n/a"
    if res["batch"].get("jester_per_eos_s_batch100"):
        batch_j += f" ({fmt_time(res['batch']['jester_per_eos_s_batch100'])} in a batch of 100)"
    grad_j = fmt_time(g_best_j) + " (grad)" if g_best_j else "n/a"
    grad_n = f"{fmt_time(gt_fwd['best_s'])} (jacfwd)"
    if gt_rev:
        grad_n += f", {fmt_time(gt_rev['best_s'])} (grad)"

    def acc_cell(e, key, spec):
        if e is None:
            return "n/a"
        cell = fmt_num(e[key], spec)
        return cell + (f" ({e['n_nonfinite']} non-finite)" if e["n_nonfinite"] else "")

    t = res["targets"]
    print(
        f"\nBenchmark on {dev_line}; {res['setup']['mode']} mode; git {res['setup']['git']} "
        f"(nseos sources {res['setup']['nseos_source_sha256']})."
    )
    print("Ratios are jestertov time / nseos time (best of repeated calls after compilation).\n")
    print("| Benchmark | nseos | jestertov 0.1.1 | Ratio | Target | Met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| One {N_STARS}-star M-R-Λ curve | {fmt_time(t_n['best_s'])} | {jt} | "
        f"{fmt_ratio(jester_curve_best, t_n['best_s'])} | ≥ 10x | {yes_no(t['curve'])} |"
    )
    print(
        f"| vmapped batch of {n_batch} EoS | {fmt_time(per_n)} per EoS "
        f"({fmt_time(bt_n['best_s'])}) | {batch_j} | {fmt_ratio(per_j, per_n)} | ≥ 10x | "
        f"{yes_no(t['batch'])} |"
    )
    print(
        f"| dR(1.4)/dc_s² (5 parameters) | {grad_n} | {grad_j} | "
        f"{fmt_ratio(g_best_j, g_best_n)} | ≥ 30x | {yes_no(t['gradient'])} |"
    )
    print(
        f"| First call of one curve (fresh process) | {fmt_time(compile_n)} | "
        f"{fmt_time(compile_j)} | – | nseos < 5 s | {yes_no(t['compile'])} |"
    )
    for key, label, spec in (
        ("dr_m", "max abs(ΔR) [m]", ".3g"),
        ("dm_rel", "max abs(ΔM)/M", ".2e"),
        ("dlambda_rel", "max abs(ΔΛ)/Λ", ".2e"),
    ):
        print(
            f"| Accuracy, 5 EoS, M > 1 M☉: {label} | {acc_cell(acc_n, key, spec)} | "
            f"{acc_cell(acc_j, key, spec)} | – | nseos ≤ jestertov | "
            f"{yes_no(t['accuracy'][key])} |"
        )
    rb = res["robustness"]
    print(
        f"| Accuracy, {n_rob} random EoS: max abs(ΔR) [m] | "
        f"{acc_cell(rb['nseos'], 'dr_m', '.3g')} | "
        f"{acc_cell(rb.get('jester'), 'dr_m', '.3g')} | – | – | – |"
    )
    print(
        f"| Accuracy, {n_rob} random EoS: max abs(ΔΛ)/Λ | "
        f"{acc_cell(rb['nseos'], 'dlambda_rel', '.2e')} | "
        f"{acc_cell(rb.get('jester'), 'dlambda_rel', '.2e')} | – | – | – |"
    )

    print(f"\nnseos cost per curve vs n_stars (RK4({STEPS})):\n")
    print("| n_stars | time per curve | max abs(R(1.4) interpolated − direct) [m] |")
    print("|---|---|---|")
    for row in sweep_stars:
        print(
            f"| {row['n_stars']} | {fmt_time(row['time']['best_s'])} | "
            f"{row['r14_interp_err_m']:.3g} |"
        )
    print(
        f"\nnseos cost per {N_STARS}-star curve vs steps_per_interval "
        f"(errors vs RK4({REFERENCE_STEPS}), 5 EoS, stable stars with M > 1 M☉):\n"
    )
    print(
        "| steps_per_interval | time per curve | max abs(ΔM)/M | max abs(ΔR) [m] | max abs(ΔΛ)/Λ |"
    )
    print("|---|---|---|---|---|")
    for row in sweep_steps:
        bad = f" ({row['n_nonfinite']} non-finite)" if row["n_nonfinite"] else ""
        print(
            f"| {row['steps_per_interval']} | {fmt_time(row['time']['best_s'])} | "
            f"{fmt_num(row['dm_rel'])} | {fmt_num(row['dr_m'], '.3g')} | "
            f"{fmt_num(row['dlambda_rel'])}{bad} |"
        )
    if t_j:
        print(
            f"\njestertov: {TABLE_CRUST + TABLE_CORE}-point table of nseos's EoS; its curve "
            "ratio uses the faster of 'solve only' and 'with table'."
        )
    print(
        f"\nTotal wall time {res['wall_time_s']:.0f} s. Load average (1, 5, 15 min) at start "
        f"{res['setup']['load_average_start']}, at end {res['setup']['load_average_end']} "
        "(other processes on the machine inflate timings)."
    )

    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=float) + "\n")
        print(f"Results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
