"""NN-replica estimator: data generation, regularisation mechanism, training, persistence,
recovery of a mock EoS, and bad input. Small scales and fixed keys throughout."""

import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import curve_jit
from nseos._io import IntegrityError
from nseos.bayes import LogUniformSoundSpeed
from nseos.observations import MassRadiusGaussian, ObservationSet, PulsarMass, mock_observations
from nseos.replica import (
    MLP,
    DataReplicas,
    DeepSets,
    Dropout,
    MeanSquaredError,
    NoRegularisation,
    ParameterNoise,
    ReplicaEstimator,
    TrainingConfig,
    TrainingData,
    TrainSettings,
    generate_training_data,
    validate,
)
from nseos.replica import _data as replica_data
from nseos.replica._estimator import _predict_members
from nseos.replica._train import replica_noise

SMALL = TrainingConfig(n_eos=48, n_sets=16)
FAST = TrainSettings(epochs=6, batch_size=128, patience=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_training_data(
        SMALL, jax.random.key(0), cache_dir=tmp_path_factory.mktemp("cache"), progress=False
    )


@pytest.fixture(scope="module")
def trained(data):
    est = ReplicaEstimator(
        training=SMALL, regularisation=DataReplicas(4), settings=FAST, n_models=3
    )
    return est.train(jax.random.key(1), data=data, progress=False)


def test_training_data_follow_the_curves_and_the_cache_is_reused(data, tmp_path, monkeypatch):
    assert data.cs2.shape == (48, 5) and data.true_mass_msun.shape == (48, 16, 14)
    assert np.all((data.cs2 >= 0.01) & (data.cs2 <= 0.99))
    # Stored truths lie on the EoS's own M-R curve, with masses in [1 M_sun, M_max >= 2].
    for i in (0, 17):
        curve = curve_jit(SMALL.make_eos(data.cs2[i]), 100, SMALL.method)
        assert float(curve.max_mass_msun) >= SMALL.min_max_mass_msun
        m = data.true_mass_msun[i].reshape(-1)
        assert np.all((m >= 1.0) & (m <= float(curve.max_mass_msun)))
        np.testing.assert_allclose(
            data.true_radius_km[i].reshape(-1), curve.radius_at(jnp.asarray(m)), rtol=1e-9
        )
    sr = data.radius_sigma_km
    assert sr.min() >= 0.557 and sr.max() <= 2.345
    # Cache: same config and key -> the file is reused (nothing is solved again).
    a = generate_training_data(SMALL, jax.random.key(5), cache_dir=tmp_path, progress=False)
    (path,) = tmp_path.glob("training-*.npz")

    def no_solving(*args):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(replica_data, "_solve_batch", no_solving)
    b = generate_training_data(SMALL, jax.random.key(5), cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(a.cs2, b.cs2)
    assert TrainingData.load(path).config_hash == a.config_hash
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not an nseos training-data file"):
        TrainingData.load(path)


def test_rejections_are_counted():
    strict = TrainingConfig(n_eos=8, n_sets=2, min_max_mass_msun=2.6)
    d = generate_training_data(strict, jax.random.key(3), progress=False)
    assert d.n_rejected > 0
    for i in range(d.n_eos):
        curve = curve_jit(strict.make_eos(d.cs2[i]), 100, strict.method)
        assert float(curve.max_mass_msun) >= 2.6


def test_replica_noise_fixed_or_fresh():
    sample, copy = jnp.array([3, 3, 7]), jnp.array([0, 1, 0])
    fixed = DataReplicas(2, materialised=True)
    a = replica_noise(fixed, jax.random.key(1), jax.random.key(9), sample, copy, (14, 2))
    b = replica_noise(fixed, jax.random.key(2), jax.random.key(9), sample, copy, (14, 2))
    np.testing.assert_array_equal(a, b)  # same copy in every mini-batch
    assert not np.allclose(a[0], a[1])  # copies of one catalogue differ
    fresh = DataReplicas(2)
    c = replica_noise(fresh, jax.random.key(1), jax.random.key(9), sample, copy, (14, 2))
    d = replica_noise(fresh, jax.random.key(2), jax.random.key(9), sample, copy, (14, 2))
    assert not np.allclose(c, d)
    big = replica_noise(fresh, jax.random.key(3), None, jnp.zeros(4000, int), None, (14, 2))
    assert abs(float(jnp.std(big)) - 1.0) < 0.01 and abs(float(jnp.mean(big))) < 0.01


def test_parameter_noise_perturbs_first_bias_or_everything():
    net = MLP().build(14, 5, (0.01, 0.99), jax.random.key(0))
    first = ParameterNoise(0.3, "first").perturb(net, jax.random.key(1))
    diff = first.layers[0].bias - net.layers[0].bias
    assert abs(float(jnp.std(diff)) - 0.3) < 0.1
    np.testing.assert_array_equal(first.layers[0].weight, net.layers[0].weight)
    np.testing.assert_array_equal(first.layers[1].bias, net.layers[1].bias)
    every = ParameterNoise(0.05, "all").perturb(net, jax.random.key(1))
    dw = every.layers[0].weight - net.layers[0].weight
    assert abs(float(jnp.std(dw)) - 0.05) < 0.005
    # Input noise equals first-layer bias noise for the (linear) first layer.
    x = jax.random.normal(jax.random.key(2), (56,), jnp.float32)
    e = jax.random.normal(jax.random.key(3), (56,), jnp.float32)
    lin = net.layers[0]
    # float32 sums of 56 terms: bound the rounding by the magnitude of the terms, not of the
    # result (an output near zero, -0.0038 under jax 0.12.1, has a relative error of 1.8e-5).
    scale = float(jnp.max(jnp.abs(lin.weight) @ (jnp.abs(x) + jnp.abs(e)) + jnp.abs(lin.bias)))
    np.testing.assert_allclose(
        lin(x + e),
        eqx.tree_at(lambda lay: lay.bias, lin, lin.bias + lin.weight @ e)(x),
        rtol=1e-5,
        atol=8 * float(jnp.finfo(jnp.float32).eps) * scale,
    )


def test_dropout_only_when_keyed():
    net = MLP().build(14, 5, (0.01, 0.99), jax.random.key(0))
    x = jnp.ones((14, 4), jnp.float32) * jnp.array([[1.5, 12.0, 0.2, 1.0]])
    np.testing.assert_array_equal(net(x), net(x, dropout_rate=0.5))
    assert not np.allclose(net(x), net(x, dropout_rate=0.5, key=jax.random.key(1)))


@pytest.mark.parametrize(
    "reg",
    [NoRegularisation(), DataReplicas(3, materialised=True), ParameterNoise(0.05), Dropout(0.1)],
)
def test_every_mode_trains(data, reg):
    est = ReplicaEstimator(training=SMALL, regularisation=reg, settings=FAST, n_models=2)
    out = est.train(jax.random.key(2), data=data, progress=False)
    h = out.history
    assert h.train_loss.shape[1] == 2 and np.all(np.isfinite(h.validation_loss))
    # Learning happens: the kept parameters beat the untrained networks on validation data.
    kept = h.validation_loss[h.best_epoch, np.arange(2)]
    assert np.all(kept < h.initial_validation_loss), (kept, h.initial_validation_loss)
    assert np.all(h.train_loss[-1] < h.train_loss[0])


def test_training_is_deterministic(data):
    est = ReplicaEstimator(
        training=SMALL, regularisation=DataReplicas(2), settings=TrainSettings(epochs=2), n_models=2
    )
    a = est.train(jax.random.key(4), data=data, progress=False)
    b = est.train(jax.random.key(4), data=data, progress=False)
    c = est.train(jax.random.key(5), data=data, progress=False)
    la, lb, lc = (jax.tree.leaves(eqx.filter(e.ensemble, eqx.is_array)) for e in (a, b, c))
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(la[0], lc[0])


def test_save_load_is_bit_exact(trained, tmp_path):
    trained.save(tmp_path / "ens")
    back = ReplicaEstimator.load(tmp_path / "ens")
    for x, y in zip(
        jax.tree.leaves(eqx.filter(trained.ensemble, eqx.is_array)),
        jax.tree.leaves(eqx.filter(back.ensemble, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(back.history.validation_loss, trained.history.validation_loss)
    assert back.data_hash == trained.data_hash and back.regularisation == trained.regularisation
    header = json.loads((tmp_path / "ens" / "model.json").read_text())
    assert header["versions"]["nseos"] and header["training"]["n_stars"] == 14
    x = np.random.default_rng(0).uniform([1.0, 10, 0.1, 0.6], [2.0, 14, 0.3, 2.0], (14, 4))
    np.testing.assert_array_equal(trained.predict(x), back.predict(x))


def test_nondefault_setup_round_trips_and_mismatched_data_are_refused(data, tmp_path):
    cfg = TrainingConfig(n_eos=8, n_sets=2, prior=LogUniformSoundSpeed(0.02, 0.9))
    est = ReplicaEstimator(
        training=cfg,
        architecture=DeepSets(phi_hidden=(8,), rho_hidden=(8,), activation=jax.nn.tanh),
        regularisation=ParameterNoise(0.02, "all"),
        settings=TrainSettings(epochs=1, validation_fraction=0.25),
        n_models=2,
    )
    with pytest.raises(ValueError, match="another configuration"):
        est.train(jax.random.key(0), data=data, progress=False)
    trained = est.train(jax.random.key(0), progress=False)
    assert trained.cs2_range == (0.02, 0.9)
    trained.save(tmp_path / "m")
    with pytest.raises(ValueError, match="different configuration"):
        ReplicaEstimator.load(tmp_path / "m")  # the default prior is not this one
    back = ReplicaEstimator.load(tmp_path / "m", training=cfg)
    assert back.architecture == trained.architecture
    assert back.regularisation == trained.regularisation
    x = np.asarray(trained.features(_catalogue(5)))
    np.testing.assert_array_equal(trained.predict(x), back.predict(x))


def test_load_refuses_foreign_corrupted_or_mismatched(trained, tmp_path):
    d = trained.save(tmp_path / "ens")
    with pytest.raises(ValueError, match="trained for N = 14 stars, not 10"):
        ReplicaEstimator.load(d, n_stars=10)
    other = TrainingConfig(n_eos=48, n_sets=16, min_max_mass_msun=1.8)
    with pytest.raises(ValueError, match="different configuration"):
        ReplicaEstimator.load(d, training=other)
    (d / "weights.eqx").write_bytes((d / "weights.eqx").read_bytes()[:100])
    with pytest.raises(IntegrityError, match="modified or damaged"):
        ReplicaEstimator.load(d)
    (d / "model.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="foreign"):
        ReplicaEstimator.load(d)
    (d / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupted header"):
        ReplicaEstimator.load(d)
    with pytest.raises(FileNotFoundError):
        ReplicaEstimator.load(tmp_path / "missing")


@pytest.mark.parametrize(
    "tamper",
    [
        "flip-weights",
        "cs2_range",
        "activation",
        "band_scale",
        "no-training-key",
        "no-hash",
        "unknown-key-rehashed",
    ],
)
def test_an_edited_or_damaged_model_is_refused(trained, tmp_path, tamper):
    """Issue 21: flipping 400 bytes of weights.eqx moved R(1.4) by 0.7 km and loaded
    silently; editing cs2_range or the activation changed the answer. Now each load fails,
    naming the file."""
    from nseos._io import DIGEST_KEY, json_digest

    d = trained.save(tmp_path / "ens")
    header = json.loads((d / "model.json").read_text())
    if tamper == "flip-weights":
        raw = bytearray((d / "weights.eqx").read_bytes())
        middle = len(raw) // 2
        raw[middle : middle + 400] = bytes(b ^ 0x5A for b in raw[middle : middle + 400])
        (d / "weights.eqx").write_bytes(bytes(raw))
        error, match = IntegrityError, r"weights.eqx: the content does not match"
    else:
        if tamper == "cs2_range":
            header["cs2_range"] = [0.0, 1.0]
        elif tamper == "activation":
            header["architecture"]["activation"] = "sigmoid"
        elif tamper == "band_scale":
            header["band_scale"] = 50.0
        elif tamper == "no-training-key":
            del header["training"]
        elif tamper == "no-hash":
            del header[DIGEST_KEY]
        else:  # a well-formed hash over a header with an unknown key: the schema refuses it
            header.pop(DIGEST_KEY)
            header["trainig"] = header["training"]
            header[DIGEST_KEY] = json_digest(header)
        (d / "model.json").write_text(json.dumps(header))
        error, match = IntegrityError, "model.json: the content does not match"
        if tamper == "no-hash":
            match = "model.json: no content hash"
        elif tamper == "unknown-key-rehashed":
            error, match = ValueError, "unknown key 'trainig' \\(did you mean 'training'\\?\\)"
    with pytest.raises(error, match=match):
        ReplicaEstimator.load(d)


def _catalogue(n, seed=11):
    curve = curve_jit(SMALL.make_eos(jnp.array([0.2, 0.4, 0.5, 0.4, 0.3])), 100, SMALL.method)
    return mock_observations(curve, jax.random.key(seed), n).to_observation_set()


def test_bad_observations_get_clear_messages(trained):
    with pytest.raises(ValueError, match=r"trained for N = 14 stars, got 10.*DeepSets"):
        trained.fit(_catalogue(10), key=jax.random.key(0))
    obs = list(_catalogue(14))
    with pytest.raises(
        ValueError, match=r"cannot use .mass. observations \(psr\).*BayesianEstimator"
    ):
        trained.fit(
            ObservationSet([*obs[:13], PulsarMass("psr", 2.0, 0.05)]), key=jax.random.key(0)
        )
    with pytest.raises(ValueError, match="non-empty"):
        trained.fit(ObservationSet([]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="not trained"):
        ReplicaEstimator(training=SMALL).predict(np.zeros((14, 4)))
    with pytest.raises(ValueError):
        MassRadiusGaussian("bad", 1.4, float("nan"), 12.0, 0.5)
    with pytest.raises(ValueError):
        MassRadiusGaussian("bad", 1.4, -0.1, 12.0, 0.5)


def test_deepsets_accepts_any_number_of_stars(data):
    est = ReplicaEstimator(
        training=SMALL,
        architecture=DeepSets(),
        settings=FAST,
        n_models=2,
        regularisation=DataReplicas(2),
        loss=MeanSquaredError(),
    )
    out = est.train(jax.random.key(3), data=data, progress=False)
    x = jnp.asarray(out.features(_catalogue(14)))
    np.testing.assert_allclose(
        _predict_members(out.ensemble, x[None]),
        _predict_members(out.ensemble, x[::-1][None]),
        rtol=1e-5,
    )
    post = out.fit(_catalogue(9), key=jax.random.key(0))
    assert post.posterior.sizes["draw"] == 2


def test_fit_returns_ensemble_draws_with_derived_quantities(trained):
    post = trained.fit(_catalogue(14), key=jax.random.key(0))
    assert post.posterior.sizes["chain"] == 1 and post.posterior.sizes["draw"] == 3
    assert post.datatree.attrs["method"] == "replica"
    cs2 = post.posterior["cs2"].values[0]
    np.testing.assert_allclose(cs2, trained.predict(trained.features(_catalogue(14))))
    mc = dataclasses.replace(trained, input_draws=5)
    post_mc = mc.fit(_catalogue(14), key=jax.random.key(0))
    assert post_mc.posterior.sizes["draw"] == 15
    assert "prior" not in post.datatree.children  # prior draws only on request


def test_fit_stores_draws_of_the_training_distribution_on_request(trained):
    """The implicit prior is the training prior restricted to M_max >= the training
    threshold: every stored prior draw passes it, and the draws are uniform-ish in c_s^2."""
    post = dataclasses.replace(trained, n_prior_draws=40).fit(_catalogue(14), key=jax.random.key(0))
    prior = post.datatree["prior"].to_dataset()
    m_max = prior["max_mass_msun"].values
    assert m_max.shape == (1, 40) or 30 <= m_max.shape[1] < 40  # a few rejections allowed
    assert np.all(m_max >= trained.training.min_max_mass_msun)
    cs2 = prior["cs2"].values
    assert 0.01 <= cs2.min() and cs2.max() <= 0.99 and cs2.std() > 0.15
    with pytest.raises(ValueError, match="n_prior_draws"):
        dataclasses.replace(trained, n_prior_draws=-1)


@pytest.mark.slow
def test_recovers_a_mock_eos_within_the_band(tmp_path):
    """Train a modest ensemble; the band (members x Monte Carlo input draws) of R(M) contains
    the truth of a held-out SLy4-like EoS, and the validation RMS is well below the prior's
    spread."""
    cfg = TrainingConfig(n_eos=300, n_sets=40)
    est = ReplicaEstimator(
        training=cfg,
        regularisation=DataReplicas(20),
        settings=TrainSettings(epochs=30, batch_size=500, patience=6),
        n_models=5,
        input_draws=20,
    )
    trained = est.train(jax.random.key(0), cache_dir=tmp_path, progress=False)
    truth = jnp.array([0.0603, 0.1308, 0.2629, 0.4497, 0.6796])
    curve = curve_jit(cfg.make_eos(truth), 100, cfg.method)
    obs = mock_observations(curve, jax.random.key(7), 14).to_observation_set()
    post = trained.fit(obs, key=jax.random.key(1))
    lo, hi = post.band("radius_km", 0.95)
    grid = post.posterior["mass_msun"].values
    r_true = np.asarray(curve.radius_at(jnp.asarray(grid)))
    for m in (1.0, 1.4, 1.8):
        i = int(np.argmin(np.abs(grid - m)))
        assert lo[i] <= r_true[i] <= hi[i], (m, lo[i], r_true[i], hi[i])
    result = validate(trained, jax.random.key(5), n_eos=64)
    assert np.all(result.rms_km < 0.6), result.table()
