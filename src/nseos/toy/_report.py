"""Tables, the claims' numbers, figures and files of the 1-D study."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import json_text, write_text_atomic
from ._network import TOY_ACTIVATIONS
from ._problem import SpectralPeaks, ToyProblem
from ._study import RunResult, StudyResult, StudySettings

POOR_MINIMUM_FACTOR = 3.0
"""A run is stuck in a poor local minimum when its final validation MSE exceeds this factor
times the median over all runs of the same architecture (every activation and mode): it
ended far above what that network usually reaches on the same data."""

ACTIVATION_LABELS = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "sigmoid": "sigmoid"}


def _stuck_threshold(study: StudyResult, architecture: str) -> float:
    runs = study.select(architecture=architecture)
    return POOR_MINIMUM_FACTOR * float(
        np.median(np.concatenate([r.validation_loss[:, -1] for r in runs]))
    )


def summary_rows(study: StudyResult) -> list[dict]:
    """One row per configuration: final losses over seeds, over-fitting, stuck and dead
    runs, cost. Paired ratios compare with plain training of the same architecture and
    activation on the same seeds."""
    rows = []
    for r in study.runs:
        v_end = r.validation_loss[:, -1]
        plain = study.select(architecture=r.architecture, activation=r.activation, mode="plain")
        ratio = v_end / plain[0].validation_loss[:, -1] if plain else np.full_like(v_end, np.nan)
        rows.append(
            {
                "architecture": r.architecture,
                "n_parameters": r.n_parameters,
                "activation": r.activation,
                "mode": r.mode,
                "validation_mse_mean": float(np.mean(v_end)),
                "validation_mse_sd": float(np.std(v_end, ddof=1)) if v_end.size > 1 else 0.0,
                "validation_mse_median": float(np.median(v_end)),
                "train_mse_mean": float(np.mean(r.train_loss[:, -1])),
                "overfit_rise_median": float(np.median(_final_over_best(r))),
                "paired_ratio_to_plain_median": float(np.median(ratio)),
                "beats_plain_fraction": float(np.mean(ratio < 1.0)),
                "stuck_fraction": float(np.mean(v_end > _stuck_threshold(study, r.architecture))),
                "runs_with_dead_units_fraction": float(np.mean(r.dead_fraction > 0)),
                "dead_unit_share_mean": float(np.mean(r.dead_fraction)),
                "dead_layer_fraction": float(np.mean(r.dead_layer)),
                "mode_us_per_step": 1e6 * r.mode_seconds_per_step,
            }
        )
    return rows


def table_markdown(rows: list[dict]) -> str:
    head = (
        "| network | activation | mode | val. MSE mean ± sd | median | train MSE | "
        "rise after best | vs plain (paired median) | beats plain | stuck | "
        "runs with dead units | dead layer |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['architecture']} ({r['n_parameters']}) | {ACTIVATION_LABELS[r['activation']]} | "
        f"{r['mode']} | {r['validation_mse_mean']:.4f} ± {r['validation_mse_sd']:.4f} | "
        f"{r['validation_mse_median']:.4f} | {r['train_mse_mean']:.4f} | "
        f"{r['overfit_rise_median']:.2f}x | {r['paired_ratio_to_plain_median']:.2f} | "
        f"{r['beats_plain_fraction']:.0%} | {r['stuck_fraction']:.0%} | "
        f"{r['runs_with_dead_units_fraction']:.0%} | {r['dead_layer_fraction']:.0%} |\n"
        for r in rows
    )
    return head + body


def table_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _pooled(study, mode, archs, activations=TOY_ACTIVATIONS):
    """Final validation losses of ``mode`` for the given architectures and activations,
    concatenated in a fixed order (so two modes pair seed by seed)."""
    return np.concatenate(
        [study.one(a, act, mode).validation_loss[:, -1] for a in archs for act in activations]
    )


def _paired(study, mode, reference, archs, activations=TOY_ACTIVATIONS) -> dict:
    a = _pooled(study, mode, archs, activations)
    b = _pooled(study, reference, archs, activations)
    return {
        "mode": mode,
        "reference": reference,
        "median_ratio": float(np.median(a / b)),
        "mean_ratio": float(np.mean(a) / np.mean(b)),
        "wins": float(np.mean(a < b)),
        "runs": int(a.size),
    }


def _final_over_best(r: RunResult) -> np.ndarray:
    """Per seed: final validation MSE over its best value during training."""
    return r.validation_loss[:, -1] / r.validation_loss.min(axis=1)


def _train_over_validation(r: RunResult) -> np.ndarray:
    """Per seed: final training-point MSE over final validation MSE (the generalisation gap)."""
    return r.train_loss[:, -1] / r.validation_loss[:, -1]


def _median_ratio(study, arch, mode, per_seed) -> float:
    """Median of a per-seed ratio over every activation of ``arch`` in ``mode``."""
    return float(
        np.median(np.concatenate([per_seed(study.one(arch, a, mode)) for a in TOY_ACTIVATIONS]))
    )


def claims(study: StudyResult) -> dict:
    """The numbers behind each of the talk's four claims (see docs/toy_study.md)."""
    modes = {r.mode for r in study.runs}
    replica_modes = sorted((m for m in modes if m.startswith("replicas")), key=len)
    dropout = next(m for m in modes if m.startswith("dropout"))
    big = ["1-4-4-1", "1-9-9-1"]
    big = [a for a in big if any(r.architecture == a for r in study.runs)]
    out: dict = {}
    one_copy = replica_modes[0]
    out["1_replicas_curb_overfitting"] = {
        arch: {
            "vs_one_noisy_copy": {
                m: _paired(study, m, one_copy, [arch]) for m in replica_modes[1:]
            },
            "vs_plain_exact_points": {m: _paired(study, m, "plain", [arch]) for m in replica_modes},
            "rise_after_best_median": {
                m: _median_ratio(study, arch, m, _final_over_best)
                for m in ["plain", *replica_modes]
            },
            "train_over_validation_median": {
                m: _median_ratio(study, arch, m, _train_over_validation)
                for m in ["plain", *replica_modes]
            },
        }
        for arch in big
    }
    best_rep = "replicas n_s=100" if "replicas n_s=100" in modes else replica_modes[-1]
    archs = sorted({r.architecture for r in study.runs}, key=len)
    first, every = "param. noise, first layer", "param. noise, all layers"
    out["2_parameter_noise_like_replicas"] = {
        "first_layer_vs_replicas": _paired(study, first, best_rep, archs),
        "all_layers_vs_first_layer": _paired(study, every, first, archs),
        "first_layer_vs_plain": _paired(study, first, "plain", archs),
        "all_layers_vs_plain": _paired(study, every, "plain", archs),
    }
    cost = {m: study.select(mode=m)[0].mode_seconds_per_step for m in modes}
    out["3_replicas_vs_dropout"] = {
        "replicas_vs_dropout": _paired(study, best_rep, dropout, archs),
        "dropout_vs_plain": _paired(study, dropout, "plain", archs),
        "us_per_step": {m: 1e6 * c for m, c in sorted(cost.items())},
        "dropout_over_replicas_time": cost[dropout] / cost[best_rep],
    }
    act = {}
    for a in TOY_ACTIVATIONS:
        runs = study.select(activation=a, mode="plain")
        dead = np.concatenate([r.dead_fraction for r in runs])
        final = np.concatenate([r.validation_loss[:, -1] for r in runs])
        stuck = np.concatenate(
            [r.validation_loss[:, -1] > _stuck_threshold(study, r.architecture) for r in runs]
        )
        act[a] = {
            "runs_with_dead_units": float(np.mean(dead > 0)),
            "dead_unit_share": float(np.mean(dead)),
            "dead_layer_runs": float(np.mean(np.concatenate([r.dead_layer for r in runs]))),
            "stuck_runs": float(np.mean(stuck)),
            "validation_mse_median": float(np.median(final)),
        }
    out["4_relu_dies"] = {"plain_training_by_activation": act}
    return out


