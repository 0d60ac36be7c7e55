"""Import a local Hugging Face OPT checkpoint (config.json + safetensors or pytorch_model.bin) into our Flax params.

Never downloads: the directory must already hold the files (e.g. a saved facebook/opt-125m). Zhang et al. 2022 (OPT).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from collapse_jax.models.lm.transformer import Params, TransformerConfig

# OPT's learned position table has 2 extra leading rows (a fairseq padding offset): position p reads row p + 2.
OPT_POSITION_OFFSET = 2


def opt_network_config(hf_config: dict, dtype: str = "float32") -> TransformerConfig:
    """Our TransformerConfig from an OPT config.json; rejects the variants our decoder does not implement."""
    if not hf_config.get("do_layer_norm_before", True):
        raise ValueError(
            "config.model.hf_checkpoint: post-LayerNorm OPT (do_layer_norm_before=false, e.g. opt-350m) is unsupported"
        )
    projection = hf_config.get("word_embed_proj_dim", hf_config["hidden_size"])
    if projection != hf_config["hidden_size"]:
        raise ValueError(
            "config.model.hf_checkpoint: word_embed_proj_dim != hidden_size (project_in/out) is unsupported"
        )
    if not hf_config.get("enable_bias", True) or not hf_config.get("layer_norm_elementwise_affine", True):
        raise ValueError("config.model.hf_checkpoint: OPT without biases or LayerNorm affine parameters is unsupported")
    if hf_config.get("_remove_final_layer_norm", False):
        raise ValueError(
            "config.model.hf_checkpoint: OPT without its final LayerNorm (_remove_final_layer_norm) is unsupported"
        )
    return TransformerConfig(
        vocab_size=hf_config["vocab_size"],
        num_layers=hf_config["num_hidden_layers"],
        hidden_size=hf_config["hidden_size"],
        num_heads=hf_config["num_attention_heads"],
        mlp_size=hf_config["ffn_dim"],
        max_positions=hf_config["max_position_embeddings"],
        position_offset=OPT_POSITION_OFFSET,
        activation=hf_config.get("activation_function", "relu"),
        layer_norm_eps=1e-5,  # OPT's nn.LayerNorm default; not in config.json
        dtype=dtype,
    )


def read_state_dict(directory: Path) -> dict[str, np.ndarray]:
    """Tensors of model.safetensors (single or sharded) or pytorch_model.bin (needs torch), as float32 numpy."""
    if (directory / "model.safetensors").is_file():
        from safetensors.numpy import load_file

        tensors = load_file(str(directory / "model.safetensors"))
    elif (directory / "model.safetensors.index.json").is_file():
        from safetensors.numpy import load_file

        shards = set(json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"].values())
        tensors = {name: value for shard in sorted(shards) for name, value in load_file(str(directory / shard)).items()}
    elif (directory / "pytorch_model.bin").is_file():
        import torch

        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
        tensors = {name: value.float().numpy() for name, value in state.items()}
    else:
        raise ValueError(
            f"config.model.hf_checkpoint: {directory} has no model.safetensors(.index.json) or pytorch_model.bin"
        )
    # OPTForCausalLM saves "model.decoder.*"; OPTModel (and the original opt-125m upload) saves "decoder.*".
    return {name.removeprefix("model."): np.asarray(value, np.float32) for name, value in tensors.items()}


def convert_opt_state_dict(state: dict[str, np.ndarray], config: TransformerConfig) -> Params:
    """Map OPT tensor names to our param tree; torch Linear weights are [out, in], Flax Dense kernels [in, out]."""

    def take(name: str) -> np.ndarray:
        if name not in state:
            raise ValueError(f"config.model.hf_checkpoint: tensor {name!r} is missing from the checkpoint")
        return state[name]

    def dense(prefix: str) -> dict:
        return {"kernel": take(f"{prefix}.weight").T, "bias": take(f"{prefix}.bias")}

    def norm(prefix: str) -> dict:
        return {"scale": take(f"{prefix}.weight"), "bias": take(f"{prefix}.bias")}

    params = {
        # lm_head is tied to the token embedding and usually not saved; our logits use the embedding directly.
        "token_embedding": {"embedding": take("decoder.embed_tokens.weight")},
        "position_embedding": {"embedding": take("decoder.embed_positions.weight")},
        "final_norm": norm("decoder.final_layer_norm"),
    }
    for index in range(config.num_layers):
        layer = f"decoder.layers.{index}"
        params[f"layer_{index}"] = {
            "attention": {
                "query": dense(f"{layer}.self_attn.q_proj"),
                "key": dense(f"{layer}.self_attn.k_proj"),
                "value": dense(f"{layer}.self_attn.v_proj"),
                "out": dense(f"{layer}.self_attn.out_proj"),
            },
            "attention_norm": norm(f"{layer}.self_attn_layer_norm"),
            "mlp_in": dense(f"{layer}.fc1"),
            "mlp_out": dense(f"{layer}.fc2"),
            "mlp_norm": norm(f"{layer}.final_layer_norm"),
        }
    if "lm_head.weight" in state and not np.array_equal(
        state["lm_head.weight"], params["token_embedding"]["embedding"]
    ):
        raise ValueError(
            "config.model.hf_checkpoint: lm_head differs from embed_tokens; untied OPT heads are unsupported"
        )
    return params


def load_opt_checkpoint(directory: str | Path, dtype: str = "float32") -> tuple[TransformerConfig, Params]:
    """(network config, params) of a local OPT checkpoint directory."""
    directory = Path(directory).expanduser()
    if not (directory / "config.json").is_file():
        raise ValueError(
            f"config.model.hf_checkpoint: {directory} has no config.json (a local Hugging Face OPT directory)"
        )
    hf_config = json.loads((directory / "config.json").read_text())
    if hf_config.get("model_type") != "opt":
        raise ValueError(
            f"config.model.hf_checkpoint: model_type {hf_config.get('model_type')!r}; only 'opt' is supported"
        )
    config = opt_network_config(hf_config, dtype)
    return config, convert_opt_state_dict(read_state_dict(directory), config)
