"""PPO's minibatch updates compiled with numba, for small minibatches on the CPU.

With SB3's default minibatch of 64, one update of a 64-64 actor-critic costs ~1.4 ms in eager PyTorch here, of
which the arithmetic is a small part: the rest is per-op dispatch and autograd bookkeeping, paid 1,280 times per
8,192 timesteps. This kernel runs a whole epoch of minibatches in one call: forward pass, the clipped PPO loss
with SB3's exact definitions, its gradient written out by hand, global-norm clipping and Adam, on flat float32
vectors the caller copies out of and back into the torch modules and the optimizer's state.

Layout: `theta` (parameters), `m`, `v` (Adam moments) are flat; `layers[l] = (weight offset, bias offset, outputs,
inputs)` describes each linear layer, the actor's first (its last layer gives the logits), then the critic's (its
last layer gives the value). Every hidden layer is followed by the activation (tanh, or ReLU if `relu`).
"""

import math

import numpy as np

from mission_gym.sim.jit import jit_alloc, jit_inline

# Indices into the statistics an epoch fills (sums over its minibatches, their count, the last loss, early stop).
STAT_POLICY_LOSS, STAT_VALUE_LOSS, STAT_ENTROPY_LOSS, STAT_CLIP_FRACTION, STAT_APPROX_KL = range(5)
STAT_MINIBATCHES, STAT_LAST_LOSS, STAT_STOPPED = 5, 6, 7
N_STATS = 8


# tanh as Eigen computes it in float32: a 13/6 rational function on [-7.9, 7.9] (beyond, tanh is 1 in float32),
# max error 3e-7 against float64 tanh. libm's scalar tanhf took 9 ns here and half of the forward pass.
_TANH_CLAMP = 7.90531110763549805
_TANH_NUMERATOR = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
                   1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
_TANH_DENOMINATOR = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)


@jit_inline
def _tanh(x):
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = _TANH_NUMERATOR[0]
    for c in _TANH_NUMERATOR[1:]:
        p = p * x2 + c
    q = _TANH_DENOMINATOR[0]
    for c in _TANH_DENOMINATOR[1:]:
        q = q * x2 + c
    return x * p / q


@jit_alloc
def _weights(theta, layers, layer):
    offset, n_out, n_in = layers[layer, 0], layers[layer, 2], layers[layer, 3]
    return theta[offset:offset + n_out * n_in].reshape((n_out, n_in))


@jit_alloc
def _bias(theta, layers, layer):
    offset = layers[layer, 1]
    return theta[offset:offset + layers[layer, 2]]


@jit_alloc
def _forward(theta, layers, first, last, x, acts, relu) -> None:
    """acts[l] = output of layer l for layers first..last (the last without activation); x is their input."""
    inputs = x
    for layer in range(first, last + 1):
        w, b, out = _weights(theta, layers, layer), _bias(theta, layers, layer), acts[layer]
        for i in range(inputs.shape[0]):
            for j in range(w.shape[0]):
                s = b[j]
                for k in range(w.shape[1]):
                    s += inputs[i, k] * w[j, k]
                out[i, j] = s
        if layer < last:
            _activate(out, relu)
        inputs = out


@jit_alloc
def _activate(out, relu) -> None:
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = max(out[i, j], 0.0) if relu else _tanh(out[i, j])