def verdict_markdown(c: dict) -> str:
    """The claims' numbers in words (the judgement is in docs/toy_study.md)."""

    def p(d):
        return (
            f"median paired ratio {d['median_ratio']:.2f}, ratio of means {d['mean_ratio']:.2f}, "
            f"lower in {d['wins']:.0%} of {d['runs']} paired runs"
        )

    lines = [
        "# The talk's claims, measured\n\n",
        "Ratios are the final validation MSE of the first mode over the second's, on the same "
        "seeds (same points, same initial weights); below 1 favours the first.\n",
    ]
    lines.append("\n## 1. Replicas curb over-fitting (1-4-4-1, 1-9-9-1)\n")
    for arch, d in c["1_replicas_curb_overfitting"].items():
        for group in ("vs_one_noisy_copy", "vs_plain_exact_points"):
            for v in d[group].values():
                lines.append(f"- {arch}, {v['mode']} vs {v['reference']}: {p(v)}.\n")
        rises = ", ".join(f"{m} {x:.2f}x" for m, x in d["rise_after_best_median"].items())
        lines.append(f"- {arch}, final over best validation MSE (median): {rises}.\n")
        gaps = ", ".join(f"{m} {x:.2f}" for m, x in d["train_over_validation_median"].items())
        lines.append(f"- {arch}, training-point over validation MSE (median): {gaps}.\n")
    d = c["2_parameter_noise_like_replicas"]
    lines.append("\n## 2. First-layer parameter noise ~ replicas; all layers slightly better\n")
    for v in d.values():
        lines.append(f"- {v['mode']} vs {v['reference']}: {p(v)}.\n")
    d = c["3_replicas_vs_dropout"]
    lines.append("\n## 3. Replicas on par with dropout, and faster\n")
    for k in ("replicas_vs_dropout", "dropout_vs_plain"):
        v = d[k]
        lines.append(f"- {v['mode']} vs {v['reference']}: {p(v)}.\n")
    cost = ", ".join(f"{m} {t:.0f} us" for m, t in d["us_per_step"].items())
    lines.append(f"- Wall time per step (a mode's configurations and seeds at once): {cost}.\n")
    ratio = d["dropout_over_replicas_time"]
    lines.append(f"- Dropout over replicas, time per step: {ratio:.2f}.\n")
    lines.append("\n## 4. Plain ReLU often dies; leaky ReLU and sigmoid do better\n")
    for a, v in c["4_relu_dies"]["plain_training_by_activation"].items():
        lines.append(
            f"- {ACTIVATION_LABELS[a]} (plain, all networks): runs with dead units "
            f"{v['runs_with_dead_units']:.0%}, dead-unit share {v['dead_unit_share']:.0%}, "
            f"runs with a dead layer {v['dead_layer_runs']:.0%}, stuck runs "
            f"{v['stuck_runs']:.0%}, median validation MSE {v['validation_mse_median']:.4f}.\n"
        )
    return "".join(lines)


