"""Tokenizers: the protocol the engine uses, a pure-Python byte tokenizer, a Hugging Face wrapper, and an
incremental detokenizer for streaming."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from tether.runtime.engine.chat.render import (
    lower_messages,
    native_messages,
    probe_default_system_prompt,
    probe_end_of_turn,
    template_supports_tools,
)
from tether.runtime.engine.chat.tools import Tool, normalize_tools
from tether.runtime.engine.errors import InvalidRequestError

REPLACEMENT_CHAR = "\ufffd"

BYTE_VOCAB_SIZE = 384
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<|bos|>", "<|eos|>", "<|pad|>"
IM_START_TOKEN, IM_END_TOKEN = "<|im_start|>", "<|im_end|>"
NAMED_SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, IM_START_TOKEN, IM_END_TOKEN)  # ids 256..260
SPECIAL_TOKENS = NAMED_SPECIAL_TOKENS + tuple(
    f"<|reserved_{i}|>" for i in range(BYTE_VOCAB_SIZE - 256 - len(NAMED_SPECIAL_TOKENS))
)  # ids 256..383

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> token ids.

    ``encode(text)`` follows the tokenizer's own convention for special tokens: it prepends BOS when the model
    expects one (ByteTokenizer and Llama do, Qwen2 does not), never twice: text whose encoding already starts
    with BOS (a chat template that writes it) gets no second one. Special-token strings inside ``text`` map
    to their ids. ``decode`` drops special tokens unless ``skip_special_tokens=False``; invalid UTF-8 becomes
    U+FFFD.
    ``apply_chat_template`` renders a prompt string (no tokenization) to pass to ``encode``: OpenAI-shaped
    messages (assistant ``tool_calls``, ``tool`` results) and ``tools``, through ``tether.runtime.engine.chat`` (see
    "Chat format and tool calls" in docs/engine.md); bad messages or tools raise ``InvalidRequestError``.
    ``end_of_turn_token`` is what the template writes after an assistant message (``None`` if nothing); its
    id is in ``eos_token_ids``.
    """

    eos_token_ids: tuple[int, ...]
    bos_token_id: int | None
    vocab_size: int
    end_of_turn_token: str | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any] | Tool] | None = None,
    ) -> str: ...


class ByteTokenizer:
    """Ids 0..255 are the UTF-8 bytes; 256.. are ``SPECIAL_TOKENS`` (``<|bos|>``=256, ``<|eos|>``=257,
    ``<|pad|>``=258, ``<|im_start|>``=259, ``<|im_end|>``=260, reserved up to 383). Encode prepends BOS;
    the chat template is ChatML (tools rendered Hermes-style). ``eos_token_ids`` holds ``<|eos|>`` and
    ``<|im_end|>``, the end of turn."""

    vocab_size = BYTE_VOCAB_SIZE
    end_of_turn_token: str | None = IM_END_TOKEN

    def __init__(self) -> None:
        self.special_ids = {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}
        self.bos_token_id: int | None = self.special_ids[BOS_TOKEN]
        self.eos_token_ids: tuple[int, ...] = (self.special_ids[EOS_TOKEN], self.special_ids[IM_END_TOKEN])
        self.end_of_turn_token_id: int | None = self.special_ids[IM_END_TOKEN]
        self.pad_token_id = self.special_ids[PAD_TOKEN]
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for i, piece in enumerate(self._special_re.split(text)):
            if i % 2 == 1:
                ids.append(self.special_ids[piece])
            else:
                ids.extend(piece.encode("utf-8"))
        if not ids or ids[0] != self.bos_token_id:
            ids.insert(0, self.special_ids[BOS_TOKEN])
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        parts: list[str] = []
        buf = bytearray()
        for token_id in ids:
            if 0 <= token_id < 256:
                buf.append(token_id)
                continue
            if skip_special_tokens:
                continue
            parts.append(buf.decode("utf-8", errors="replace"))
            buf.clear()
            parts.append(SPECIAL_TOKENS[token_id - 256] if 256 <= token_id < BYTE_VOCAB_SIZE else "")
        parts.append(buf.decode("utf-8", errors="replace"))
        return "".join(parts)

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any] | Tool] | None = None,
    ) -> str:
        lowered = lower_messages(messages, normalize_tools(tools))
        text = "".join(f"{IM_START_TOKEN}{m['role']}\n{m['content']}{IM_END_TOKEN}\n" for m in lowered)
        return text + (f"{IM_START_TOKEN}assistant\n" if add_generation_prompt else "")