@jit_alloc
def _backward(theta, grad, layers, first, last, x, acts, deltas, relu) -> None:
    """Accumulate parameter gradients of layers first..last into `grad`, given deltas[last] = dLoss/d(output).

    deltas[l] is overwritten with the gradient w.r.t. layer l's pre-activation on the way down."""
    for layer in range(last, first - 1, -1):
        w = _weights(theta, layers, layer)
        gw, gb = _weights(grad, layers, layer), _bias(grad, layers, layer)
        inputs = acts[layer - 1] if layer > first else x
        d = deltas[layer]
        if layer < last:
            out = acts[layer]
            for i in range(d.shape[0]):
                for j in range(d.shape[1]):
                    d[i, j] *= (1.0 if out[i, j] > 0.0 else 0.0) if relu else 1.0 - out[i, j] * out[i, j]
        for i in range(d.shape[0]):
            for j in range(d.shape[1]):
                gb[j] += d[i, j]
                dij = d[i, j]
                for k in range(w.shape[1]):
                    gw[j, k] += dij * inputs[i, k]
        if layer > first:
            below = deltas[layer - 1]
            below[:] = 0.0
            for i in range(d.shape[0]):
                for j in range(d.shape[1]):
                    dij = d[i, j]
                    for k in range(w.shape[1]):
                        below[i, k] += dij * w[j, k]


@jit_alloc
def _policy_loss(logits, d_logits, actions, dims, starts, advantages, old_log_prob, clip_range, ent_coef):
    """Log-softmax per action dimension, the clipped surrogate and entropy terms (SB3's definitions), and
    dLoss/dlogits into `d_logits`. Returns the minibatch's policy loss, entropy loss, KL and clip fraction."""
    rows = logits.shape[0]
    log_prob = np.zeros(rows)
    dim_entropy = np.zeros((rows, dims.shape[0]))  # the entropy gradient needs each dimension's own
    for i in range(rows):
        for d in range(dims.shape[0]):
            start, end = starts[d], starts[d] + dims[d]
            top = logits[i, start]
            for k in range(start + 1, end):
                top = max(top, logits[i, k])
            total = 0.0
            for k in range(start, end):
                total += math.exp(logits[i, k] - top)
            log_norm = top + math.log(total)
            for k in range(start, end):
                lp = logits[i, k] - log_norm
                d_logits[i, k] = lp  # kept for the gradient below
                dim_entropy[i, d] -= math.exp(lp) * lp
            log_prob[i] += logits[i, start + actions[i, d]] - log_norm
    adv = advantages.astype(np.float64)
    if rows > 1:  # SB3: normalizing a single advantage makes no sense
        mean = adv.mean()
        std = math.sqrt(((adv - mean) ** 2).sum() / (rows - 1))
        adv = (adv - mean) / (std + 1e-8)
    policy_loss = entropy_loss = kl = clipped = 0.0
    for i in range(rows):
        log_ratio = log_prob[i] - old_log_prob[i]
        ratio = math.exp(log_ratio)
        surrogate = adv[i] * ratio
        clamped = adv[i] * min(max(ratio, 1.0 - clip_range), 1.0 + clip_range)
        policy_loss -= min(surrogate, clamped) / rows
        entropy_loss -= dim_entropy[i].sum() / rows
        kl += ((ratio - 1.0) - log_ratio) / rows
        clipped += (1.0 if abs(ratio - 1.0) > clip_range else 0.0) / rows
        # The min passes the gradient to the unclipped term unless the clipped one is strictly smaller, and
        # that one is constant in the parameters.
        g_log_prob = -adv[i] * ratio / rows if surrogate <= clamped else 0.0
        g_entropy = -ent_coef / rows
        for d in range(dims.shape[0]):
            start, end = starts[d], starts[d] + dims[d]
            for k in range(start, end):
                lp = d_logits[i, k]
                p = math.exp(lp)
                d_logits[i, k] = -g_log_prob * p - g_entropy * p * (lp + dim_entropy[i, d])
            d_logits[i, start + actions[i, d]] += g_log_prob
    return policy_loss, entropy_loss, kl, clipped


@jit_alloc
def _value_loss(values, d_values, returns, vf_coef) -> float:
    """Mean squared error to the returns and its gradient (times vf_coef) into `d_values`."""
    rows = values.shape[0]
    loss = 0.0
    for i in range(rows):
        error = values[i, 0] - returns[i]
        loss += error * error / rows
        d_values[i, 0] = vf_coef * 2.0 * error / rows
    return loss


