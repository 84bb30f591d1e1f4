"""DeepSpec Eagle3 -> SpecForge/SGLang Eagle3 layout, on a tiny checkpoint made here."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from specops_runtime.adapters.deepspec import eagle3
from specops_runtime.agent.errors import InvalidTask

H, V, I = 8, 32, 16  # noqa: E741


def _checkpoint(path, qk_norm=1.0, extra=None):
    path.mkdir()
    cfg = {
        "architectures": ["Qwen3Eagle3Model"], "model_type": "qwen3", "hidden_size": H, "intermediate_size": I,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "vocab_size": V, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000, "max_position_embeddings": 4096, "target_layer_ids": [1, 9, 17, 25, 33],
    }  # fmt: skip
    (path / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng(0)
    t = {
        "embed_tokens.weight": rng.standard_normal((V, H), dtype=np.float32),
        "fc.weight": rng.standard_normal((H, 3 * H), dtype=np.float32),
        "norm.weight": np.ones(H, np.float32),
        "lm_head.weight": rng.standard_normal((V, H), dtype=np.float32),
        "layers.0.self_attn.q_proj.weight": rng.standard_normal((8, 2 * H), dtype=np.float32),
        "layers.0.self_attn.q_norm.weight": np.full(4, qk_norm, np.float32),
        "layers.0.self_attn.k_norm.weight": np.ones(4, np.float32),
        "layers.0.mlp.down_proj.weight": rng.standard_normal((H, I), dtype=np.float32),
        "layers.0.hidden_norm.weight": np.ones(H, np.float32),
    }
    t.update(extra or {})
    save_file(t, str(path / "model.safetensors"))
    return t


def test_converts_config_and_weights(tmp_path):
    src = _checkpoint(tmp_path / "src")
    info = eagle3.convert(tmp_path / "src", tmp_path / "dst")
    cfg = json.loads((tmp_path / "dst" / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLMEagle3"] and cfg["model_type"] == "llama"
    assert cfg["num_hidden_layers"] == 1 and cfg["draft_vocab_size"] == V and cfg["head_dim"] == 4
    assert cfg["eagle_config"]["eagle_aux_hidden_state_layer_ids"] == [1, 9, 17, 25, 33]
    out = load_file(str(tmp_path / "dst" / "model.safetensors"))
    assert set(out) == {
        "fc.weight", "norm.weight", "lm_head.weight", "d2t", "t2d",
        "midlayer.self_attn.q_proj.weight", "midlayer.mlp.down_proj.weight", "midlayer.hidden_norm.weight",
    }  # fmt: skip
    np.testing.assert_array_equal(out["fc.weight"], src["fc.weight"])
    np.testing.assert_array_equal(
        out["midlayer.self_attn.q_proj.weight"], src["layers.0.self_attn.q_proj.weight"]
    )
    assert (
        out["d2t"].dtype == np.int64
        and not out["d2t"].any()
        and out["t2d"].all()
        and out["t2d"].shape == (V,)
    )
    assert sorted(info["dropped"]) == [
        "embed_tokens.weight",
        "layers.0.self_attn.k_norm.weight",
        "layers.0.self_attn.q_norm.weight",
    ]


def test_refuses_non_identity_qk_norm(tmp_path):
    _checkpoint(tmp_path / "src", qk_norm=1.3)
    with pytest.raises(InvalidTask, match="q_norm"):
        eagle3.convert(tmp_path / "src", tmp_path / "dst")


def test_refuses_unknown_weights(tmp_path):
    _checkpoint(tmp_path / "src", extra={"markov_head.weight": np.ones(2, np.float32)})
    with pytest.raises(InvalidTask, match="markov_head"):
        eagle3.convert(tmp_path / "src", tmp_path / "dst")


def test_model_prefix_is_accepted():
    assert eagle3.rename("model.layers.0.mlp.up_proj.weight") == "midlayer.mlp.up_proj.weight"
    assert eagle3.rename("model.norm.weight") == "norm.weight"
    assert eagle3.rename("model.embed_tokens.weight") is None
