"""DeepSpec Eagle3 -> each engine's Eagle3 layout, on a tiny checkpoint made here, held to the loader
facts recorded from vLLM 0.33.0 and SGLang 0.5.23 (tests/fixtures/upstream_facts.json)."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from specops_runtime.adapters import serving
from specops_runtime.adapters.deepspec import eagle3
from specops_runtime.agent.errors import InvalidTask, Unsupported

H, V, I = 8, 32, 16  # noqa: E741
IDS = [1, 9, 17, 25, 33]  # DeepSpec's default target layers (the outputs of those layers)
FACTS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "upstream_facts.json").read_text())


def _checkpoint(path, qk_norm=1.0, extra=None, arch="Qwen3Eagle3Model", fc_layers=5, layers=1):
    path.mkdir()
    cfg = {
        "architectures": [arch], "model_type": "qwen3", "hidden_size": H, "intermediate_size": I,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "vocab_size": V, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000, "max_position_embeddings": 4096, "target_layer_ids": IDS, "num_hidden_layers": layers,
        "ttt_length": 7, "draft_num_hidden_layers": layers,
    }  # fmt: skip
    (path / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng(0)
    t = {
        "embed_tokens.weight": rng.standard_normal((V, H), dtype=np.float32),
        "fc.weight": rng.standard_normal((H, fc_layers * H), dtype=np.float32),
        "norm.weight": np.ones(H, np.float32),
        "lm_head.weight": rng.standard_normal((V, H), dtype=np.float32),
    }
    for n in range(layers):
        t |= {
            f"layers.{n}.self_attn.q_proj.weight": rng.standard_normal((8, 2 * H), dtype=np.float32),
            f"layers.{n}.self_attn.q_norm.weight": np.full(4, qk_norm, np.float32),
            f"layers.{n}.self_attn.k_norm.weight": np.ones(4, np.float32),
            f"layers.{n}.mlp.down_proj.weight": rng.standard_normal((H, I), dtype=np.float32),
            f"layers.{n}.hidden_norm.weight": np.ones(H, np.float32),
        }
    t.update(extra or {})
    save_file(t, str(path / "model.safetensors"))
    return t


def test_layer_id_offsets_are_the_engines_recorded_conventions():
    # id the engine needs = DeepSpec's (HF output of layer i) + the engine's recorded offset
    assert eagle3.AUX_LAYER_ID_OFFSET["vllm"] == FACTS["vllm"]["eagle3"]["auxLayerIdOfOutputOfLayer"] == 1
    assert eagle3.AUX_LAYER_ID_OFFSET["sglang"] == FACTS["sglang"]["eagle3"]["auxLayerIdOfOutputOfLayer"] == 0


def test_vllm_layout_keeps_qk_norm_and_shifts_layer_ids(tmp_path):
    src = _checkpoint(tmp_path / "src", qk_norm=1.3)  # trained norms are kept, not refused
    info = eagle3.convert(tmp_path / "src", tmp_path / "dst", "vllm")
    cfg = json.loads((tmp_path / "dst" / "config.json").read_text())
    arch = cfg["architectures"][0]
    # vLLM's registry maps it to its Qwen3 Eagle3 loader, whose layers are Qwen3DecoderLayer (q/k norm)
    assert FACTS["vllm"]["eagle3"]["architectures"][arch][0] == "qwen3_eagle3"
    assert FACTS["vllm"]["eagle3"]["qwen3DecoderLayerBase"] == ["Qwen3DecoderLayer"]
    assert cfg["model_type"] == "qwen3" and cfg["num_hidden_layers"] == 1 and cfg["draft_vocab_size"] == V
    assert cfg["eagle_config"]["eagle_aux_hidden_state_layer_ids"] == [i + 1 for i in IDS]
    assert "target_layer_ids" not in cfg  # only the engine's ids, no second convention in the file
    out = load_file(str(tmp_path / "dst" / "model.safetensors"))
    assert set(out) == {k for k in src if k != "embed_tokens.weight"}
    np.testing.assert_array_equal(
        out["layers.0.self_attn.q_norm.weight"], src["layers.0.self_attn.q_norm.weight"]
    )
    # fc stays len(ids) x hidden wide, which vLLM derives from the ids it is given
    assert FACTS["vllm"]["eagle3"]["fcAuxFromLayerIds"] and out["fc.weight"].shape == (H, len(IDS) * H)
    assert info["dropped"] == ["embed_tokens.weight"]


def test_vllm_layout_keeps_every_layer(tmp_path):
    _checkpoint(tmp_path / "src", layers=2)
    eagle3.convert(tmp_path / "src", tmp_path / "dst", "vllm")
    out = load_file(str(tmp_path / "dst" / "model.safetensors"))
    assert "layers.1.mlp.down_proj.weight" in out
    assert json.loads((tmp_path / "dst" / "config.json").read_text())["num_hidden_layers"] == 2


def test_sglang_layout_with_identity_norms(tmp_path):
    src = _checkpoint(tmp_path / "src")
    info = eagle3.convert(tmp_path / "src", tmp_path / "dst", "sglang")
    cfg = json.loads((tmp_path / "dst" / "config.json").read_text())
    loader = FACTS["sglang"]["eagle3"]["loaders"][cfg["architectures"][0]]
    assert loader["module"].endswith("llama_eagle3.py") and loader["fcAuxFromLayerIds"]
    assert cfg["model_type"] == "llama" and cfg["num_hidden_layers"] == 1 and cfg["head_dim"] == 4
    assert cfg["eagle_config"]["eagle_aux_hidden_state_layer_ids"] == IDS  # SGLang adds the 1 itself
    out = load_file(str(tmp_path / "dst" / "model.safetensors"))
    assert set(out) == {
        "fc.weight", "norm.weight", "lm_head.weight", "d2t", "t2d",
        "midlayer.self_attn.q_proj.weight", "midlayer.mlp.down_proj.weight", "midlayer.hidden_norm.weight",
    }  # fmt: skip
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


def test_sglang_refuses_trained_qk_norm_and_extra_layers_clearly(tmp_path):
    assert not FACTS["sglang"]["eagle3"]["loaders"]["LlamaForCausalLMEagle3"]["hasQkNorm"]
    _checkpoint(tmp_path / "a", qk_norm=1.3)
    with pytest.raises(Unsupported, match=r"q_norm.*no q_norm/k_norm; serve this draft with vLLM"):
        eagle3.convert(tmp_path / "a", tmp_path / "a-out", "sglang")
    _checkpoint(tmp_path / "b", layers=2)
    with pytest.raises(Unsupported, match="2 decoder layers"):
        eagle3.convert(tmp_path / "b", tmp_path / "b-out", "sglang")


def test_fc_width_must_match_the_layer_ids(tmp_path):
    _checkpoint(tmp_path / "src", fc_layers=3)  # 3 x hidden, as older loaders assumed
    for engine in eagle3.ENGINES:
        with pytest.raises(InvalidTask, match=r"fc\.weight is \[8, 24\] but 5 target layers"):
            eagle3.convert(tmp_path / "src", tmp_path / f"dst-{engine}", engine)


def test_gemma4_eagle3_is_refused_for_both_engines(tmp_path):
    assert not any("Gemma" in a for a in FACTS["vllm"]["eagle3"]["architectures"])
    assert not any("Gemma" in a for a in FACTS["sglang"]["eagle3"]["loaders"])
    _checkpoint(tmp_path / "src", arch="Gemma4Eagle3Model")
    for engine in eagle3.ENGINES:
        with pytest.raises(Unsupported, match="no Gemma4 Eagle3 loader"):
            eagle3.convert(tmp_path / "src", tmp_path / "dst", engine)


def test_refuses_unknown_weights(tmp_path):
    _checkpoint(tmp_path / "src", extra={"markov_head.weight": np.ones(2, np.float32)})
    with pytest.raises(InvalidTask, match="markov_head"):
        eagle3.convert(tmp_path / "src", tmp_path / "dst", "vllm")


def test_model_prefix_is_accepted():
    assert eagle3.rename("model.layers.0.mlp.up_proj.weight", "sglang") == "midlayer.mlp.up_proj.weight"
    assert eagle3.rename("model.layers.0.mlp.up_proj.weight", "vllm") == "layers.0.mlp.up_proj.weight"
    assert eagle3.rename("model.norm.weight") == "norm.weight"
    assert eagle3.rename("model.embed_tokens.weight") is None


class _Ctx:
    def __init__(self, work_dir):
        self.work_dir = work_dir
        self.reports = []

    def resolve(self, uri, field):
        return uri.removeprefix("hf://")

    def report(self, **f):
        self.reports.append(f)


def test_serving_converts_for_the_engine_it_starts(tmp_path):
    _checkpoint(tmp_path / "src", qk_norm=1.3)
    params = {"method": "eagle3", "draft": {"uri": str(tmp_path / "src")}}
    ref, fmt, extra = serving.resolve_draft(params, _Ctx(tmp_path), "vllm")
    assert fmt == "native" and ref == extra["convertedDraft"] and ref.endswith("draft-eagle3-vllm")
    with pytest.raises(Unsupported, match="serve this draft with vLLM"):
        serving.resolve_draft(params, _Ctx(tmp_path), "sglang")
    remote = {"method": "eagle3", "draftFormat": "deepspec", "draft": {"uri": "hf://org/deepspec-eagle3"}}
    with pytest.raises(Unsupported, match="must be converted"):
        serving.resolve_draft(remote, _Ctx(tmp_path), "vllm")
