"""The 1-D noise-injection study: the target, the padded networks, the noise identities
and, on a small budget, that replicas help the over-parameterised network."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nseos.replica import DataReplicas, ParameterNoise
from nseos.replica._train import MeanSquaredError, predict_batch
from nseos.toy import (
    Dense1D,
    Mode,
    SpectralPeaks,
    StudySettings,
    ToyProblem,
    build_padded,
    talk_modes,
    train_mode,
)


def test_spectral_peaks_values_and_bad_input():
    f = SpectralPeaks(centres=(0.0,), half_widths=(0.1,), heights=(2.0,))
    np.testing.assert_allclose(f(jnp.array([0.0, 0.1, -0.1])), [2.0, 1.0, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="same length"):
        SpectralPeaks(centres=(0.0, 1.0), half_widths=(0.1,), heights=(1.0,))
    with pytest.raises(ValueError, match="positive"):
        SpectralPeaks(centres=(0.0,), half_widths=(0.0,), heights=(1.0,))
    with pytest.raises(ValueError, match="input_sigma"):
        ToyProblem(input_sigma=-0.1)
    with pytest.raises(ValueError, match="multiple"):
        StudySettings(steps=105, n_checkpoints=10)


def test_parameter_counts_are_the_talks():
    assert [Dense1D(h).n_parameters for h in [(2, 2), (4, 4), (9, 9)]] == [13, 33, 118]
    with pytest.raises(ValueError, match="activation"):
        Dense1D((4, 4), "tanh")


def test_padded_network_is_the_small_network():
    """A 1-4-4-1 recipe padded to 9-9 computes exactly the 1-4-4-1 network made of its
    unmasked weights, and the masked weights get no gradient."""
    code = jnp.asarray(Dense1D((4, 4), "sigmoid").encode())
    net = build_padded(code, (9, 9), jax.random.key(0))
    l0, l1, l2 = net.layers
    x = jnp.linspace(-1, 1, 7, dtype=jnp.float32)

    def small(xi):
        h = jax.nn.sigmoid(l0.weight[:4, 0] * xi + l0.bias[:4])
        h = jax.nn.sigmoid(l1.weight[:4, :4] @ h + l1.bias[:4])
        return l2.weight[0, :4] @ h + l2.bias[0]

    np.testing.assert_allclose(predict_batch(net, x), jax.vmap(small)(x), rtol=1e-5, atol=1e-6)
    grads = eqx.filter_grad(lambda n: jnp.sum(predict_batch(n, x) ** 2))(net)
    assert np.all(np.asarray(grads.layers[0].weight[4:]) == 0)
    assert np.all(np.asarray(grads.layers[1].weight[4:, :]) == 0)
    assert np.all(np.asarray(grads.layers[1].weight[:, 4:]) == 0)
    assert np.all(np.asarray(grads.layers[2].weight[:, 4:]) == 0)
    assert np.any(np.asarray(grads.layers[1].weight[:4, :4]) != 0)
    # Initial weights carry the small network's own fan-in: U(-1/2, 1/2) for 4 inputs.
    assert 0.3 < float(jnp.max(jnp.abs(l1.weight[:4, :4]))) <= 0.5


def test_dead_units():
    code = jnp.asarray(Dense1D((4, 4), "relu").encode())
    net = build_padded(code, (9, 9), jax.random.key(1))
    x = jnp.linspace(-1, 1, 11, dtype=jnp.float32)
    # Every first-layer unit pushed far negative: the layer is dead (the net is constant).
    dead_net = eqx.tree_at(lambda n: n.layers[0].bias, net, net.layers[0].bias - 10.0)
    d0, _ = dead_net.dead_units(x)
    assert np.asarray(d0).sum() == 4  # the four real units, never the masked ones
    assert not np.any(np.asarray(d0)[4:])  # masked units are never counted as dead
    leaky = eqx.tree_at(lambda n: n.activation_index, dead_net, jnp.asarray(1, jnp.int32))
    assert not np.any(np.asarray(leaky.dead_units(x)[0]))
    sigmoid = eqx.tree_at(lambda n: n.activation_index, dead_net, jnp.asarray(2, jnp.int32))
    assert np.asarray(sigmoid.dead_units(x)[0]).sum() == 4  # saturated at |z| ~ 10


def test_first_layer_parameter_noise_matches_replicas_in_expectation():
    """W(x + dx) + b = Wx + (b + W dx): first-layer bias noise with the scale implied by dx
    gives the same expected loss and expected gradient as input-noise replicas (drawn per
    input) for any network after the linear first layer. A wrong scale is detected."""
    sigma = 0.3
    problem = ToyProblem(input_sigma=sigma)
    x, _ = problem.training_points(jax.random.key(0))
    net = build_padded(jnp.asarray(Dense1D((9, 9), "sigmoid").encode()), (9, 9), jax.random.key(2))
    # Targets: the noise-free network's outputs plus an offset, so that the expected loss
    # is dominated by what the noise does (a wrong noise scale is then easy to detect).
    y = predict_batch(net, x) + 0.05
    loss = MeanSquaredError()
    keys = jax.random.split(jax.random.key(3), 20_000)

    def replica(k):
        noisy = x + sigma * jax.random.normal(k, x.shape, jnp.float32)
        return eqx.filter_value_and_grad(lambda n: loss(predict_batch(n, noisy), y))(net)

    def param(reg, k):
        return eqx.filter_value_and_grad(lambda n: loss(predict_batch(reg.perturb(n, k), x), y))(
            net
        )

    def moments(fn):
        v, g = jax.jit(jax.vmap(fn))(keys)
        g = g.layers[1].bias  # a gradient component after the first layer
        return (
            np.mean(v),
            np.std(v) / np.sqrt(v.size),
            np.mean(g, 0),
            np.std(g, 0) / np.sqrt(len(g)),
        )

    implied = ParameterNoise(sigma, "first", through_weights=True)
    wrong = ParameterNoise(3 * sigma, "first", through_weights=True)
    m_r, e_r, g_r, ge_r = moments(replica)
    m_p, e_p, g_p, ge_p = moments(lambda k: param(implied, k))
    m_w, e_w, _, _ = moments(lambda k: param(wrong, k))
    assert abs(m_r - m_p) < 4 * np.hypot(e_r, e_p)
    np.testing.assert_array_less(np.abs(g_r - g_p), 4 * np.hypot(ge_r, ge_p) + 1e-7)
    assert abs(m_r - m_w) > 8 * np.hypot(e_r, e_w)
    # Draw by draw, one input: the perturbed bias is the image of the input noise.
    k = jax.random.key(5)
    dx = sigma * jax.random.normal(k, (1,), jnp.float32)
    lin = net.layers[0]
    np.testing.assert_allclose(
        implied.perturb(net, k).layers[0](x[:1]), lin(x[:1] + dx), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_replicas_lower_validation_loss_of_the_overparameterised_network():
    """Small budget, fixed seeds. Plain training on the talk's data, the 20 points with the
    noise dx placed on each x (``DataReplicas(1)``: one fixed noisy copy), lets 1-9-9-1
    fit the noise; inflating the same data with n_s = 100 noisy copies gives a lower
    validation loss, on average and seed by seed on most seeds."""
    problem = ToyProblem()
    settings = StudySettings(steps=20_000, n_seeds=8, n_checkpoints=4, learning_rate=1e-2)
    archs = [Dense1D((9, 9), "leaky_relu"), Dense1D((9, 9), "sigmoid")]
    modes = [
        Mode("plain, noisy points", DataReplicas(1, materialised=True)),
        Mode("replicas", DataReplicas(100, materialised=True)),
    ]
    plain, rep = (
        np.concatenate(
            [r.validation_loss[:, -1] for r in train_mode(problem, archs, m, settings, key)]
        )
        for m in modes
        for key in [jax.random.key(0)]
    )
    assert np.mean(rep) < 0.8 * np.mean(plain)
    assert np.mean(rep < plain) >= 0.7


def test_study_is_reproducible_and_paired():
    problem = ToyProblem()
    settings = StudySettings(steps=200, n_seeds=2, n_checkpoints=2)
    archs = [Dense1D((2, 2), "relu"), Dense1D((4, 4), "sigmoid")]
    mode = talk_modes(problem)[3]  # replicas n_s=100
    a = train_mode(problem, archs, mode, settings, jax.random.key(7))
    b = train_mode(problem, archs, mode, settings, jax.random.key(7))
    c = train_mode(problem, archs, talk_modes(problem)[0], settings, jax.random.key(7))
    for ra, rb, rc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(ra.validation_loss, rb.validation_loss)
        np.testing.assert_array_equal(ra.train_x, rc.train_x)  # same points in every mode
        np.testing.assert_array_equal(ra.validation_loss[:, 0], rc.validation_loss[:, 0])
        assert ra.validation_loss[:, -1].tolist() != rc.validation_loss[:, -1].tolist()
    np.testing.assert_array_equal(a[0].train_x, a[1].train_x)  # same points across networks
    assert a[0].steps.tolist() == [0, 100, 200]