@jit_alloc
def _clip_and_adam(theta, grad, m, v, step, lr, beta1, beta2, eps, max_grad_norm) -> None:
    """torch's clip_grad_norm_ over all parameters, then one Adam step (torch's formula) at `step` (1-based)."""
    norm = math.sqrt((grad.astype(np.float64) ** 2).sum())
    scale = min(max_grad_norm / (norm + 1e-6), 1.0)
    step_size = lr / (1.0 - beta1 ** step)
    correction2 = math.sqrt(1.0 - beta2 ** step)
    for i in range(theta.shape[0]):
        g = grad[i] * scale
        m[i] = m[i] + (1.0 - beta1) * (g - m[i])
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        theta[i] -= step_size * m[i] / (math.sqrt(v[i]) / correction2 + eps)


@jit_alloc
def ppo_epoch(theta, m, v, step, layers, n_actor, relu, dims, observations, actions, old_log_prob, advantages,
              returns, order, batch_size, clip_range, ent_coef, vf_coef, max_grad_norm, target_kl, lr, beta1,
              beta2, eps, stats) -> float:
    """One pass over the rollout in minibatches taken in `order`, as SB3's PPO.train does it; fills `stats`
    (indexed by the STAT_ constants) and returns the Adam step count after the epoch.

    Stops before the step of a minibatch whose approximate KL exceeds 1.5 target_kl (target_kl <= 0: never).
    It returns a plain float: boxing a returned array runs Python code inside the call, where a Ctrl-C would
    surface as a SystemError instead of a KeyboardInterrupt."""
    n_layers = layers.shape[0]
    grad = np.zeros_like(theta)
    starts = np.zeros_like(dims)
    for d in range(1, dims.shape[0]):
        starts[d] = starts[d - 1] + dims[d - 1]
    acts = [np.zeros((batch_size, layers[layer, 2]), dtype=np.float32) for layer in range(n_layers)]
    deltas = [np.zeros((batch_size, layers[layer, 2]), dtype=np.float32) for layer in range(n_layers)]
    x = np.zeros((batch_size, observations.shape[1]), dtype=np.float32)
    stats[:] = 0.0
    for begin in range(0, order.shape[0], batch_size):
        index = order[begin:begin + batch_size]
        rows = index.shape[0]
        xb = x[:rows]
        for i in range(rows):
            xb[i] = observations[index[i]]
        batch_acts = [a[:rows] for a in acts]
        batch_deltas = [d[:rows] for d in deltas]
        _forward(theta, layers, 0, n_actor - 1, xb, batch_acts, relu)
        _forward(theta, layers, n_actor, n_layers - 1, xb, batch_acts, relu)
        policy_loss, entropy_loss, kl, clipped = _policy_loss(
            batch_acts[n_actor - 1], batch_deltas[n_actor - 1], actions[index], dims, starts, advantages[index],
            old_log_prob[index], clip_range, ent_coef)
        value_loss = _value_loss(batch_acts[n_layers - 1], batch_deltas[n_layers - 1], returns[index], vf_coef)
        stats[STAT_POLICY_LOSS] += policy_loss
        stats[STAT_VALUE_LOSS] += value_loss
        stats[STAT_ENTROPY_LOSS] += entropy_loss
        stats[STAT_CLIP_FRACTION] += clipped
        stats[STAT_APPROX_KL] += kl
        stats[STAT_MINIBATCHES] += 1
        stats[STAT_LAST_LOSS] = policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
        if target_kl > 0.0 and kl > 1.5 * target_kl:
            stats[STAT_STOPPED] = 1.0
            break
        grad[:] = 0.0
        _backward(theta, grad, layers, 0, n_actor - 1, xb, batch_acts, batch_deltas, relu)
        _backward(theta, grad, layers, n_actor, n_layers - 1, xb, batch_acts, batch_deltas, relu)
        step += 1
        _clip_and_adam(theta, grad, m, v, step, lr, beta1, beta2, eps, max_grad_norm)
    return step