def _mode_colours(modes):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(modes)}


def loss_curves_figure(study: StudyResult, activation: str):
    """Median (over seeds) training-point and validation MSE against step, one row per
    architecture, one line per mode; the band is the seeds' interquartile range. The
    training-point loss is on the exact points (what the replicas' copies scatter around)."""
    from ..plots import _pyplot

    plt = _pyplot()
    archs = list(dict.fromkeys(r.architecture for r in study.runs))
    modes = list(dict.fromkeys(r.mode for r in study.runs))
    colours = _mode_colours(modes)
    fig, axes = plt.subplots(
        len(archs), 2, figsize=(11, 3.2 * len(archs)), squeeze=False, sharex=True
    )
    for i, arch in enumerate(archs):
        for j, (attr, title) in enumerate(
            (("train_loss", "training points"), ("validation_loss", "validation (noise-free f)"))
        ):
            ax = axes[i, j]
            for m in modes:
                r = study.one(arch, activation, m)
                y = getattr(r, attr)[:, 1:]  # from the first checkpoint (log axis)
                steps = r.steps[1:]
                q25, q50, q75 = np.quantile(y, [0.25, 0.5, 0.75], axis=0)
                ax.plot(steps, q50, color=colours[m], label=m, lw=1.4)
                ax.fill_between(steps, q25, q75, color=colours[m], alpha=0.12, lw=0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{arch}, {ACTIVATION_LABELS[activation]}: {title}", fontsize=10)
            ax.set_ylabel("MSE of f [dimensionless]")
            ax.grid(alpha=0.3, which="both")
    for ax in axes[-1]:
        ax.set_xlabel("optimiser step")
    axes[0, 1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def fits_figure(study: StudyResult, activation: str, seed: int = 0):
    """The trained networks of one seed over the truth and that seed's training points:
    rows are architectures, columns modes."""
    from ..plots import _pyplot

    plt = _pyplot()
    archs = list(dict.fromkeys(r.architecture for r in study.runs))
    modes = list(dict.fromkeys(r.mode for r in study.runs))
    xg, yg = study.problem.grid()
    fig, axes = plt.subplots(
        len(archs),
        len(modes),
        figsize=(2.6 * len(modes), 2.4 * len(archs)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for i, arch in enumerate(archs):
        for j, m in enumerate(modes):
            ax = axes[i, j]
            r = study.one(arch, activation, m)
            ax.plot(xg, yg, color="0.5", lw=2.5, label="truth f(x)")
            ax.plot(xg, r.fitted[seed], color="C3", lw=1.3, label="network")
            ax.plot(r.train_x[seed], r.train_y[seed], "k.", ms=5, label="training points")
            ax.set_ylim(-0.3, 1.4)
            if i == 0:
                ax.set_title(m, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{arch}\nf(x)")
            if i == len(archs) - 1:
                ax.set_xlabel("x")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Fits, seed {seed}, {ACTIVATION_LABELS[activation]}", fontsize=11)
    fig.tight_layout()
    return fig


def summary_figure(study: StudyResult):
    """Final validation MSE per mode (median and interquartile range over seeds), one
    panel per activation, grouped by architecture."""
    from ..plots import _pyplot

    plt = _pyplot()
    archs = list(dict.fromkeys(r.architecture for r in study.runs))
    modes = list(dict.fromkeys(r.mode for r in study.runs))
    acts = list(dict.fromkeys(r.activation for r in study.runs))
    colours = _mode_colours(modes)
    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 4.2), squeeze=False, sharey=True)
    width = 0.8 / len(modes)
    for k, act in enumerate(acts):
        ax = axes[0, k]
        for j, m in enumerate(modes):
            for i, arch in enumerate(archs):
                v = study.one(arch, act, m).validation_loss[:, -1]
                q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
                x = i + (j - (len(modes) - 1) / 2) * width
                ax.bar(x, q50, width, color=colours[m], label=m if i == 0 else None)
                ax.plot([x, x], [q25, q75], color="k", lw=0.8)
        ax.set_xticks(range(len(archs)), archs)
        ax.set_yscale("log")
        ax.set_title(ACTIVATION_LABELS[act])
        ax.grid(alpha=0.3, axis="y", which="both")
    axes[0, 0].set_ylabel("final validation MSE of f [dimensionless]")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(modes), fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def results_json(study: StudyResult) -> dict:
    p, s = study.problem, study.settings
    return {
        "problem": {
            "target": type(p.target).__name__,
            "target_parameters": {
                k: list(getattr(p.target, k))
                for k in ("centres", "half_widths", "heights")
                if hasattr(p.target, k)
            },
            "n_train": p.n_train,
            "input_sigma": p.input_sigma,
            "domain": list(p.domain),
            "n_grid": p.n_grid,
        },
        "settings": {
            "steps": s.steps,
            "batch_size": s.batch_size,
            "learning_rate": s.learning_rate,
            "n_seeds": s.n_seeds,
            "n_checkpoints": s.n_checkpoints,
        },
        "runs": [
            {
                "architecture": r.architecture,
                "activation": r.activation,
                "mode": r.mode,
                "n_parameters": r.n_parameters,
                "steps": r.steps.tolist(),
                "train_loss": r.train_loss.tolist(),
                "validation_loss": r.validation_loss.tolist(),
                "fitted": r.fitted.tolist(),
                "train_x": r.train_x.tolist(),
                "train_y": r.train_y.tolist(),
                "dead_fraction": r.dead_fraction.tolist(),
                "dead_layer": r.dead_layer.tolist(),
                "mode_compile_seconds": r.mode_compile_seconds,
                "mode_seconds_per_step": r.mode_seconds_per_step,
            }
            for r in study.runs
        ],
    }


def load_study(path: str | os.PathLike) -> StudyResult:
    """Read a study back from the ``results.json`` that :func:`write_report` wrote (to redo
    the tables and figures without training again)."""
    try:
        d = json.loads(Path(path).read_text())
        p, s = d["problem"], d["settings"]
        target = SpectralPeaks(**{k: tuple(v) for k, v in p["target_parameters"].items()})
        problem = ToyProblem(
            target=target,
            n_train=p["n_train"],
            input_sigma=p["input_sigma"],
            domain=tuple(p["domain"]),
            n_grid=p["n_grid"],
        )
        settings = StudySettings(**s)
        array_fields = (
            "steps",
            "train_loss",
            "validation_loss",
            "fitted",
            "train_x",
            "train_y",
            "dead_fraction",
            "dead_layer",
        )
        runs = [
            RunResult(**{k: np.asarray(v) if k in array_fields else v for k, v in r.items()})
            for r in d["runs"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a toy-study results.json: {err}") from None
    return StudyResult(problem, settings, runs)


def write_report(
    study: StudyResult,
    out: str | os.PathLike,
    formats: tuple[str, ...] = ("png", "pdf"),
    figure_activations: Sequence[str] | None = None,
) -> list[Path]:
    """Write table.md/.csv, claims.md/.json, results.json and the figures (150 dpi, in
    ``formats``) into ``out``; every file is written atomically. Returns the paths.

    ``figure_activations``: the activations that get loss-curve and fit figures (default:
    all; the summary figure always shows all)."""
    from ..plots import save_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(study)
    c = claims(study)
    files = {
        "table.md": table_markdown(rows),
        "table.csv": table_csv(rows),
        "claims.md": verdict_markdown(c),
        "claims.json": json_text(c, indent=2),
        "results.json": json_text(results_json(study), indent=None),
    }
    written = []
    for name, text in files.items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    acts = list(dict.fromkeys(r.activation for r in study.runs))
    if figure_activations is not None:
        acts = [a for a in acts if a in figure_activations]
    figs = [("summary", summary_figure(study))]
    for a in acts:
        figs += [(f"loss-{a}", loss_curves_figure(study, a)), (f"fits-{a}", fits_figure(study, a))]
    for name, fig in figs:
        written += [Path(f) for f in save_figure(fig, out / name, formats)]
    return written
