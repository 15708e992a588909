"""An independent NumPy implementation of one encoder block, for tests."""

import numpy as np
from scipy.special import erf


def gelu(x, approximate=False):
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def normalize(scores, key_mask, name):
    """scores [b, h, q, k]; key_mask [b, k] boolean."""
    m = key_mask[:, None, None, :].astype(np.float64)
    n = np.maximum(m.sum(-1, keepdims=True), 1.0)
    if name == "softmax":
        s = np.where(m > 0, scores, -np.inf)
        s = s - s.max(-1, keepdims=True)
        e = np.exp(s) * m
        return e / e.sum(-1, keepdims=True)
    if name == "relu":
        return np.maximum(scores, 0) * m / n
    if name == "relu_sum":
        r = np.maximum(scores, 0) * m
        return r / (r.sum(-1, keepdims=True) + 1e-6)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-(scores - np.log(n)))) * m
    raise ValueError(name)


def block(x, mask, state, prefix, num_heads, normalizer, use_ffn,
          attention_norm, ffn_norm, eps=1e-12, approximate=False,
          head_dim=None):
    """One post-LN block from a ``trimzoo.checkpoints.get_state`` dict;
    ``head_dim`` defaults to ``hidden // num_heads``."""
    w = {k[len(prefix) + 1:]: v.astype(np.float64)
         for k, v in state.items() if k.startswith(prefix + ".")}
    b, length, hidden = x.shape
    d = hidden // num_heads if head_dim is None else head_dim

    def heads(t):
        return t.reshape(b, length, num_heads, d).transpose(0, 2, 1, 3)

    q = heads(x @ w["attention.query.kernel"] + w["attention.query.bias"])
    k = heads(x @ w["attention.key.kernel"] + w["attention.key.bias"])
    v = heads(x @ w["attention.value.kernel"] + w["attention.value.bias"])
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    probs = normalize(scores, mask.astype(bool), normalizer)
    ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, length, num_heads * d)
    x = x + ctx @ w["attention.output.kernel"] + w["attention.output.bias"]
    if attention_norm:
        x = layer_norm(x, w["attention_norm.gamma"], w["attention_norm.beta"],
                       eps)
    if use_ffn:
        h = gelu(x @ w["ffn.intermediate.kernel"] + w["ffn.intermediate.bias"],
                 approximate)
        x = x + h @ w["ffn.output.kernel"] + w["ffn.output.bias"]
        if ffn_norm:
            x = layer_norm(x, w["ffn_norm.gamma"], w["ffn_norm.beta"], eps)
    return x
