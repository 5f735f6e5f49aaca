#!/usr/bin/env python3
"""ONNX Runtime baseline for the encoder benchmark, without torch.

    ort_minilm.py ENCODER_DIR [--warden-table FILE]

Builds an ONNX graph (opset 17) of the BERT encoder directly from ENCODER_DIR's
model.safetensors and config.json with onnx.helper: embeddings (word + position +
token_type 0, LayerNorm), per layer Q/K/V MatMul+Add, heads, scaled dot-product with the
additive attention mask, Softmax, output dense, residual + LayerNorm, FFN with exact GELU
(Erf), residual + LayerNorm. Inputs input_ids and attention_mask (int64, [batch, seq]);
output the last hidden state [batch, seq, hidden].

It first checks the graph under onnxruntime against a float64 numpy forward of the same
model on a few random token sequences (with padding), and stops if the max abs difference
is 1e-4 or more. Then it times onnxruntime at the shapes of
crates/warden-encoder/benches/encoder.rs (same token ids, all-ones mask), WARDEN_BENCH_SECS
seconds each (default 3) after one warm-up run, with THREADS intra-op threads (default 2),
1 inter-op thread and ORT_ENABLE_ALL, and prints texts/s and GFLOP/s with the Rust bench's
FLOP formula (BertConfig::forward_flops). With --warden-table FILE (the Rust bench's
output) it adds Warden's texts/s and the Warden/ORT ratio.

Run it in a venv with onnx, onnxruntime, numpy and safetensors (bench/encoder.sh does,
with ORT=1).
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

SHAPES = [(32, 32), (128, 32), (256, 16)]  # (tokens, batch), as in benches/encoder.rs


def load(enc_dir):
    cfg = json.load(open(os.path.join(enc_dir, "config.json")))
    w = load_file(os.path.join(enc_dir, "model.safetensors"))
    # Some checkpoints prefix every name with "bert."
    w = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in w.items()}
    return cfg, w


def forward_flops(cfg, length):
    """Copy of BertConfig::forward_flops (crates/warden-encoder/src/config.rs)."""
    d = float(cfg["hidden_size"])
    i = float(cfg["intermediate_size"])
    l = float(length)
    per_layer = 2.0 * l * (4.0 * d * d + 2.0 * d * i) + 2.0 * 2.0 * l * l * d
    return per_layer * cfg["num_hidden_layers"]


def build_graph(cfg, w):
    d = cfg["hidden_size"]
    h = cfg["num_attention_heads"]
    dh = d // h
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    inits, nodes = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def init(n, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(op, inputs, **attrs):
        out = name(op)
        nodes.append(helper.make_node(op, inputs, [out], name=out + "_node", **attrs))
        return out

    def linear(x, prefix):
        # torch Linear: y = x W^T + b; store W^T so the graph is MatMul + Add.
        wt = init(prefix + ".weight_t", w[prefix + ".weight"].T.astype(np.float32))
        b = init(prefix + ".bias", w[prefix + ".bias"].astype(np.float32))
        return node("Add", [node("MatMul", [x, wt]), b])

    def layer_norm(x, prefix):
        g = init(prefix + ".weight", w[prefix + ".weight"].astype(np.float32))
        b = init(prefix + ".bias", w[prefix + ".bias"].astype(np.float32))
        return node("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)

    # Embeddings: word[ids] + position[0..S) + token_type[0], then LayerNorm.
    word = init("word_embeddings", w["embeddings.word_embeddings.weight"])
    pos = init("position_embeddings", w["embeddings.position_embeddings.weight"])
    tt0 = init("token_type_0", w["embeddings.token_type_embeddings.weight"][0])
    zero1 = init("i64_zero1", np.array([0], dtype=np.int64))
    seq = node("Shape", ["input_ids"], start=1, end=2)  # [S], 1-D
    positions = node("Slice", [pos, zero1, seq, zero1])  # position rows 0..S
    x = node("Add", [node("Gather", [word, "input_ids"], axis=0), positions])
    x = node("Add", [x, tt0])
    x = layer_norm(x, "embeddings.LayerNorm")

    # Additive mask [B,1,1,S]: 0 where attended, -10000 where padded (as HF BERT).
    axes12 = init("axes_1_2", np.array([1, 2], dtype=np.int64))
    m = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    m = node("Unsqueeze", [m, axes12])
    one = init("f_1", np.array(1.0, dtype=np.float32))
    neg = init("f_neg", np.array(-10000.0, dtype=np.float32))
    mask_add = node("Mul", [node("Sub", [one, m]), neg])

    heads_shape = init("heads_shape", np.array([0, 0, h, dh], dtype=np.int64))
    merge_shape = init("merge_shape", np.array([0, 0, d], dtype=np.int64))
    scale = init("sqrt_dh", np.array(math.sqrt(dh), dtype=np.float32))
    sqrt2 = init("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = init("f_half", np.array(0.5, dtype=np.float32))

    for li in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{li}."
        q = linear(x, p + "attention.self.query")
        k = linear(x, p + "attention.self.key")
        v = linear(x, p + "attention.self.value")
        q = node("Transpose", [node("Reshape", [q, heads_shape])], perm=[0, 2, 1, 3])  # B,H,S,dh
        k = node("Transpose", [node("Reshape", [k, heads_shape])], perm=[0, 2, 3, 1])  # B,H,dh,S
        v = node("Transpose", [node("Reshape", [v, heads_shape])], perm=[0, 2, 1, 3])  # B,H,S,dh
        s = node("Div", [node("MatMul", [q, k]), scale])
        s = node("Add", [s, mask_add])
        a = node("Softmax", [s], axis=-1)
        c = node("MatMul", [a, v])
        c = node("Reshape", [node("Transpose", [c], perm=[0, 2, 1, 3]), merge_shape])
        o = linear(c, p + "attention.output.dense")
        x = layer_norm(node("Add", [o, x]), p + "attention.output.LayerNorm")
        f = linear(x, p + "intermediate.dense")
        # exact GELU: 0.5 * f * (1 + erf(f / sqrt(2)))
        g = node("Mul", [node("Mul", [f, node("Add", [node("Erf", [node("Div", [f, sqrt2])]), one])]), half])
        o = linear(g, p + "output.dense")
        x = layer_norm(node("Add", [o, x]), p + "output.LayerNorm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output_identity"))
    graph = helper.make_graph(
        nodes,
        "bert_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", d])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="warden-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def numpy_forward(cfg, w, ids, mask):
    """Reference forward in float64."""
    d = cfg["hidden_size"]
    h = cfg["num_attention_heads"]
    dh = d // h
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    W = lambda n: w[n].astype(np.float64)
    erf = np.vectorize(math.erf)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W(p + ".weight") + W(p + ".bias")

    def lin(x, p):
        return x @ W(p + ".weight").T + W(p + ".bias")

    b, s = ids.shape
    x = W("embeddings.word_embeddings.weight")[ids] + W("embeddings.position_embeddings.weight")[:s]
    x = ln(x + W("embeddings.token_type_embeddings.weight")[0], "embeddings.LayerNorm")
    add = (1.0 - mask.astype(np.float64))[:, None, None, :] * -10000.0
    for li in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{li}."
        heads = lambda t: t.reshape(b, s, h, dh).transpose(0, 2, 1, 3)
        q = heads(lin(x, p + "attention.self.query"))
        k = heads(lin(x, p + "attention.self.key"))
        v = heads(lin(x, p + "attention.self.value"))
        sc = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + add
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        sc /= sc.sum(-1, keepdims=True)
        c = (sc @ v).transpose(0, 2, 1, 3).reshape(b, s, d)
        x = ln(lin(c, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        f = lin(x, p + "intermediate.dense")
        f = 0.5 * f * (1.0 + erf(f / math.sqrt(2.0)))
        x = ln(lin(f, p + "output.dense") + x, p + "output.LayerNorm")
    return x


def session(model_bytes, threads, optimized_path=None):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only (not the NCHWc-serialisation warning)
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def time_it(f, min_secs):
    """Same loop as time_it in benches/encoder.rs."""
    f()  # warm-up
    t = time.perf_counter()
    n = 0
    while n < 2 or time.perf_counter() - t < min_secs:
        f()
        n += 1
    return (time.perf_counter() - t) / n


def read_warden(path):
    """{(tokens, batch): texts/s} from the Rust bench's markdown table."""
    rows = {}
    if not path or not os.path.exists(path):
        return rows
    for line in open(path):
        m = re.match(r"\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|", line)
        if m:
            rows[(int(m.group(1)), int(m.group(2)))] = float(m.group(3))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("encoder_dir")
    ap.add_argument("--warden-table")
    args = ap.parse_args()
    threads = int(os.environ.get("THREADS", "2"))
    min_secs = float(os.environ.get("WARDEN_BENCH_SECS", "3"))
    cfg, w = load(args.encoder_dir)
    model_bytes = build_graph(cfg, w).SerializeToString()

    # Numerical check against the float64 numpy forward, padded sequences included.
    check = session(model_bytes, threads)
    rng = np.random.default_rng(0)
    worst = 0.0
    for b, s in [(1, 7), (2, 16), (3, 40)]:
        ids = rng.integers(1000, cfg["vocab_size"], size=(b, s), dtype=np.int64)
        mask = np.ones((b, s), dtype=np.int64)
        if b > 1:
            mask[1, s // 2:] = 0  # one padded row
        got = check.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        want = numpy_forward(cfg, w, ids, mask)
        keep = mask.astype(bool)  # padded positions are not compared
        worst = max(worst, float(np.abs(got[keep] - want[keep]).max()))
    print(f"onnx graph vs numpy float64 forward: max abs diff {worst:.2e} over 3 random batches")
    if not worst < 1e-4:
        sys.exit("numerical check failed (max abs diff >= 1e-4)")

    opt_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ort_minilm_opt_{os.getpid()}.onnx")
    sess = session(model_bytes, threads, opt_path)
    try:
        ops = {}
        for n in onnx.load(opt_path).graph.node:
            key = n.op_type if not n.domain or n.domain == "ai.onnx" else f"{n.domain}.{n.op_type}"
            ops[key] = ops.get(key, 0) + 1
        os.remove(opt_path)
        print("ORT optimized graph ops: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    except Exception as e:  # the report is informative only
        print(f"ORT optimized graph ops: unavailable ({e})")

    warden = read_warden(args.warden_table)
    print(f"onnxruntime {ort.__version__} (CPUExecutionProvider, ORT_ENABLE_ALL), "
          f"intra-op threads {threads}, inter-op 1")
    head = "| tokens | batch | ORT texts/s | ORT GFLOP/s |"
    rule = "|---:|---:|---:|---:|"
    if warden:
        head += " Warden texts/s | Warden/ORT |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for length, batch in SHAPES:
        i = np.arange(batch * length, dtype=np.int64)
        ids = (1000 + (i * 7919) % 20000).reshape(batch, length)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        dt = time_it(lambda: sess.run(None, feed), min_secs)
        flops = forward_flops(cfg, length) * batch
        row = f"| {length} | {batch} | {batch / dt:.1f} | {flops / dt / 1e9:.1f} |"
        if warden:
            wt = warden.get((length, batch))
            row += f" {wt:.1f} | {wt / (batch / dt):.2f}x |" if wt else " - | - |"
        print(row)


if __name__ == "__main__":
    main()