class HFTokenizer:
    """Wraps a ``transformers`` tokenizer. ``eos_token_ids`` is the tokenizer's EOS, ``extra_eos_ids`` (the
    model's config / generation config often lists more, e.g. Llama 3's ``<|eot_id|>``) and the chat template's
    end-of-turn token: the special token it writes right after an assistant message (``end_of_turn_token``,
    found by rendering a probe conversation once; ``None`` without a template or when nothing follows).

    Chat: a template that mentions ``tools`` gets them and the conversation as transformers expects it
    (``native_messages``); any other gets the Hermes-style conversation (``lower_messages``), the tools block
    joined to the template's own default system prompt (``default_system_prompt``, probed) when the
    conversation has no system message."""

    def __init__(self, hf_tokenizer: Any, *, extra_eos_ids: Sequence[int] = ()) -> None:
        self.hf = hf_tokenizer
        self.bos_token_id: int | None = hf_tokenizer.bos_token_id
        eos = [hf_tokenizer.eos_token_id] if hf_tokenizer.eos_token_id is not None else []
        template = getattr(hf_tokenizer, "chat_template", None)
        self.supports_tools = template_supports_tools(template)
        self.default_system_prompt: str | None = None
        self.end_of_turn_token: str | None = None
        self.end_of_turn_token_id: int | None = None
        if template:
            self.default_system_prompt = probe_default_system_prompt(self._render_plain)
            self.end_of_turn_token = probe_end_of_turn(self._render_plain, _special_tokens(hf_tokenizer))
        if self.end_of_turn_token is not None:
            self.end_of_turn_token_id = hf_tokenizer.convert_tokens_to_ids(self.end_of_turn_token)
            eos.append(self.end_of_turn_token_id)
        self.eos_token_ids: tuple[int, ...] = tuple(dict.fromkeys([*eos, *extra_eos_ids]))
        self.vocab_size: int = len(hf_tokenizer)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = list(self.hf.encode(text, add_special_tokens=True))
        bos = self.bos_token_id
        if bos is not None and len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
            ids.pop(0)
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any] | Tool] | None = None,
    ) -> str:
        if not getattr(self.hf, "chat_template", None):
            raise ValueError(f"tokenizer {self.hf.name_or_path!r} has no chat template")
        specs = normalize_tools(tools)
        if self.supports_tools:
            conversation = native_messages(messages)
            extra = {"tools": [t.to_openai() for t in specs]} if specs else {}
        else:
            conversation = lower_messages(messages, specs, default_system_prompt=self.default_system_prompt)
            extra = {}
        try:
            return self.hf.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=add_generation_prompt, **extra
            )
        except Exception as exc:  # jinja2's TemplateError, raise_exception(...) in the template, ...
            raise InvalidRequestError(
                None, "messages", f"the chat template rejected the conversation: {type(exc).__name__}: {exc}"
            ) from exc

    def _render_plain(self, messages: list[dict[str, Any]]) -> str:
        return self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)


def _special_tokens(hf_tokenizer: Any) -> list[str]:
    """The tokenizer's special tokens: its named ones and every added token marked special."""
    tokens = list(getattr(hf_tokenizer, "all_special_tokens", ()))
    decoder = getattr(hf_tokenizer, "added_tokens_decoder", {}) or {}
    tokens += [t.content for t in decoder.values() if getattr(t, "special", False)]
    return list(dict.fromkeys(tokens))


class IncrementalDetokenizer:
    """Streams one sequence's text: ``push(id)`` returns the text that token completes, ``flush()`` the rest.

    Decodes a small window ``ids[prefix:]`` and emits what extends past ``ids[prefix:read]`` (so tokenizers
    whose pieces depend on their left neighbour decode right). Text ending in U+FFFD is held back: it is
    usually a multi-byte UTF-8 character split across tokens. ``flush`` emits held text as it stands.
    """

    def __init__(self, tokenizer: Tokenizer, *, skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        new_text = self._pending_text()
        if not new_text or new_text.endswith(REPLACEMENT_CHAR):
            return ""
        self._advance()
        return new_text

    def flush(self) -> str:
        new_text = self._pending_text()
        self._advance()
        return new_text

    def _pending_text(self) -> str:
        prefix = self._decode(self.ids[self.prefix_offset : self.read_offset])
        full = self._decode(self.ids[self.prefix_offset :])
        return full[len(prefix) :] if len(full) > len(prefix) else ""

    def _advance(self) -> None:
        self.prefix_offset = self.read_offset
        self.read_offset = len(self.ids)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens) if ids else ""
